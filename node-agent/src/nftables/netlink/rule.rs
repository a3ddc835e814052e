//! The rule shapes of Portico's per-Service-port chains (`service.rs`), parsed back into nf_tables
//! expressions exactly as nft 1.0.6 compiles them (`nft --debug=netlink`):
//!
//! | statement | expressions |
//! | --- | --- |
//! | `ip saddr 10.0.0.1` / `!= 10.244.0.0/16` | payload (prefix bytes when byte-aligned), [bitwise], cmp |
//! | `ip saddr @set` | payload, lookup |
//! | `numgen random mod 3 0` | numgen, cmp |
//! | `meta l4proto tcp` | meta, cmp |
//! | `dnat ip to 10.0.0.1:80` / `dnat ip6 to [fd00::1]:80` | immediate ×2, nat (proto specified) |
//! | `fib saddr type local` | fib, cmp |
//! | `update @set { ip saddr }` | payload, dynset update |
//! | `jump X` / `goto X` / `drop` / `accept` | immediate verdict |
//!
//! Anything else (an anonymous set `{ a, b }`, a prefix of length 0) is `Unsupported`, and the
//! transaction goes through `nft -f` instead.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{Batch, NFTA_LIST_ELEM, Unsupported};
use crate::dataplane::IpFamily;

const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
const NFT_REG_2: u32 = 2;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_META_L4PROTO: u32 = 16;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NFT_JUMP: i32 = -3;
const NFT_GOTO: i32 = -4;
const NF_DROP: i32 = 0;
const NF_ACCEPT: i32 = 1;
const RTN_LOCAL: u32 = 2;

/// A verdict: a code and, for jump and goto, the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub code: i32,
    pub chain: Option<String>,
}

impl Verdict {
    pub fn parse(text: &str) -> Result<Verdict, Unsupported> {
        let mut words = text.split_whitespace();
        let verdict = match (words.next(), words.next(), words.next()) {
            (Some("drop"), None, None) => Verdict {
                code: NF_DROP,
                chain: None,
            },
            (Some("accept"), None, None) => Verdict {
                code: NF_ACCEPT,
                chain: None,
            },
            (Some(kind @ ("jump" | "goto")), Some(chain), None) => Verdict {
                code: if kind == "jump" { NFT_JUMP } else { NFT_GOTO },
                chain: Some(chain.to_string()),
            },
            _ => return Err(Unsupported(format!("verdict {text}"))),
        };
        Ok(verdict)
    }
}

/// One nf_tables expression of the shapes above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    Payload { offset: u32, len: u32 },
    Bitwise { mask: Vec<u8> },
    Cmp { op: u32, data: Vec<u8> },
    Meta { key: u32 },
    Numgen { modulus: u32 },
    Immediate { dreg: u32, data: Vec<u8> },
    Verdict(Verdict),
    Dnat { family: IpFamily },
    FibSaddrType,
    Lookup { set: String, invert: bool },
    DynsetUpdate { set: String },
}

pub fn l4proto(name: &str) -> Option<u8> {
    match name {
        "tcp" => Some(6),
        "udp" => Some(17),
        "sctp" => Some(132),
        _ => None,
    }
}

fn family_of(word: &str) -> Option<IpFamily> {
    match word {
        "ip" => Some(IpFamily::V4),
        "ip6" => Some(IpFamily::V6),
        _ => None,
    }
}

/// `ip saddr`: offset and length in the network header.
fn saddr(family: IpFamily) -> (u32, u32) {
    match family {
        IpFamily::V4 => (12, 4),
        IpFamily::V6 => (8, 16),
    }
}

fn octets(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// `ip saddr [!=] <address or prefix>` as nft compiles it: a byte-aligned prefix loads only its
/// bytes; another prefix loads the address and masks it.
fn saddr_match(family: IpFamily, operand: &str, op: u32) -> Result<Vec<Expr>, Unsupported> {
    let unsupported = || Unsupported(format!("address match {operand}"));
    let net: IpNet = match operand.parse::<IpAddr>() {
        Ok(addr) => IpNet::from(addr),
        Err(_) => operand.parse().map_err(|_| unsupported())?,
    };
    if (matches!(net, IpNet::V4(_)) != (family == IpFamily::V4)) || net.prefix_len() == 0 {
        return Err(unsupported());
    }
    let (offset, len) = saddr(family);
    let network = octets(net.network());
    let prefix = u32::from(net.prefix_len());
    if prefix.is_multiple_of(8) {
        let bytes = prefix / 8;
        return Ok(vec![
            Expr::Payload { offset, len: bytes },
            Expr::Cmp {
                op,
                data: network[..bytes as usize].to_vec(),
            },
        ]);
    }
    Ok(vec![
        Expr::Payload { offset, len },
        Expr::Bitwise {
            mask: octets(net.netmask()),
        },
        Expr::Cmp { op, data: network },
    ])
}

/// The expressions of one rule, or `Unsupported`.
pub fn parse(rule: &str, family: IpFamily) -> Result<Vec<Expr>, Unsupported> {
    let unsupported = || Unsupported(format!("rule {rule}"));
    let words: Vec<&str> = rule.split_whitespace().collect();
    let mut exprs = Vec::new();
    let mut at = 0;
    while at < words.len() {
        let rest = &words[at..];
        match rest {
            [ip, "saddr", "!=", operand, ..] if family_of(ip) == Some(family) => {
                if let Some(set) = operand.strip_prefix('@') {
                    let (offset, len) = saddr(family);
                    exprs.push(Expr::Payload { offset, len });
                    exprs.push(Expr::Lookup {
                        set: set.into(),
                        invert: true,
                    });
                } else {
                    exprs.extend(saddr_match(family, operand, NFT_CMP_NEQ)?);
                }
                at += 4;
            }
            [ip, "saddr", operand, ..] if family_of(ip) == Some(family) => {
                if let Some(set) = operand.strip_prefix('@') {
                    let (offset, len) = saddr(family);
                    exprs.push(Expr::Payload { offset, len });
                    exprs.push(Expr::Lookup {
                        set: set.into(),
                        invert: false,
                    });
                } else {
                    exprs.extend(saddr_match(family, operand, NFT_CMP_EQ)?);
                }
                at += 3;
            }
            ["numgen", "random", "mod", modulus, value, ..] => {
                let modulus: u32 = modulus.parse().map_err(|_| unsupported())?;
                let value: u32 = value.parse().map_err(|_| unsupported())?;
                exprs.push(Expr::Numgen { modulus });
                exprs.push(Expr::Cmp {
                    op: NFT_CMP_EQ,
                    data: value.to_ne_bytes().to_vec(),
                });
                at += 5;
            }
            ["meta", "l4proto", proto, ..] => {
                let proto = l4proto(proto).ok_or_else(unsupported)?;
                exprs.push(Expr::Meta {
                    key: NFT_META_L4PROTO,
                });
                exprs.push(Expr::Cmp {
                    op: NFT_CMP_EQ,
                    data: vec![proto],
                });
                at += 3;
            }
            ["dnat", ip, "to", target, ..] if family_of(ip) == Some(family) => {
                let (addr, port) = dnat_target(target).ok_or_else(unsupported)?;
                if matches!(addr, IpAddr::V4(_)) != (family == IpFamily::V4) {
                    return Err(unsupported());
                }
                exprs.push(Expr::Immediate {
                    dreg: NFT_REG_1,
                    data: octets(addr),
                });
                exprs.push(Expr::Immediate {
                    dreg: NFT_REG_2,
                    data: port.to_be_bytes().to_vec(),
                });
                exprs.push(Expr::Dnat { family });
                at += 4;
            }
            ["fib", "saddr", "type", "local", ..] => {
                exprs.push(Expr::FibSaddrType);
                exprs.push(Expr::Cmp {
                    op: NFT_CMP_EQ,
                    data: RTN_LOCAL.to_ne_bytes().to_vec(),
                });
                at += 4;
            }
            ["update", set, "{", ip, "saddr", "}", ..] if family_of(ip) == Some(family) => {
                let set = set.strip_prefix('@').ok_or_else(unsupported)?;
                let (offset, len) = saddr(family);
                exprs.push(Expr::Payload { offset, len });
                exprs.push(Expr::DynsetUpdate { set: set.into() });
                at += 6;
            }
            [kind @ ("jump" | "goto"), chain] => {
                exprs.push(Expr::Verdict(Verdict::parse(&format!("{kind} {chain}"))?));
                at += 2;
            }
            [verdict @ ("drop" | "accept")] => {
                exprs.push(Expr::Verdict(Verdict::parse(verdict)?));
                at += 1;
            }
            _ => return Err(unsupported()),
        }
    }
    Ok(exprs)
}

/// `10.0.0.1:80` or `[fd00::1]:80`.
fn dnat_target(target: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = target.rsplit_once(':')?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    Some((addr.parse().ok()?, port.parse().ok()?))
}

// Expression attributes, from linux/netfilter/nf_tables.h.
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFTA_NUMGEN_DREG: u16 = 1;
const NFTA_NUMGEN_MODULUS: u16 = 2;
const NFTA_NUMGEN_TYPE: u16 = 3;
const NFTA_NUMGEN_OFFSET: u16 = 4;
const NFT_NG_RANDOM: u32 = 1;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_NAT_TYPE: u16 = 1;
const NFTA_NAT_FAMILY: u16 = 2;
const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
const NFTA_NAT_REG_PROTO_MIN: u16 = 5;
const NFTA_NAT_FLAGS: u16 = 7;
const NFT_NAT_DNAT: u32 = 1;
const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 2;
const NFTA_FIB_DREG: u16 = 1;
const NFTA_FIB_RESULT: u16 = 2;
const NFTA_FIB_FLAGS: u16 = 3;
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
const NFTA_FIB_F_SADDR: u32 = 1;
const NFTA_LOOKUP_SET: u16 = 1;
const NFTA_LOOKUP_SREG: u16 = 2;
const NFTA_LOOKUP_FLAGS: u16 = 5;
const NFT_LOOKUP_F_INV: u32 = 1;
const NFTA_DYNSET_SET_NAME: u16 = 1;
const NFTA_DYNSET_OP: u16 = 3;
const NFTA_DYNSET_SREG_KEY: u16 = 4;
const NFT_DYNSET_OP_UPDATE: u32 = 1;

impl Expr {
    fn name(&self) -> &'static str {
        match self {
            Expr::Payload { .. } => "payload",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Cmp { .. } => "cmp",
            Expr::Meta { .. } => "meta",
            Expr::Numgen { .. } => "numgen",
            Expr::Immediate { .. } | Expr::Verdict(_) => "immediate",
            Expr::Dnat { .. } => "nat",
            Expr::FibSaddrType => "fib",
            Expr::Lookup { .. } => "lookup",
            Expr::DynsetUpdate { .. } => "dynset",
        }
    }

    /// Appends this expression as one `NFTA_LIST_ELEM` of a rule's expression list.
    pub fn write(&self, batch: &mut Batch) {
        let elem = batch.nest(NFTA_LIST_ELEM);
        batch.put_str(NFTA_EXPR_NAME, self.name());
        let data = batch.nest(NFTA_EXPR_DATA);
        match self {
            Expr::Payload { offset, len } => {
                batch.put_u32(NFTA_PAYLOAD_DREG, NFT_REG_1);
                batch.put_u32(NFTA_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
                batch.put_u32(NFTA_PAYLOAD_OFFSET, *offset);
                batch.put_u32(NFTA_PAYLOAD_LEN, *len);
            }
            Expr::Bitwise { mask } => {
                batch.put_u32(NFTA_BITWISE_SREG, NFT_REG_1);
                batch.put_u32(NFTA_BITWISE_DREG, NFT_REG_1);
                batch.put_u32(NFTA_BITWISE_LEN, mask.len() as u32);
                batch.put_value(NFTA_BITWISE_MASK, mask);
                batch.put_value(NFTA_BITWISE_XOR, &vec![0; mask.len()]);
            }
            Expr::Cmp { op, data } => {
                batch.put_u32(NFTA_CMP_SREG, NFT_REG_1);
                batch.put_u32(NFTA_CMP_OP, *op);
                batch.put_value(NFTA_CMP_DATA, data);
            }
            Expr::Meta { key } => {
                batch.put_u32(NFTA_META_KEY, *key);
                batch.put_u32(NFTA_META_DREG, NFT_REG_1);
            }
            Expr::Numgen { modulus } => {
                batch.put_u32(NFTA_NUMGEN_DREG, NFT_REG_1);
                batch.put_u32(NFTA_NUMGEN_MODULUS, *modulus);
                batch.put_u32(NFTA_NUMGEN_TYPE, NFT_NG_RANDOM);
                batch.put_u32(NFTA_NUMGEN_OFFSET, 0);
            }
            Expr::Immediate { dreg, data } => {
                batch.put_u32(NFTA_IMMEDIATE_DREG, *dreg);
                batch.put_value(NFTA_IMMEDIATE_DATA, data);
            }
            Expr::Verdict(verdict) => {
                batch.put_u32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
                batch.put_verdict(NFTA_IMMEDIATE_DATA, verdict);
            }
            Expr::Dnat { family } => {
                batch.put_u32(NFTA_NAT_TYPE, NFT_NAT_DNAT);
                batch.put_u32(NFTA_NAT_FAMILY, u32::from(super::nfproto(*family)));
                batch.put_u32(NFTA_NAT_REG_ADDR_MIN, NFT_REG_1);
                batch.put_u32(NFTA_NAT_REG_PROTO_MIN, NFT_REG_2);
                batch.put_u32(NFTA_NAT_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
            }
            Expr::FibSaddrType => {
                batch.put_u32(NFTA_FIB_DREG, NFT_REG_1);
                batch.put_u32(NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
                batch.put_u32(NFTA_FIB_FLAGS, NFTA_FIB_F_SADDR);
            }
            Expr::Lookup { set, invert } => {
                batch.put_u32(NFTA_LOOKUP_SREG, NFT_REG_1);
                batch.put_str(NFTA_LOOKUP_SET, set);
                if *invert {
                    batch.put_u32(NFTA_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
                }
            }
            Expr::DynsetUpdate { set } => {
                batch.put_str(NFTA_DYNSET_SET_NAME, set);
                batch.put_u32(NFTA_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
                batch.put_u32(NFTA_DYNSET_SREG_KEY, NFT_REG_1);
            }
        }
        batch.end_nest(data);
        batch.end_nest(elem);
    }
}
