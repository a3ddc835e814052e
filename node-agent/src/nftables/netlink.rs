//! Transactions sent straight to the kernel as one nf_tables netlink batch
//! (`NFNL_MSG_BATCH_BEGIN` … `END`: one atomic commit), without the nft binary: partial syncs
//! and full loads alike.
//!
//! ```text
//!   Transaction (transaction.rs) ─▶ encode (pure: commands ─▶ nfnetlink messages; rules via
//!                                   rule.rs ─▶ expr.rs, declarations via decl.rs)
//!                                ─▶ socket::send (one sendmsg, then the kernel's verdict)
//!          └─ a command or rule shape this encoder does not know ─▶ Unsupported ─▶ `nft -f` text
//! ```
//!
//! Why not `nft -f`: nft 1.0.6 first fetches and parses every chain and set of the table (its
//! cache, about 16 ms of CPU at 10,000 Services here for any change), and a full load spends
//! about two thirds of its time in nft's own parsing and evaluation (1.2 s of CPU at 10,000
//! Services against 0.5 s through netlink, most of that the kernel's). Why hand-built rather
//! than a crate: the pure-Rust `rustables` has no numgen, fib, ct status or dynset expressions
//! and no verdict-map elements; `nftnl`/`mnl` bind libnftnl/libmnl (C -dev packages on every
//! builder) and still cover only some expressions. Portico's table uses a few dozen fixed
//! shapes, listed in `rule.rs`; anything else falls back to the text path, so correctness never
//! depends on this encoder knowing a shape.
//!
//! The messages mirror what nft 1.0.6 sends for the same text (checked with
//! `nft --debug=netlink,mnl`). Kernel-level tests compare listings: a netlink full load with
//! `nft -f` of the table text, and netlink partials with a full load of the same state.

mod decl;
pub mod expr;
pub mod rule;
pub mod socket;

use std::net::IpAddr;

use self::decl::{Hook, SetDecl};
use super::names::{ENDPOINT_MAPS, TABLE};
use super::transaction::{Command, Transaction};
use crate::dataplane::IpFamily;

pub use socket::{NetlinkError, send};

/// A command or shape the encoder does not handle (the caller uses `nft -f` instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not encodable as netlink: {0}")]
pub struct Unsupported(pub String);

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_DELSET: u16 = 11;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLA_F_NESTED: u16 = 0x8000;

// Attribute numbers from linux/netfilter/nf_tables.h.
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_DATA_TYPE: u16 = 6;
const NFTA_SET_DATA_LEN: u16 = 7;
const NFTA_SET_ID: u16 = 10;
const NFTA_SET_TIMEOUT: u16 = 11;
const NFTA_SET_USERDATA: u16 = 13;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;

const NFT_SET_MAP: u32 = 0x8;
/// The data type of verdict maps (`NFT_DATA_VERDICT`).
const NFT_DATA_VERDICT: u32 = 0xffff_ff00;
/// nft 1.0.6's user data for sets and maps with concatenated keys, byte for byte (seen with
/// `nft --debug=mnl`; the same for both families).
const SET_USERDATA_CONCAT: [u8; 16] = [0, 4, 0, 0, 0, 0, 3, 8, 0, 4, 13, 0, 0, 0, 1, 0];
const MAP_USERDATA_CONCAT: [u8; 28] = [
    0, 4, 0, 0, 0, 0, 1, 4, 0, 0, 0, 0, 3, 8, 0, 4, 13, 0, 0, 0, 1, 0, 6, 4, 0, 0, 0, 0,
];
/// Elements per message: the element list is one attribute, whose length is 16 bits.
const ELEMENTS_PER_MESSAGE: usize = 200;
/// nft's set user data: key byte order (NFTNL_UDATA_SET_KEYBYTEORDER) = big endian, as nft
/// 1.0.6 writes it for address sets; `nft list` reads the type from it.
const SET_USERDATA_BIG_ENDIAN_KEY: [u8; 6] = [0, 4, 2, 0, 0, 0];

/// Netlink messages being built into one buffer.
#[derive(Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
    seq: u32,
    /// Sequence number of the last command (the one that asks for an ack).
    last_command: Option<(u32, usize)>,
}

impl Batch {
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The sequence number whose ack ends the kernel's reply.
    pub fn last_seq(&self) -> Option<u32> {
        self.last_command.map(|(seq, _)| seq)
    }

    fn message(&mut self, msg_type: u16, flags: u16, family: u8, res_id: u16) -> usize {
        self.seq += 1;
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]); // length, set by `end`
        self.buf.extend_from_slice(&msg_type.to_ne_bytes());
        self.buf
            .extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        self.buf.extend_from_slice(&self.seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        // nfgenmsg: family, version 0, resource id (big endian).
        self.buf.push(family);
        self.buf.push(0);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        start
    }

    fn end(&mut self, start: usize) {
        let len = u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX);
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    fn command(&mut self, msg: u16, flags: u16, family: u8) -> usize {
        let start = self.message((NFNL_SUBSYS_NFTABLES << 8) | msg, flags, family, 0);
        self.last_command = Some((self.seq, start));
        start
    }

    pub fn put(&mut self, attr: u16, data: &[u8]) {
        let len = u16::try_from(4 + data.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&attr.to_ne_bytes());
        self.buf.extend_from_slice(data);
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    pub fn put_str(&mut self, attr: u16, value: &str) {
        let mut data = value.as_bytes().to_vec();
        data.push(0);
        self.put(attr, &data);
    }

    pub fn put_u32(&mut self, attr: u16, value: u32) {
        self.put(attr, &value.to_be_bytes());
    }

    pub fn nest(&mut self, attr: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(attr | NLA_F_NESTED).to_ne_bytes());
        start
    }

    pub fn end_nest(&mut self, start: usize) {
        let len = u16::try_from(self.buf.len() - start).unwrap_or(u16::MAX);
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// `NFTA_DATA_VALUE` inside `attr`.
    pub fn put_value(&mut self, attr: u16, value: &[u8]) {
        let nest = self.nest(attr);
        self.put(NFTA_DATA_VALUE, value);
        self.end_nest(nest);
    }

    /// `NFTA_DATA_VERDICT` inside `attr`.
    pub fn put_verdict(&mut self, attr: u16, verdict: &expr::Verdict) {
        let outer = self.nest(attr);
        let inner = self.nest(NFTA_DATA_VERDICT);
        self.put_u32(NFTA_VERDICT_CODE, verdict.code as u32);
        if let Some(chain) = &verdict.chain {
            self.put_str(NFTA_VERDICT_CHAIN, chain);
        }
        self.end_nest(inner);
        self.end_nest(outer);
    }
}

fn nfproto(family: IpFamily) -> u8 {
    match family {
        IpFamily::V4 => 2,
        IpFamily::V6 => 10,
    }
}

/// The transaction as one batch, or the first thing the encoder does not handle.
pub fn encode(transaction: &Transaction) -> Result<Batch, Unsupported> {
    let family = transaction.family;
    let proto = nfproto(family);
    let mut batch = Batch::default();
    let begin = batch.message(NFNL_MSG_BATCH_BEGIN, 0, 0, NFNL_SUBSYS_NFTABLES);
    batch.end(begin);
    let mut set_id = 0u32;
    for command in &transaction.commands {
        let start = match command {
            Command::AddTable | Command::CreateTable | Command::DeleteTable => {
                let (msg, flags) = match command {
                    Command::AddTable => (NFT_MSG_NEWTABLE, NLM_F_CREATE),
                    Command::CreateTable => (NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL),
                    _ => (NFT_MSG_DELTABLE, 0),
                };
                let start = batch.command(msg, flags, proto);
                batch.put_str(NFTA_TABLE_NAME, TABLE);
                if msg == NFT_MSG_NEWTABLE {
                    batch.put_u32(NFTA_TABLE_FLAGS, 0);
                }
                start
            }
            Command::AddElements { set, elements } => {
                for chunk in elements.chunks(ELEMENTS_PER_MESSAGE) {
                    let start = batch.command(NFT_MSG_NEWSETELEM, NLM_F_CREATE, proto);
                    put_elements(&mut batch, set, chunk)?;
                    batch.end(start);
                }
                continue;
            }
            Command::DeleteElements { set, keys } => {
                for chunk in keys.chunks(ELEMENTS_PER_MESSAGE) {
                    let start = batch.command(NFT_MSG_DELSETELEM, 0, proto);
                    put_elements(&mut batch, set, chunk)?;
                    batch.end(start);
                }
                continue;
            }
            Command::AddBaseChain { name, hook } => {
                let hook = Hook::parse(hook)?;
                let start = batch.command(NFT_MSG_NEWCHAIN, NLM_F_CREATE, proto);
                batch.put_str(NFTA_CHAIN_TABLE, TABLE);
                batch.put_str(NFTA_CHAIN_NAME, name);
                batch.put_str(NFTA_CHAIN_TYPE, hook.kind);
                batch.put_u32(NFTA_CHAIN_POLICY, hook.policy);
                let nest = batch.nest(NFTA_CHAIN_HOOK);
                batch.put_u32(NFTA_HOOK_HOOKNUM, hook.number);
                batch.put_u32(NFTA_HOOK_PRIORITY, hook.priority as u32);
                batch.end_nest(nest);
                start
            }
            Command::FlushChain(chain) => {
                let start = batch.command(NFT_MSG_DELRULE, 0, proto);
                batch.put_str(NFTA_RULE_TABLE, TABLE);
                batch.put_str(NFTA_RULE_CHAIN, chain);
                start
            }
            Command::AddSet { name, body } | Command::AddMap { name, body } => {
                let set = SetDecl::parse(body, family)?;
                set_id += 1;
                let start = batch.command(NFT_MSG_NEWSET, NLM_F_CREATE, proto);
                batch.put_str(NFTA_SET_TABLE, TABLE);
                batch.put_str(NFTA_SET_NAME, name);
                batch.put_u32(NFTA_SET_FLAGS, set.flags);
                batch.put_u32(NFTA_SET_KEY_TYPE, set.key_type);
                batch.put_u32(NFTA_SET_KEY_LEN, set.key_len);
                if set.flags & NFT_SET_MAP != 0 {
                    let (data_type, data_len) = set.data.unwrap_or((NFT_DATA_VERDICT, 0));
                    batch.put_u32(NFTA_SET_DATA_TYPE, data_type);
                    batch.put_u32(NFTA_SET_DATA_LEN, data_len);
                }
                batch.put_u32(NFTA_SET_ID, set_id);
                if let Some(ms) = set.timeout_ms {
                    batch.put(NFTA_SET_TIMEOUT, &ms.to_be_bytes());
                }
                let userdata: &[u8] = match (set.fields, set.flags & NFT_SET_MAP != 0) {
                    _ if set.userdata.is_some() => set.userdata.unwrap_or_default(),
                    (1, _) => &SET_USERDATA_BIG_ENDIAN_KEY,
                    (_, false) => &SET_USERDATA_CONCAT,
                    (_, true) => &MAP_USERDATA_CONCAT,
                };
                batch.put(NFTA_SET_USERDATA, userdata);
                start
            }
            Command::AddChain(name) | Command::DeleteChain(name) => {
                let msg = if matches!(command, Command::AddChain(_)) {
                    NFT_MSG_NEWCHAIN
                } else {
                    NFT_MSG_DELCHAIN
                };
                let flags = if msg == NFT_MSG_NEWCHAIN {
                    NLM_F_CREATE
                } else {
                    0
                };
                let start = batch.command(msg, flags, proto);
                batch.put_str(NFTA_CHAIN_TABLE, TABLE);
                batch.put_str(NFTA_CHAIN_NAME, name);
                start
            }
            Command::AddRule { chain, rule } => {
                let exprs = rule::parse(rule, family)?;
                let start = batch.command(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, proto);
                batch.put_str(NFTA_RULE_TABLE, TABLE);
                batch.put_str(NFTA_RULE_CHAIN, chain);
                let list = batch.nest(NFTA_RULE_EXPRESSIONS);
                for expr in &exprs {
                    expr.write(&mut batch);
                }
                batch.end_nest(list);
                start
            }
            Command::DeleteSet(name) => {
                let start = batch.command(NFT_MSG_DELSET, 0, proto);
                batch.put_str(NFTA_SET_TABLE, TABLE);
                batch.put_str(NFTA_SET_NAME, name);
                start
            }
        };
        batch.end(start);
    }
    // Only the last command asks for an ack: errors are reported without one, and the ack of
    // the last message arrives after every error and after the commit's own verdict.
    if let Some((_, start)) = batch.last_command {
        let flags_at = start + 6;
        let flags = u16::from_ne_bytes([batch.buf[flags_at], batch.buf[flags_at + 1]]) | NLM_F_ACK;
        batch.buf[flags_at..flags_at + 2].copy_from_slice(&flags.to_ne_bytes());
    }
    let end = batch.message(NFNL_MSG_BATCH_END, 0, 0, NFNL_SUBSYS_NFTABLES);
    batch.end(end);
    Ok(batch)
}

fn put_elements(batch: &mut Batch, set: &str, elements: &[String]) -> Result<(), Unsupported> {
    batch.put_str(NFTA_SET_ELEM_LIST_TABLE, TABLE);
    batch.put_str(NFTA_SET_ELEM_LIST_SET, set);
    let list = batch.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
    // The endpoint maps' keys end in a bucket number, and their data is address . port.
    let endpoint_map = ENDPOINT_MAPS.contains(&set);
    for element in elements {
        let (key, data) = match element.split_once(" : ") {
            Some((key, data)) => (key, Some(data)),
            None => (element.as_str(), None),
        };
        let key = if endpoint_map {
            endpoint_key(key)?
        } else {
            element_key(key)?
        };
        let item = batch.nest(NFTA_LIST_ELEM);
        batch.put_value(NFTA_SET_ELEM_KEY, &key);
        match data {
            Some(data) if endpoint_map => batch.put_value(NFTA_SET_ELEM_DATA, &element_key(data)?),
            Some(verdict) => batch.put_verdict(NFTA_SET_ELEM_DATA, &expr::Verdict::parse(verdict)?),
            None => {}
        }
        batch.end_nest(item);
    }
    batch.end_nest(list);
    Ok(())
}

/// An endpoint map's key (`10.96.0.1 . tcp . 80 . 7`, `tcp . 30001 . 7`): the concatenation,
/// then the bucket as numgen writes it, a 32-bit integer in host order.
pub fn endpoint_key(key: &str) -> Result<Vec<u8>, Unsupported> {
    let (fields, bucket) = key
        .rsplit_once(" . ")
        .ok_or_else(|| Unsupported(format!("endpoint key {key}")))?;
    let bucket: u32 = bucket
        .trim()
        .parse()
        .map_err(|_| Unsupported(format!("endpoint key {key}")))?;
    let mut bytes = element_key(fields)?;
    bytes.extend_from_slice(&bucket.to_ne_bytes());
    Ok(bytes)
}

/// A concatenated key (`10.96.0.1 . tcp . 80`): each field in network order, padded to 4 bytes
/// as the kernel's concatenations are.
pub fn element_key(key: &str) -> Result<Vec<u8>, Unsupported> {
    let mut bytes = Vec::new();
    for field in key.split(" . ") {
        let field = field.trim();
        if let Ok(addr) = field.parse::<IpAddr>() {
            match addr {
                IpAddr::V4(v4) => bytes.extend_from_slice(&v4.octets()),
                IpAddr::V6(v6) => bytes.extend_from_slice(&v6.octets()),
            }
        } else if let Some(proto) = rule::l4proto(field) {
            bytes.extend_from_slice(&[proto, 0, 0, 0]);
        } else if let Ok(port) = field.parse::<u16>() {
            bytes.extend_from_slice(&port.to_be_bytes());
            bytes.extend_from_slice(&[0, 0]);
        } else {
            return Err(Unsupported(format!("element key {key}")));
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;
