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
const NFT_REG32_00: u32 = 8;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_META_MARK: u32 = 3;
const NFT_CT_STATE: u32 = 0;
const NFT_CT_STATUS: u32 = 2;
const IPS_DST_NAT: u32 = 0x20;
const NF_CT_STATE_NEW: u32 = 0x8;
const NFT_RETURN: i32 = -5;
const ICMP_PORT_UNREACH: u8 = 3;
const ICMPV6_PORT_UNREACH: u8 = 4;
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
            (Some("return"), None, None) => Verdict {
                code: NFT_RETURN,
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
    Payload {
        base: u32,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    Bitwise {
        mask: Vec<u8>,
        xor: Vec<u8>,
    },
    Cmp {
        op: u32,
        data: Vec<u8>,
    },
    Meta {
        key: u32,
        dreg: u32,
    },
    MetaSet {
        key: u32,
    },
    Ct {
        key: u32,
    },
    Numgen {
        modulus: u32,
    },
    Immediate {
        dreg: u32,
        data: Vec<u8>,
    },
    Verdict(Verdict),
    Dnat {
        family: IpFamily,
    },
    /// `fib saddr|daddr type`: flags say which address.
    FibType {
        flags: u32,
    },
    Lookup {
        set: String,
        invert: bool,
        /// `Some(0)`: a verdict map.
        dreg: Option<u32>,
    },
    DynsetUpdate {
        set: String,
    },
    Reject {
        icmp_code: u8,
    },
    Masquerade {
        flags: u32,
    },
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

/// `ip saddr` / `ip daddr`: offset and length in the network header.
fn address(family: IpFamily, field: &str) -> Option<(u32, u32)> {
    match (family, field) {
        (IpFamily::V4, "saddr") => Some((12, 4)),
        (IpFamily::V4, "daddr") => Some((16, 4)),
        (IpFamily::V6, "saddr") => Some((8, 16)),
        (IpFamily::V6, "daddr") => Some((24, 16)),
        _ => None,
    }
}

fn load_address(family: IpFamily, field: &str, dreg: u32) -> Option<Expr> {
    let (offset, len) = address(family, field)?;
    Some(Expr::Payload {
        base: NFT_PAYLOAD_NETWORK_HEADER,
        offset,
        len,
        dreg,
    })
}

/// The register at `unit` 32-bit words past the start of register 1, as nft names it: the
/// 128-bit name when aligned, else the 32-bit one (`reg 9` follows a 4-byte `reg 1`).
fn register(unit: u32) -> u32 {
    if unit.is_multiple_of(4) {
        NFT_REG_1 + unit / 4
    } else {
        NFT_REG32_00 + unit
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
fn address_match(
    family: IpFamily,
    field: &str,
    operand: &str,
    op: u32,
) -> Result<Vec<Expr>, Unsupported> {
    let unsupported = || Unsupported(format!("address match {operand}"));
    let net: IpNet = match operand.parse::<IpAddr>() {
        Ok(addr) => IpNet::from(addr),
        Err(_) => operand.parse().map_err(|_| unsupported())?,
    };
    if matches!(net, IpNet::V4(_)) != (family == IpFamily::V4) || net.prefix_len() == 0 {
        return Err(unsupported());
    }
    let (offset, len) = address(family, field).ok_or_else(unsupported)?;
    let network = octets(net.network());
    let prefix = u32::from(net.prefix_len());
    let payload = |len| Expr::Payload {
        base: NFT_PAYLOAD_NETWORK_HEADER,
        offset,
        len,
        dreg: NFT_REG_1,
    };
    if prefix.is_multiple_of(8) {
        let bytes = prefix / 8;
        return Ok(vec![
            payload(bytes),
            Expr::Cmp {
                op,
                data: network[..bytes as usize].to_vec(),
            },
        ]);
    }
    Ok(vec![
        payload(len),
        Expr::Bitwise {
            mask: octets(net.netmask()),
            xor: vec![0; len as usize],
        },
        Expr::Cmp { op, data: network },
    ])
}

/// `meta l4proto . th dport` into the registers from `unit` on.
fn proto_port(unit: u32) -> [Expr; 2] {
    [
        Expr::Meta {
            key: NFT_META_L4PROTO,
            dreg: register(unit),
        },
        Expr::Payload {
            base: NFT_PAYLOAD_TRANSPORT_HEADER,
            offset: 2,
            len: 2,
            dreg: register(unit + 1),
        },
    ]
}

/// A 32-bit host-order field masked and compared: `(x & mask) ^ xor` then `op data`.
fn masked(mask: u32, xor: u32) -> Expr {
    Expr::Bitwise {
        mask: mask.to_ne_bytes().to_vec(),
        xor: xor.to_ne_bytes().to_vec(),
    }
}

fn is_zero(op: u32) -> Expr {
    Expr::Cmp {
        op,
        data: 0u32.to_ne_bytes().to_vec(),
    }
}

fn hex(value: &str) -> Option<u32> {
    u32::from_str_radix(value.strip_prefix("0x")?, 16).ok()
}

/// The expressions of one rule, or `Unsupported`.
pub fn parse(rule: &str, family: IpFamily) -> Result<Vec<Expr>, Unsupported> {
    let unsupported = || Unsupported(format!("rule {rule}"));
    let words: Vec<&str> = rule.split_whitespace().collect();
    let mut exprs = Vec::new();
    let mut at = 0;
    let ours = |word: &str| family_of(word) == Some(family);
    while at < words.len() {
        let rest = &words[at..];
        match rest {
            // ip daddr . meta l4proto . th dport vmap @map
            [
                ip,
                field,
                ".",
                "meta",
                "l4proto",
                ".",
                "th",
                "dport",
                "vmap",
                map,
                ..,
            ] if ours(ip) => {
                let map = map.strip_prefix('@').ok_or_else(unsupported)?;
                let (_, len) = address(family, field).ok_or_else(unsupported)?;
                exprs.push(load_address(family, field, NFT_REG_1).ok_or_else(unsupported)?);
                exprs.extend(proto_port(len / 4));
                exprs.push(Expr::Lookup {
                    set: map.into(),
                    invert: false,
                    dreg: Some(NFT_REG_VERDICT),
                });
                at += 10;
            }
            // meta l4proto . th dport vmap @map
            ["meta", "l4proto", ".", "th", "dport", "vmap", map, ..] => {
                let map = map.strip_prefix('@').ok_or_else(unsupported)?;
                exprs.extend(proto_port(0));
                exprs.push(Expr::Lookup {
                    set: map.into(),
                    invert: false,
                    dreg: Some(NFT_REG_VERDICT),
                });
                at += 7;
            }
            // ip saddr . ip daddr @set
            [ip, first, ".", ip2, second, set, ..] if ours(ip) && ours(ip2) => {
                let set = set.strip_prefix('@').ok_or_else(unsupported)?;
                let (_, len) = address(family, first).ok_or_else(unsupported)?;
                exprs.push(load_address(family, first, NFT_REG_1).ok_or_else(unsupported)?);
                exprs
                    .push(load_address(family, second, register(len / 4)).ok_or_else(unsupported)?);
                exprs.push(Expr::Lookup {
                    set: set.into(),
                    invert: false,
                    dreg: None,
                });
                at += 6;
            }
            [
                ip,
                field @ ("saddr" | "daddr"),
                op @ ("!=" | "=="),
                operand,
                ..,
            ] if ours(ip) => {
                let negate = *op == "!=";
                exprs.extend(operand_match(family, field, operand, negate)?);
                at += 4;
            }
            [ip, field @ ("saddr" | "daddr"), operand, ..] if ours(ip) => {
                exprs.extend(operand_match(family, field, operand, false)?);
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
                    dreg: NFT_REG_1,
                });
                exprs.push(Expr::Cmp {
                    op: NFT_CMP_EQ,
                    data: vec![proto],
                });
                at += 3;
            }
            // meta mark & 0x4000 == 0
            ["meta", "mark", "&", mask, "==", "0", ..] => {
                let mask = hex(mask).ok_or_else(unsupported)?;
                exprs.push(Expr::Meta {
                    key: NFT_META_MARK,
                    dreg: NFT_REG_1,
                });
                exprs.push(masked(mask, 0));
                exprs.push(is_zero(NFT_CMP_EQ));
                at += 6;
            }
            // meta mark set meta mark or|xor 0x4000
            [
                "meta",
                "mark",
                "set",
                "meta",
                "mark",
                op @ ("or" | "xor"),
                value,
                ..,
            ] => {
                let value = hex(value).ok_or_else(unsupported)?;
                exprs.push(Expr::Meta {
                    key: NFT_META_MARK,
                    dreg: NFT_REG_1,
                });
                exprs.push(if *op == "or" {
                    masked(!value, value)
                } else {
                    masked(u32::MAX, value)
                });
                exprs.push(Expr::MetaSet { key: NFT_META_MARK });
                at += 7;
            }
            ["ct", "status", "dnat", ..] => {
                exprs.push(Expr::Ct { key: NFT_CT_STATUS });
                exprs.push(masked(IPS_DST_NAT, 0));
                exprs.push(is_zero(NFT_CMP_NEQ));
                at += 3;
            }
            ["ct", "state", "new", ..] => {
                exprs.push(Expr::Ct { key: NFT_CT_STATE });
                exprs.push(masked(NF_CT_STATE_NEW, 0));
                exprs.push(is_zero(NFT_CMP_NEQ));
                at += 3;
            }
            ["dnat", ip, "to", target, ..] if ours(ip) => {
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
            ["fib", field @ ("saddr" | "daddr"), "type", "local", ..] => {
                exprs.push(Expr::FibType {
                    flags: if *field == "saddr" {
                        NFTA_FIB_F_SADDR
                    } else {
                        NFTA_FIB_F_DADDR
                    },
                });
                exprs.push(Expr::Cmp {
                    op: NFT_CMP_EQ,
                    data: RTN_LOCAL.to_ne_bytes().to_vec(),
                });
                at += 4;
            }
            ["update", set, "{", ip, "saddr", "}", ..] if ours(ip) => {
                let set = set.strip_prefix('@').ok_or_else(unsupported)?;
                exprs.push(load_address(family, "saddr", NFT_REG_1).ok_or_else(unsupported)?);
                exprs.push(Expr::DynsetUpdate { set: set.into() });
                at += 6;
            }
            ["masquerade", "fully-random"] => {
                exprs.push(Expr::Masquerade {
                    flags: NF_NAT_RANGE_PROTO_RANDOM_FULLY,
                });
                at += 2;
            }
            ["reject"] => {
                exprs.push(Expr::Reject {
                    icmp_code: match family {
                        IpFamily::V4 => ICMP_PORT_UNREACH,
                        IpFamily::V6 => ICMPV6_PORT_UNREACH,
                    },
                });
                at += 1;
            }
            [kind @ ("jump" | "goto"), chain] => {
                exprs.push(Expr::Verdict(Verdict::parse(&format!("{kind} {chain}"))?));
                at += 2;
            }
            [verdict @ ("drop" | "accept" | "return")] => {
                exprs.push(Expr::Verdict(Verdict::parse(verdict)?));
                at += 1;
            }
            _ => return Err(unsupported()),
        }
    }
    Ok(exprs)
}

/// `ip saddr <operand>`: a named set (`@set`) or an address or prefix.
fn operand_match(
    family: IpFamily,
    field: &str,
    operand: &str,
    negate: bool,
) -> Result<Vec<Expr>, Unsupported> {
    if let Some(set) = operand.strip_prefix('@') {
        let load = load_address(family, field, NFT_REG_1)
            .ok_or_else(|| Unsupported(format!("field {field}")))?;
        return Ok(vec![
            load,
            Expr::Lookup {
                set: set.into(),
                invert: negate,
                dreg: None,
            },
        ]);
    }
    let op = if negate { NFT_CMP_NEQ } else { NFT_CMP_EQ };
    address_match(family, field, operand, op)
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
const NFTA_META_SREG: u16 = 3;
const NFTA_CT_DREG: u16 = 1;
const NFTA_CT_KEY: u16 = 2;
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
const NF_NAT_RANGE_PROTO_RANDOM_FULLY: u32 = 0x10;
const NFTA_MASQ_FLAGS: u16 = 1;
const NFTA_REJECT_TYPE: u16 = 1;
const NFTA_REJECT_ICMP_CODE: u16 = 2;
const NFT_REJECT_ICMP_UNREACH: u32 = 0;
const NFTA_FIB_DREG: u16 = 1;
const NFTA_FIB_RESULT: u16 = 2;
const NFTA_FIB_FLAGS: u16 = 3;
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
const NFTA_FIB_F_SADDR: u32 = 1;
const NFTA_FIB_F_DADDR: u32 = 2;
const NFTA_LOOKUP_SET: u16 = 1;
const NFTA_LOOKUP_SREG: u16 = 2;
const NFTA_LOOKUP_DREG: u16 = 3;
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
            Expr::Meta { .. } | Expr::MetaSet { .. } => "meta",
            Expr::Ct { .. } => "ct",
            Expr::Numgen { .. } => "numgen",
            Expr::Immediate { .. } | Expr::Verdict(_) => "immediate",
            Expr::Dnat { .. } => "nat",
            Expr::FibType { .. } => "fib",
            Expr::Lookup { .. } => "lookup",
            Expr::DynsetUpdate { .. } => "dynset",
            Expr::Reject { .. } => "reject",
            Expr::Masquerade { .. } => "masq",
        }
    }

    /// Appends this expression as one `NFTA_LIST_ELEM` of a rule's expression list.
    pub fn write(&self, batch: &mut Batch) {
        let elem = batch.nest(NFTA_LIST_ELEM);
        batch.put_str(NFTA_EXPR_NAME, self.name());
        let data = batch.nest(NFTA_EXPR_DATA);
        match self {
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => {
                batch.put_u32(NFTA_PAYLOAD_DREG, *dreg);
                batch.put_u32(NFTA_PAYLOAD_BASE, *base);
                batch.put_u32(NFTA_PAYLOAD_OFFSET, *offset);
                batch.put_u32(NFTA_PAYLOAD_LEN, *len);
            }
            Expr::Bitwise { mask, xor } => {
                batch.put_u32(NFTA_BITWISE_SREG, NFT_REG_1);
                batch.put_u32(NFTA_BITWISE_DREG, NFT_REG_1);
                batch.put_u32(NFTA_BITWISE_LEN, mask.len() as u32);
                batch.put_value(NFTA_BITWISE_MASK, mask);
                batch.put_value(NFTA_BITWISE_XOR, xor);
            }
            Expr::Cmp { op, data } => {
                batch.put_u32(NFTA_CMP_SREG, NFT_REG_1);
                batch.put_u32(NFTA_CMP_OP, *op);
                batch.put_value(NFTA_CMP_DATA, data);
            }
            Expr::Meta { key, dreg } => {
                batch.put_u32(NFTA_META_KEY, *key);
                batch.put_u32(NFTA_META_DREG, *dreg);
            }
            Expr::MetaSet { key } => {
                batch.put_u32(NFTA_META_KEY, *key);
                batch.put_u32(NFTA_META_SREG, NFT_REG_1);
            }
            Expr::Ct { key } => {
                batch.put_u32(NFTA_CT_DREG, NFT_REG_1);
                batch.put_u32(NFTA_CT_KEY, *key);
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
            Expr::FibType { flags } => {
                batch.put_u32(NFTA_FIB_DREG, NFT_REG_1);
                batch.put_u32(NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
                batch.put_u32(NFTA_FIB_FLAGS, *flags);
            }
            Expr::Lookup { set, invert, dreg } => {
                batch.put_u32(NFTA_LOOKUP_SREG, NFT_REG_1);
                batch.put_str(NFTA_LOOKUP_SET, set);
                if let Some(dreg) = dreg {
                    batch.put_u32(NFTA_LOOKUP_DREG, *dreg);
                }
                if *invert {
                    batch.put_u32(NFTA_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
                }
            }
            Expr::DynsetUpdate { set } => {
                batch.put_str(NFTA_DYNSET_SET_NAME, set);
                batch.put_u32(NFTA_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
                batch.put_u32(NFTA_DYNSET_SREG_KEY, NFT_REG_1);
            }
            Expr::Reject { icmp_code } => {
                batch.put_u32(NFTA_REJECT_TYPE, NFT_REJECT_ICMP_UNREACH);
                batch.put(NFTA_REJECT_ICMP_CODE, &[*icmp_code]);
            }
            Expr::Masquerade { flags } => {
                batch.put_u32(NFTA_MASQ_FLAGS, *flags);
            }
        }
        batch.end_nest(data);
        batch.end_nest(elem);
    }
}
