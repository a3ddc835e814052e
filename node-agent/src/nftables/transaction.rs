//! A partial transaction as a list of commands on Portico's table, written either as `nft -f`
//! text or as one nf_tables netlink batch (`netlink.rs`). One list feeds both, so the two can
//! only differ in encoding, which the kernel-level test `partial = full` checks.

use std::fmt::Write as _;

use super::names::TABLE;
use super::service::family_word;
use crate::dataplane::IpFamily;

/// One command of a transaction, in the order it must run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    AddTable,
    /// Fails (EEXIST) when the table exists: how a check asks without listing it.
    CreateTable,
    DeleteTable,
    /// A map and its declaration body (`type ... : verdict;`).
    AddMap {
        name: String,
        body: String,
    },
    /// A chain that hooks into netfilter: `type nat hook prerouting priority dstnat; policy accept;`.
    AddBaseChain {
        name: String,
        hook: String,
    },
    /// Elements as nft writes them: `key` (sets) or `key : verdict` (maps).
    AddElements {
        set: String,
        elements: Vec<String>,
    },
    DeleteElements {
        set: String,
        keys: Vec<String>,
    },
    FlushChain(String),
    /// A set and its declaration body (`type ...; flags ...; timeout ...;`).
    AddSet {
        name: String,
        body: String,
    },
    AddChain(String),
    AddRule {
        chain: String,
        rule: String,
    },
    DeleteChain(String),
    DeleteSet(String),
}

/// The commands of one partial sync of one family's table, applied atomically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub family: IpFamily,
    pub commands: Vec<Command>,
}

impl Transaction {
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// The transaction as `nft -f` input.
    pub fn text(&self) -> String {
        let ip = family_word(self.family);
        let mut text = String::new();
        for command in &self.commands {
            let _ = match command {
                Command::AddTable => writeln!(text, "add table {ip} {TABLE}"),
                Command::CreateTable => writeln!(text, "create table {ip} {TABLE}"),
                Command::DeleteTable => writeln!(text, "delete table {ip} {TABLE}"),
                Command::AddMap { name, body } => {
                    writeln!(text, "add map {ip} {TABLE} {name} {{ {body} }}")
                }
                Command::AddBaseChain { name, hook } => {
                    writeln!(text, "add chain {ip} {TABLE} {name} {{ {hook} }}")
                }
                Command::AddElements { set, elements } => writeln!(
                    text,
                    "add element {ip} {TABLE} {set} {{ {} }}",
                    elements.join(", ")
                ),
                Command::DeleteElements { set, keys } => writeln!(
                    text,
                    "delete element {ip} {TABLE} {set} {{ {} }}",
                    keys.join(", ")
                ),
                Command::FlushChain(name) => writeln!(text, "flush chain {ip} {TABLE} {name}"),
                Command::AddSet { name, body } => {
                    writeln!(text, "add set {ip} {TABLE} {name} {{ {body} }}")
                }
                Command::AddChain(name) => writeln!(text, "add chain {ip} {TABLE} {name}"),
                Command::AddRule { chain, rule } => {
                    writeln!(text, "add rule {ip} {TABLE} {chain} {rule}")
                }
                Command::DeleteChain(name) => writeln!(text, "delete chain {ip} {TABLE} {name}"),
                Command::DeleteSet(name) => writeln!(text, "delete set {ip} {TABLE} {name}"),
            };
        }
        text
    }
}
