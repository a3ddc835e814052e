//! A rendered rule set (Portico's chains of the nat and filter tables, each with its rules) and
//! the iptables-restore input that brings the kernel from one rule set to another.
//!
//! Every restore runs with `--noflush` and declares only PORTICO- chains, so other programs'
//! rules survive. A declared chain is flushed and rewritten; a chain that is no longer wanted is
//! declared (which empties it) and then deleted with `-X`, after every rule that jumped to it
//! has been rewritten in the same transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// One table's chains: name → rules (each the text after `-A <chain> `).
pub type Chains = BTreeMap<String, Vec<String>>;

/// The two tables Portico writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Nat,
    Filter,
}

impl Table {
    pub const ALL: [Table; 2] = [Table::Nat, Table::Filter];

    pub fn as_str(self) -> &'static str {
        match self {
            Table::Nat => "nat",
            Table::Filter => "filter",
        }
    }
}

/// Portico's chains in both tables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSet {
    pub nat: Chains,
    pub filter: Chains,
}

/// Chain names per table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainNames {
    pub nat: BTreeSet<String>,
    pub filter: BTreeSet<String>,
}

impl ChainNames {
    pub fn of(&self, table: Table) -> &BTreeSet<String> {
        match table {
            Table::Nat => &self.nat,
            Table::Filter => &self.filter,
        }
    }

    pub fn of_mut(&mut self, table: Table) -> &mut BTreeSet<String> {
        match table {
            Table::Nat => &mut self.nat,
            Table::Filter => &mut self.filter,
        }
    }
}

/// Which chains a restore writes.
#[derive(Clone, Copy)]
enum Select<'a> {
    All,
    ChangedFrom(&'a RuleSet),
    Named(&'a ChainNames),
}

/// Extra lines for one table, written after the chains' rules (jumps from built-in chains).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtraLines {
    pub nat: Vec<String>,
    pub filter: Vec<String>,
}

/// What a restore changes, for logs and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestorePlan {
    /// The iptables-restore input; empty when nothing changes.
    pub text: String,
    pub chains_written: usize,
    pub rules_written: usize,
    pub chains_deleted: usize,
}

impl RuleSet {
    pub fn chains(&self, table: Table) -> &Chains {
        match table {
            Table::Nat => &self.nat,
            Table::Filter => &self.filter,
        }
    }

    pub fn chains_mut(&mut self, table: Table) -> &mut Chains {
        match table {
            Table::Nat => &mut self.nat,
            Table::Filter => &mut self.filter,
        }
    }

    pub fn rule_count(&self) -> usize {
        self.nat
            .values()
            .chain(self.filter.values())
            .map(Vec::len)
            .sum()
    }

    pub fn chain_names(&self) -> ChainNames {
        ChainNames {
            nat: self.nat.keys().cloned().collect(),
            filter: self.filter.keys().cloned().collect(),
        }
    }

    /// Input for a full sync: every chain written, every chain in `existing` that is not wanted
    /// deleted, and `extra` lines (missing jumps) added.
    pub fn full_restore(&self, existing: &ChainNames, extra: &ExtraLines) -> RestorePlan {
        self.restore(Select::All, existing, extra)
    }

    /// Input for a partial sync from `previous` (what the last successful restore wrote): only
    /// chains whose rules changed are written, chains that went away are deleted.
    pub fn partial_restore(&self, previous: &RuleSet) -> RestorePlan {
        self.restore(
            Select::ChangedFrom(previous),
            &ChainNames::default(),
            &ExtraLines::default(),
        )
    }

    /// Input for a partial sync when the changed chains are known: each is written if this rule
    /// set has it, else deleted; `extra` lines (the ledger) follow.
    pub fn changed_restore(&self, changed: &ChainNames, extra: &ExtraLines) -> RestorePlan {
        self.restore(Select::Named(changed), &ChainNames::default(), extra)
    }

    /// Input that rewrites the named chains (those this rule set has) and adds `extra` lines:
    /// the repair of drift a check found.
    pub fn repair_restore(&self, chains: &ChainNames, extra: &ExtraLines) -> RestorePlan {
        let wanted = ChainNames {
            nat: chains
                .nat
                .iter()
                .filter(|name| self.nat.contains_key(*name))
                .cloned()
                .collect(),
            filter: chains
                .filter
                .iter()
                .filter(|name| self.filter.contains_key(*name))
                .cloned()
                .collect(),
        };
        self.restore(Select::Named(&wanted), &ChainNames::default(), extra)
    }

    /// Input that adds `extra` lines (the jumps from built-in chains) and then deletes the
    /// chains of `existing` this rule set does not have: the second half of a full sync.
    pub fn jumps_and_deletions(&self, existing: &ChainNames, extra: &ExtraLines) -> RestorePlan {
        self.restore(Select::Named(&ChainNames::default()), existing, extra)
    }

    /// Input that only deletes the chains of `existing` this rule set does not have.
    pub fn delete_restore(&self, existing: &ChainNames) -> RestorePlan {
        self.restore(
            Select::Named(&ChainNames::default()),
            existing,
            &ExtraLines::default(),
        )
    }

    fn restore(
        &self,
        select: Select<'_>,
        existing: &ChainNames,
        extra: &ExtraLines,
    ) -> RestorePlan {
        let mut plan = RestorePlan::default();
        for table in Table::ALL {
            let desired = self.chains(table);
            let write: Vec<(&String, &Vec<String>)> = match select {
                Select::All => desired.iter().collect(),
                Select::ChangedFrom(previous) => {
                    let previous = previous.chains(table);
                    desired
                        .iter()
                        .filter(|(name, rules)| previous.get(*name) != Some(*rules))
                        .collect()
                }
                Select::Named(names) => names
                    .of(table)
                    .iter()
                    .filter_map(|name| desired.get_key_value(name))
                    .collect(),
            };
            let mut delete: BTreeSet<&String> = existing
                .of(table)
                .iter()
                .filter(|name| !desired.contains_key(*name))
                .collect();
            match select {
                Select::All => {}
                Select::ChangedFrom(previous) => delete.extend(
                    previous
                        .chains(table)
                        .keys()
                        .filter(|name| !desired.contains_key(*name)),
                ),
                Select::Named(names) => delete.extend(
                    names
                        .of(table)
                        .iter()
                        .filter(|name| !desired.contains_key(*name)),
                ),
            }
            let extra_lines = match table {
                Table::Nat => &extra.nat,
                Table::Filter => &extra.filter,
            };
            if write.is_empty() && delete.is_empty() && extra_lines.is_empty() {
                continue;
            }
            let text = &mut plan.text;
            let _ = writeln!(text, "*{}", table.as_str());
            // Declared in reverse name order: iptables-nft 1.8 keeps its chain cache sorted and
            // inserts a new chain after a walk from the head, so descending order walks least.
            let mut declared: Vec<&String> = write
                .iter()
                .map(|(name, _)| *name)
                .chain(delete.iter().copied())
                .collect();
            declared.sort_unstable_by(|a, b| b.cmp(a));
            for name in declared {
                let _ = writeln!(text, ":{name} - [0:0]");
            }
            for (name, rules) in &write {
                for rule in rules.iter() {
                    let _ = writeln!(text, "-A {name} {rule}");
                }
                plan.rules_written += rules.len();
            }
            for line in extra_lines {
                let _ = writeln!(text, "{line}");
            }
            for name in &delete {
                let _ = writeln!(text, "-X {name}");
            }
            text.push_str("COMMIT\n");
            plan.chains_written += write.len();
            plan.chains_deleted += delete.len();
        }
        plan
    }

    /// The whole rule set as iptables-save would list Portico's part of it (for tests and logs).
    pub fn dump(&self) -> String {
        self.full_restore(&ChainNames::default(), &ExtraLines::default())
            .text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_set(nat: &[(&str, &[&str])]) -> RuleSet {
        let mut set = RuleSet::default();
        for (name, rules) in nat {
            set.nat.insert(
                name.to_string(),
                rules.iter().map(|r| r.to_string()).collect(),
            );
        }
        set
    }

    #[test]
    fn partial_restore_writes_changed_chains_and_deletes_gone_ones() {
        let before = rule_set(&[
            ("PORTICO-A", &["-j ACCEPT"]),
            ("PORTICO-B", &["-j PORTICO-C"]),
            ("PORTICO-C", &[]),
        ]);
        let after = rule_set(&[("PORTICO-A", &["-j ACCEPT"]), ("PORTICO-B", &["-j RETURN"])]);
        let plan = after.partial_restore(&before);
        assert_eq!(
            plan.text,
            "*nat\n:PORTICO-C - [0:0]\n:PORTICO-B - [0:0]\n-A PORTICO-B -j RETURN\n-X PORTICO-C\nCOMMIT\n"
        );
        assert_eq!(
            (plan.chains_written, plan.rules_written, plan.chains_deleted),
            (1, 1, 1)
        );
    }

    #[test]
    fn unchanged_rule_set_needs_no_restore() {
        let set = rule_set(&[("PORTICO-A", &["-j ACCEPT"])]);
        assert_eq!(set.partial_restore(&set).text, "");
    }

    #[test]
    fn full_restore_deletes_existing_chains_it_does_not_want() {
        let set = rule_set(&[("PORTICO-A", &["-j ACCEPT"])]);
        let existing = ChainNames {
            nat: ["PORTICO-OLD".to_string()].into(),
            filter: BTreeSet::new(),
        };
        let extra = ExtraLines {
            nat: vec!["-I PREROUTING -j PORTICO-A".into()],
            filter: vec![],
        };
        assert_eq!(
            set.full_restore(&existing, &extra).text,
            "*nat\n:PORTICO-OLD - [0:0]\n:PORTICO-A - [0:0]\n-A PORTICO-A -j ACCEPT\n\
             -I PREROUTING -j PORTICO-A\n-X PORTICO-OLD\nCOMMIT\n"
        );
    }
}
