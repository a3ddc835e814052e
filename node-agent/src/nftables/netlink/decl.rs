//! Declarations of sets, maps and base chains, from the text Portico writes for nft to the
//! numbers of nf_tables' netlink messages.

use super::{NFT_SET_MAP, Unsupported};
use crate::dataplane::IpFamily;

const NFT_SET_TIMEOUT: u32 = 0x10;
const NFT_SET_EVAL: u32 = 0x20;
/// nft's `integer` type (numgen's), the last field of the endpoint maps' keys.
const TYPE_INTEGER: u32 = 4;

// nft 1.0.6's user data for the endpoint maps' `typeof` declarations (`fixed::map_type`), byte
// for byte from `nft --debug=mnl`: it holds the typeof expressions, from which `nft list` prints
// the declaration and the elements.
const ENDPOINTS_BY_IP_USERDATA_V4: [u8; 170] = [
    0, 4, 0, 0, 0, 0, 1, 4, 0, 0, 0, 0, 3, 96, 0, 4, 13, 0, 0, 0, 1, 88, 0, 20, 0, 4, 7, 0, 0, 0,
    1, 12, 0, 4, 12, 0, 0, 0, 1, 4, 12, 0, 0, 0, 1, 14, 0, 4, 9, 0, 0, 0, 1, 6, 0, 4, 16, 0, 0, 0,
    2, 20, 0, 4, 7, 0, 0, 0, 1, 12, 0, 4, 11, 0, 0, 0, 1, 4, 2, 0, 0, 0, 3, 26, 0, 4, 23, 0, 0, 0,
    1, 18, 0, 4, 1, 0, 0, 0, 1, 4, 1, 0, 0, 0, 2, 4, 0, 0, 0, 0, 4, 52, 0, 4, 13, 0, 0, 0, 1, 44,
    0, 20, 0, 4, 7, 0, 0, 0, 1, 12, 0, 4, 12, 0, 0, 0, 1, 4, 12, 0, 0, 0, 1, 20, 0, 4, 7, 0, 0, 0,
    1, 12, 0, 4, 11, 0, 0, 0, 1, 4, 2, 0, 0, 0, 6, 4, 0, 0, 0, 0,
];
const ENDPOINTS_BY_PORT_USERDATA_V4: [u8; 148] = [
    0, 4, 0, 0, 0, 0, 1, 4, 0, 0, 0, 0, 3, 74, 0, 4, 13, 0, 0, 0, 1, 66, 0, 14, 0, 4, 9, 0, 0, 0,
    1, 6, 0, 4, 16, 0, 0, 0, 1, 20, 0, 4, 7, 0, 0, 0, 1, 12, 0, 4, 11, 0, 0, 0, 1, 4, 2, 0, 0, 0,
    2, 26, 0, 4, 23, 0, 0, 0, 1, 18, 0, 4, 1, 0, 0, 0, 1, 4, 1, 0, 0, 0, 2, 4, 0, 0, 0, 0, 4, 52,
    0, 4, 13, 0, 0, 0, 1, 44, 0, 20, 0, 4, 7, 0, 0, 0, 1, 12, 0, 4, 12, 0, 0, 0, 1, 4, 12, 0, 0, 0,
    1, 20, 0, 4, 7, 0, 0, 0, 1, 12, 0, 4, 11, 0, 0, 0, 1, 4, 2, 0, 0, 0, 6, 4, 0, 0, 0, 0,
];
const ENDPOINTS_BY_IP_USERDATA_V6: [u8; 170] = [
    0, 4, 0, 0, 0, 0, 1, 4, 0, 0, 0, 0, 3, 96, 0, 4, 13, 0, 0, 0, 1, 88, 0, 20, 0, 4, 7, 0, 0, 0,
    1, 12, 0, 4, 13, 0, 0, 0, 1, 4, 9, 0, 0, 0, 1, 14, 0, 4, 9, 0, 0, 0, 1, 6, 0, 4, 16, 0, 0, 0,
    2, 20, 0, 4, 7, 0, 0, 0, 1, 12, 0, 4, 11, 0, 0, 0, 1, 4, 2, 0, 0, 0, 3, 26, 0, 4, 23, 0, 0, 0,
    1, 18, 0, 4, 1, 0, 0, 0, 1, 4, 1, 0, 0, 0, 2, 4, 0, 0, 0, 0, 4, 52, 0, 4, 13, 0, 0, 0, 1, 44,
    0, 20, 0, 4, 7, 0, 0, 0, 1, 12, 0, 4, 13, 0, 0, 0, 1, 4, 9, 0, 0, 0, 1, 20, 0, 4, 7, 0, 0, 0,
    1, 12, 0, 4, 11, 0, 0, 0, 1, 4, 2, 0, 0, 0, 6, 4, 0, 0, 0, 0,
];
const ENDPOINTS_BY_PORT_USERDATA_V6: [u8; 148] = [
    0, 4, 0, 0, 0, 0, 1, 4, 0, 0, 0, 0, 3, 74, 0, 4, 13, 0, 0, 0, 1, 66, 0, 14, 0, 4, 9, 0, 0, 0,
    1, 6, 0, 4, 16, 0, 0, 0, 1, 20, 0, 4, 7, 0, 0, 0, 1, 12, 0, 4, 11, 0, 0, 0, 1, 4, 2, 0, 0, 0,
    2, 26, 0, 4, 23, 0, 0, 0, 1, 18, 0, 4, 1, 0, 0, 0, 1, 4, 1, 0, 0, 0, 2, 4, 0, 0, 0, 0, 4, 52,
    0, 4, 13, 0, 0, 0, 1, 44, 0, 20, 0, 4, 7, 0, 0, 0, 1, 12, 0, 4, 13, 0, 0, 0, 1, 4, 9, 0, 0, 0,
    1, 20, 0, 4, 7, 0, 0, 0, 1, 12, 0, 4, 11, 0, 0, 0, 1, 4, 2, 0, 0, 0, 6, 4, 0, 0, 0, 0,
];

/// The endpoint maps' declarations (`fixed::map_type`), by family and key kind.
fn endpoint_map(body: &str, family: IpFamily) -> Option<SetDecl> {
    let ip = match family {
        IpFamily::V4 => "ip",
        IpFamily::V6 => "ip6",
    };
    let by_ip = format!(
        "typeof {ip} daddr . meta l4proto . th dport . numgen random mod 1 : {ip} daddr . th dport"
    );
    let by_port =
        format!("typeof meta l4proto . th dport . numgen random mod 1 : {ip} daddr . th dport");
    let body = body.trim().trim_end_matches(';').trim();
    let (addr_type, addr_len) = key_type(
        if family == IpFamily::V4 {
            "ipv4_addr"
        } else {
            "ipv6_addr"
        },
        family,
    )?;
    let (proto_port_type, proto_port_len) = ((12 << 6) | 13, 8);
    let (key_type, key_len, fields, userdata): (u32, u32, u32, &'static [u8]) = match family {
        _ if body == by_ip => (
            (((addr_type << 12) | proto_port_type) << 6) | TYPE_INTEGER,
            addr_len + proto_port_len + 4,
            4,
            match family {
                IpFamily::V4 => &ENDPOINTS_BY_IP_USERDATA_V4,
                IpFamily::V6 => &ENDPOINTS_BY_IP_USERDATA_V6,
            },
        ),
        _ if body == by_port => (
            (proto_port_type << 6) | TYPE_INTEGER,
            proto_port_len + 4,
            3,
            match family {
                IpFamily::V4 => &ENDPOINTS_BY_PORT_USERDATA_V4,
                IpFamily::V6 => &ENDPOINTS_BY_PORT_USERDATA_V6,
            },
        ),
        _ => return None,
    };
    Some(SetDecl {
        key_type,
        key_len,
        fields,
        flags: NFT_SET_MAP,
        timeout_ms: None,
        // address . port: the address, and the port padded to 4 bytes.
        data: Some(((addr_type << 6) | 13, addr_len + 4)),
        userdata: Some(userdata),
    })
}

/// A set's declaration as Portico writes it: `type ipv4_addr . inet_proto . inet_service :
/// verdict;`, `type ipv4_addr . ipv4_addr;`, or an affinity set's
/// `type ipv4_addr; flags dynamic,timeout; timeout 10800s;`.
pub(super) struct SetDecl {
    pub key_type: u32,
    pub key_len: u32,
    pub fields: u32,
    pub flags: u32,
    pub timeout_ms: Option<u64>,
    /// A data map's data type and length (verdict maps: None).
    pub data: Option<(u32, u32)>,
    /// User data nft writes for this declaration, where it is not the usual one.
    pub userdata: Option<&'static [u8]>,
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
        if body.trim_start().starts_with("typeof ") {
            return endpoint_map(body, family).ok_or_else(unsupported);
        }
        let mut decl = SetDecl {
            key_type: 0,
            key_len: 0,
            fields: 0,
            flags: 0,
            timeout_ms: None,
            data: None,
            userdata: None,
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
