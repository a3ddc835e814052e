//! Declarations of sets, maps and base chains, from the text Portico writes for nft to the
//! numbers of nf_tables' netlink messages.

use super::{NFT_SET_MAP, Unsupported};
use crate::dataplane::IpFamily;

const NFT_SET_TIMEOUT: u32 = 0x10;
const NFT_SET_EVAL: u32 = 0x20;

/// A set's declaration as Portico writes it: `type ipv4_addr . inet_proto . inet_service :
/// verdict;`, `type ipv4_addr . ipv4_addr;`, or an affinity set's
/// `type ipv4_addr; flags dynamic,timeout; timeout 10800s;`.
pub(super) struct SetDecl {
    pub key_type: u32,
    pub key_len: u32,
    pub fields: u32,
    pub flags: u32,
    pub timeout_ms: Option<u64>,
}

/// A key type's id and length in a concatenation (padded to 4 bytes), from nft's datatypes.
fn key_type(name: &str, family: IpFamily) -> Option<(u32, u32)> {
    match (name, family) {
        ("ipv4_addr", IpFamily::V4) => Some((7, 4)),
        ("ipv6_addr", IpFamily::V6) => Some((8, 16)),
        ("inet_proto", _) => Some((12, 4)),
        ("inet_service", _) => Some((13, 4)),
        _ => None,
    }
}

impl SetDecl {
    pub fn parse(body: &str, family: IpFamily) -> Result<SetDecl, Unsupported> {
        let unsupported = || Unsupported(format!("set {body}"));
        let mut decl = SetDecl {
            key_type: 0,
            key_len: 0,
            fields: 0,
            flags: 0,
            timeout_ms: None,
        };
        for part in body.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (word, value) = part.split_once(' ').ok_or_else(unsupported)?;
            match (word, value.trim()) {
                ("type", types) => {
                    let (key, data) = match types.split_once(" : ") {
                        Some((key, "verdict")) => (key, true),
                        Some(_) => return Err(unsupported()),
                        None => (types, false),
                    };
                    for name in key.split(" . ") {
                        let (id, len) = key_type(name.trim(), family).ok_or_else(unsupported)?;
                        decl.key_type = (decl.key_type << 6) | id;
                        decl.key_len += len;
                        decl.fields += 1;
                    }
                    if data {
                        decl.flags |= NFT_SET_MAP;
                    }
                    // A lone protocol or port would be its natural length; Portico has none.
                    if decl.fields == 1 && decl.key_type >= 12 {
                        return Err(unsupported());
                    }
                }
                ("flags", flags) => {
                    for flag in flags.split(',') {
                        decl.flags |= match flag.trim() {
                            "dynamic" => NFT_SET_EVAL,
                            "timeout" => NFT_SET_TIMEOUT,
                            _ => return Err(unsupported()),
                        };
                    }
                }
                ("timeout", seconds) => {
                    let seconds: u64 = seconds
                        .strip_suffix('s')
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(unsupported)?;
                    decl.timeout_ms = Some(seconds * 1000);
                }
                _ => return Err(unsupported()),
            }
        }
        if decl.key_len == 0 {
            return Err(unsupported());
        }
        Ok(decl)
    }
}

/// A base chain's declaration: `type nat hook prerouting priority dstnat; policy accept;`.
pub(super) struct Hook {
    pub kind: &'static str,
    pub number: u32,
    pub priority: i32,
    pub policy: u32,
}

impl Hook {
    pub fn parse(text: &str) -> Result<Hook, Unsupported> {
        let unsupported = || Unsupported(format!("hook {text}"));
        let words: Vec<&str> = text
            .split(|c: char| c.is_whitespace() || c == ';')
            .filter(|w| !w.is_empty())
            .collect();
        let [
            "type",
            kind,
            "hook",
            hook,
            "priority",
            priority,
            "policy",
            "accept",
        ] = words[..]
        else {
            return Err(unsupported());
        };
        let kind = match kind {
            "nat" => "nat",
            "filter" => "filter",
            _ => return Err(unsupported()),
        };
        let number = match hook {
            "prerouting" => 0,
            "input" => 1,
            "forward" => 2,
            "output" => 3,
            "postrouting" => 4,
            _ => return Err(unsupported()),
        };
        let priority = match priority {
            "dstnat" => -100,
            "srcnat" => 100,
            "filter" => 0,
            number => number.parse().map_err(|_| unsupported())?,
        };
        Ok(Hook {
            kind,
            number,
            priority,
            policy: 1,
        })
    }
}
