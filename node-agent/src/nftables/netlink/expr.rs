//! nf_tables expressions as netlink attributes: the instruction set Portico's rules compile to
//! (`rule.rs` turns rule text into these; `write` appends one to a rule message).
//! Numbers from linux/netfilter/nf_tables.h and the netfilter headers.

use super::{Batch, NFTA_LIST_ELEM};
use crate::dataplane::IpFamily;

pub(super) const NFTA_EXPR_NAME: u16 = 1;
pub(super) const NFTA_EXPR_DATA: u16 = 2;
pub(super) const NFT_REG_VERDICT: u32 = 0;
pub(super) const NFT_REG_1: u32 = 1;
pub(super) const NFT_REG_2: u32 = 2;
pub(super) const NFT_REG32_00: u32 = 8;
pub(super) const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
pub(super) const NFT_META_MARK: u32 = 3;
pub(super) const NFT_CT_STATE: u32 = 0;
pub(super) const NFT_CT_STATUS: u32 = 2;
pub(super) const IPS_DST_NAT: u32 = 0x20;
pub(super) const NF_CT_STATE_NEW: u32 = 0x8;
pub(super) const NFT_RETURN: i32 = -5;
pub(super) const ICMP_PORT_UNREACH: u8 = 3;
pub(super) const ICMPV6_PORT_UNREACH: u8 = 4;
pub(super) const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
pub(super) const NFT_META_L4PROTO: u32 = 16;
pub(super) const NFT_CMP_EQ: u32 = 0;
pub(super) const NFT_CMP_NEQ: u32 = 1;
pub(super) const NFT_JUMP: i32 = -3;
pub(super) const NFT_GOTO: i32 = -4;
pub(super) const NF_DROP: i32 = 0;
pub(super) const NF_ACCEPT: i32 = 1;
pub(super) const RTN_LOCAL: u32 = 2;

/// A verdict: a code and, for jump and goto, the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub code: i32,
    pub chain: Option<String>,
}

impl Verdict {
    pub fn parse(text: &str) -> Result<Verdict, super::Unsupported> {
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
            _ => return Err(super::Unsupported(format!("verdict {text}"))),
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
        offset: u32,
        dreg: u32,
    },
    Immediate {
        dreg: u32,
        data: Vec<u8>,
    },
    Verdict(Verdict),
    /// DNAT to the address in register 1 and the port in `proto_reg`; `flags` as nft sends
    /// them (none when address and port come from a map).
    Dnat {
        family: IpFamily,
        proto_reg: u32,
        flags: Option<u32>,
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

// Expression attributes, from linux/netfilter/nf_tables.h.
pub(super) const NFTA_PAYLOAD_DREG: u16 = 1;
pub(super) const NFTA_PAYLOAD_BASE: u16 = 2;
pub(super) const NFTA_PAYLOAD_OFFSET: u16 = 3;
pub(super) const NFTA_PAYLOAD_LEN: u16 = 4;
pub(super) const NFTA_BITWISE_SREG: u16 = 1;
pub(super) const NFTA_BITWISE_DREG: u16 = 2;
pub(super) const NFTA_BITWISE_LEN: u16 = 3;
pub(super) const NFTA_BITWISE_MASK: u16 = 4;
pub(super) const NFTA_BITWISE_XOR: u16 = 5;
pub(super) const NFTA_CMP_SREG: u16 = 1;
pub(super) const NFTA_CMP_OP: u16 = 2;
pub(super) const NFTA_CMP_DATA: u16 = 3;
pub(super) const NFTA_META_DREG: u16 = 1;
pub(super) const NFTA_META_KEY: u16 = 2;
pub(super) const NFTA_META_SREG: u16 = 3;
pub(super) const NFTA_CT_DREG: u16 = 1;
pub(super) const NFTA_CT_KEY: u16 = 2;
pub(super) const NFTA_NUMGEN_DREG: u16 = 1;
pub(super) const NFTA_NUMGEN_MODULUS: u16 = 2;
pub(super) const NFTA_NUMGEN_TYPE: u16 = 3;
pub(super) const NFTA_NUMGEN_OFFSET: u16 = 4;
pub(super) const NFT_NG_RANDOM: u32 = 1;
pub(super) const NFTA_IMMEDIATE_DREG: u16 = 1;
pub(super) const NFTA_IMMEDIATE_DATA: u16 = 2;
pub(super) const NFTA_NAT_TYPE: u16 = 1;
pub(super) const NFTA_NAT_FAMILY: u16 = 2;
pub(super) const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
pub(super) const NFTA_NAT_REG_PROTO_MIN: u16 = 5;
pub(super) const NFTA_NAT_FLAGS: u16 = 7;
pub(super) const NFT_NAT_DNAT: u32 = 1;
pub(super) const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 2;
pub(super) const NF_NAT_RANGE_PROTO_RANDOM_FULLY: u32 = 0x10;
pub(super) const NFTA_MASQ_FLAGS: u16 = 1;
pub(super) const NFTA_REJECT_TYPE: u16 = 1;
pub(super) const NFTA_REJECT_ICMP_CODE: u16 = 2;
pub(super) const NFT_REJECT_ICMP_UNREACH: u32 = 0;
pub(super) const NFTA_FIB_DREG: u16 = 1;
pub(super) const NFTA_FIB_RESULT: u16 = 2;
pub(super) const NFTA_FIB_FLAGS: u16 = 3;
pub(super) const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
pub(super) const NFTA_FIB_F_SADDR: u32 = 1;
pub(super) const NFTA_FIB_F_DADDR: u32 = 2;
pub(super) const NFTA_LOOKUP_SET: u16 = 1;
pub(super) const NFTA_LOOKUP_SREG: u16 = 2;
pub(super) const NFTA_LOOKUP_DREG: u16 = 3;
pub(super) const NFTA_LOOKUP_FLAGS: u16 = 5;
pub(super) const NFT_LOOKUP_F_INV: u32 = 1;
pub(super) const NFTA_DYNSET_SET_NAME: u16 = 1;
pub(super) const NFTA_DYNSET_OP: u16 = 3;
pub(super) const NFTA_DYNSET_SREG_KEY: u16 = 4;
pub(super) const NFT_DYNSET_OP_UPDATE: u32 = 1;

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
            Expr::Numgen {
                modulus,
                offset,
                dreg,
            } => {
                batch.put_u32(NFTA_NUMGEN_DREG, *dreg);
                batch.put_u32(NFTA_NUMGEN_MODULUS, *modulus);
                batch.put_u32(NFTA_NUMGEN_TYPE, NFT_NG_RANDOM);
                batch.put_u32(NFTA_NUMGEN_OFFSET, *offset);
            }
            Expr::Immediate { dreg, data } => {
                batch.put_u32(NFTA_IMMEDIATE_DREG, *dreg);
                batch.put_value(NFTA_IMMEDIATE_DATA, data);
            }
            Expr::Verdict(verdict) => {
                batch.put_u32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
                batch.put_verdict(NFTA_IMMEDIATE_DATA, verdict);
            }
            Expr::Dnat {
                family,
                proto_reg,
                flags,
            } => {
                batch.put_u32(NFTA_NAT_TYPE, NFT_NAT_DNAT);
                batch.put_u32(NFTA_NAT_FAMILY, u32::from(super::nfproto(*family)));
                batch.put_u32(NFTA_NAT_REG_ADDR_MIN, NFT_REG_1);
                batch.put_u32(NFTA_NAT_REG_PROTO_MIN, *proto_reg);
                if let Some(flags) = flags {
                    batch.put_u32(NFTA_NAT_FLAGS, *flags);
                }
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
