//! The rule shapes of Portico's table (`service.rs`, `fixed.rs`), parsed back into nf_tables
//! expressions exactly as nft 1.0.6 compiles them (`nft --debug=netlink`):
//!
//! | statement | expressions |
//! | --- | --- |
//! | `ip saddr 10.0.0.1` / `!= 10.244.0.0/16` | payload (prefix bytes when byte-aligned), [bitwise], cmp |
//! | `ip saddr @set` | payload, lookup |
//! | `numgen random mod 3 0` | numgen, cmp |
//! | `meta l4proto tcp` | meta, cmp |
//! | `dnat ip to 10.0.0.1:80` / `dnat ip6 to [fd00::1]:80` | immediate ×2, nat (proto specified) |
//! | `dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 3 offset 3 map @m` | payload, meta, payload, numgen (registers 1, 9, 10, 11), lookup to register 1, nat (address register 1, port the next) |
//! | `dnat ip to meta l4proto . th dport . numgen random mod 3 offset 3 map @m` | meta, payload, numgen (registers 1, 9, 10), lookup to register 1, nat |
//! | `fib saddr type local` | fib, cmp |
//! | `update @set { ip saddr }` | payload, dynset update |
//! | `ip daddr . meta l4proto . th dport vmap @m` | payload, meta, payload (registers 1, 9, 10), lookup to the verdict register |
//! | `fib daddr type local meta l4proto . th dport vmap @m` | fib, cmp, meta, payload, lookup |
//! | `ct status dnat ip saddr . ip daddr @set` | ct, bitwise, cmp, payload ×2, lookup |
//! | `ct state new` | ct, bitwise, cmp |
//! | `meta mark & 0x4000 == 0` / `meta mark set meta mark or 0x4000` | meta, bitwise, cmp / meta set |
//! | `masquerade fully-random` / `reject` | masq / reject (ICMP port unreachable) |
//! | `jump X` / `goto X` / `drop` / `accept` / `return` | immediate verdict |
//!
//! Anything else (an anonymous set `{ a, b }`, a prefix of length 0) is `Unsupported`, and the
//! transaction goes through `nft -f` instead.

use std::net::IpAddr;

use ipnet::IpNet;

use super::Unsupported;
use super::expr::*;
use crate::dataplane::IpFamily;

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
                exprs.push(Expr::Numgen {
                    modulus,
                    offset: 0,
                    dreg: NFT_REG_1,
                });
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
            // dnat ip to [ip daddr .] meta l4proto . th dport . numgen random mod 3 offset 3 map @m
            ["dnat", ip, "to", key @ ..] if ours(ip) && key.contains(&"numgen") => {
                let (by_address, key) = match key {
                    [ip2, "daddr", ".", rest @ ..] if ours(ip2) => (true, rest),
                    _ => (false, key),
                };
                let [
                    "meta",
                    "l4proto",
                    ".",
                    "th",
                    "dport",
                    ".",
                    "numgen",
                    "random",
                    "mod",
                    modulus,
                    "offset",
                    offset,
                    "map",
                    map,
                ] = key
                else {
                    return Err(unsupported());
                };
                let modulus: u32 = modulus.parse().map_err(|_| unsupported())?;
                let offset: u32 = offset.parse().map_err(|_| unsupported())?;
                let map = map.strip_prefix('@').ok_or_else(unsupported)?;
                let (_, addr_len) = address(family, "daddr").ok_or_else(unsupported)?;
                let unit = if by_address {
                    exprs.push(load_address(family, "daddr", NFT_REG_1).ok_or_else(unsupported)?);
                    addr_len / 4
                } else {
                    0
                };
                exprs.extend(proto_port(unit));
                exprs.push(Expr::Numgen {
                    modulus,
                    offset,
                    dreg: register(unit + 2),
                });
                exprs.push(Expr::Lookup {
                    set: map.into(),
                    invert: false,
                    dreg: Some(NFT_REG_1),
                });
                // nft leaves the flags out when address and port come from a map.
                exprs.push(Expr::Dnat {
                    family,
                    proto_reg: register(addr_len / 4),
                    flags: None,
                });
                at = words.len();
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
                exprs.push(Expr::Dnat {
                    family,
                    proto_reg: NFT_REG_2,
                    flags: Some(NF_NAT_RANGE_PROTO_SPECIFIED),
                });
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
