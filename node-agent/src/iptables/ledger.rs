//! What the kernel holds, written beside it: a restarted agent rewrites only the chains that
//! changed while it was away instead of every rule.
//!
//! A full rewrite over an earlier run's rules costs far more than over an empty table:
//! iptables-nft must read every old rule back (the whole-table fetch `restore_all_chains` asks
//! for) and the kernel deletes each one. Reading the rules to compare them is that same cost.
//! So every restore also writes `PORTICO-LEDGER` in each table: nothing jumps to it, and its
//! rules are comments holding a fingerprint of each of 1,024 groups of Portico's chains (a chain
//! belongs to the group its name hashes to). The ledger is written in the same iptables-restore
//! transaction as the chains it describes, so the two never disagree unless someone edits
//! Portico's chains by hand, which the periodic drift check and full sync repair as before.
//!
//! ```text
//!   restart: -S PORTICO-LEDGER ─▶ groups whose fingerprint differs from the render
//!            ─▶ rewrite their chains only (+ the ledger, + missing jumps)
//! ```
//!
//! The fingerprints use a fixed-key hash: another process of the same build computes the same
//! values. A build that renders differently (or hashes differently) finds every group changed,
//! which is the full rewrite of before.

use std::hash::{DefaultHasher, Hash, Hasher};

use super::names;
use super::ruleset::{ChainNames, Chains, ExtraLines, RuleSet, Table};

/// The ledger chain, in the nat and the filter table.
pub const CHAIN: &str = "PORTICO-LEDGER";
/// Groups of chains per table: at 10,000 Services about 20 chains each, so a restart after a few
/// changes rewrites a few hundred chains.
pub const GROUPS: usize = 1024;
/// Fingerprints per comment (a comment holds at most 255 bytes).
const PER_RULE: usize = 12;
/// The first word of every ledger comment; a new layout takes a new version.
const VERSION: &str = "portico-ledger-v1";

/// One table's group fingerprints.
pub type Groups = Vec<u64>;

/// Which group a chain belongs to.
pub fn group_of(chain: &str) -> usize {
    let mut hasher = DefaultHasher::new();
    chain.hash(&mut hasher);
    (hasher.finish() % GROUPS as u64) as usize
}

/// The fingerprints of every group of `chains`.
pub fn fingerprints(chains: &Chains) -> Groups {
    let mut members: Vec<Vec<(&String, &Vec<String>)>> = vec![Vec::new(); GROUPS];
    for (name, rules) in chains {
        members[group_of(name)].push((name, rules));
    }
    members.iter().map(|chains| fingerprint(chains)).collect()
}

/// Recomputes the groups of `changed` chains in `groups` from `chains` (after a partial render).
pub fn update<'a>(
    groups: &mut Groups,
    chains: &Chains,
    changed: impl IntoIterator<Item = &'a String>,
) {
    let mut dirty = vec![false; GROUPS];
    let mut any = false;
    for name in changed {
        dirty[group_of(name)] = true;
        any = true;
    }
    if !any {
        return;
    }
    let mut members: Vec<Vec<(&String, &Vec<String>)>> = vec![Vec::new(); GROUPS];
    for (name, rules) in chains {
        let group = group_of(name);
        if dirty[group] {
            members[group].push((name, rules));
        }
    }
    for (group, chains) in members.iter().enumerate() {
        if dirty[group] {
            groups[group] = fingerprint(chains);
        }
    }
}

/// Names and rules of the chains of one group, in name order.
fn fingerprint(chains: &[(&String, &Vec<String>)]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for (name, rules) in chains {
        name.hash(&mut hasher);
        rules.hash(&mut hasher);
    }
    hasher.finish()
}

/// The restore lines that rewrite the ledger of one table: its declaration (which flushes it)
/// and its comment rules.
pub fn lines(groups: &Groups) -> Vec<String> {
    let mut lines = vec![format!(":{CHAIN} - [0:0]")];
    for (index, chunk) in groups.chunks(PER_RULE).enumerate() {
        let mut text = format!("{VERSION} {}", index * PER_RULE);
        for fingerprint in chunk {
            text.push_str(&format!(" {fingerprint:016x}"));
        }
        lines.push(format!("-A {CHAIN} {}", names::comment(&text)));
    }
    lines
}

/// The ledger lines of both tables, for the tables `written` says a restore touches.
pub fn extra_lines(ledger: &Ledger, written: impl Fn(Table) -> bool) -> ExtraLines {
    let of = |table| {
        if written(table) {
            lines(ledger.of(table))
        } else {
            Vec::new()
        }
    };
    ExtraLines {
        nat: of(Table::Nat),
        filter: of(Table::Filter),
    }
}

/// The group fingerprints in an `iptables -S PORTICO-LEDGER` listing; `None` unless every group
/// is there exactly once, in this layout.
pub fn parse(listing: &str) -> Option<Groups> {
    let mut groups: Vec<Option<u64>> = vec![None; GROUPS];
    for line in listing.lines() {
        let Some(rest) = line.strip_prefix(&format!("-A {CHAIN} ")) else {
            continue;
        };
        let text = rest
            .strip_prefix("-m comment --comment ")?
            .trim()
            .trim_matches('"');
        let mut words = text.split_whitespace();
        if words.next()? != VERSION {
            return None;
        }
        let first: usize = words.next()?.parse().ok()?;
        for (offset, word) in words.enumerate() {
            let slot = groups.get_mut(first + offset)?;
            if slot.is_some() {
                return None;
            }
            *slot = Some(u64::from_str_radix(word, 16).ok()?);
        }
    }
    groups.into_iter().collect()
}

/// Both tables' fingerprints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    pub nat: Groups,
    pub filter: Groups,
}

impl Ledger {
    pub fn of_rule_set(rules: &RuleSet) -> Self {
        Ledger {
            nat: fingerprints(&rules.nat),
            filter: fingerprints(&rules.filter),
        }
    }

    pub fn of(&self, table: Table) -> &Groups {
        match table {
            Table::Nat => &self.nat,
            Table::Filter => &self.filter,
        }
    }

    /// Brings the groups of the `changed` chains up to `rules`.
    pub fn update(&mut self, rules: &RuleSet, changed: &ChainNames) {
        if self.nat.len() != GROUPS || self.filter.len() != GROUPS {
            *self = Ledger::of_rule_set(rules);
            return;
        }
        update(&mut self.nat, &rules.nat, &changed.nat);
        update(&mut self.filter, &rules.filter, &changed.filter);
    }

    /// The chains of `rules` in the groups whose fingerprint differs from `found` (what the
    /// kernel's ledger says): the chains a restart must write.
    pub fn stale_chains(&self, rules: &RuleSet, found: &Ledger) -> ChainNames {
        let mut stale = ChainNames::default();
        for table in Table::ALL {
            let (ours, theirs) = (self.of(table), found.of(table));
            for name in rules.chains(table).keys() {
                let group = group_of(name);
                if ours.get(group) != theirs.get(group) {
                    stale.of_mut(table).insert(name.clone());
                }
            }
        }
        stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn many_chains(count: usize) -> RuleSet {
        let mut set = RuleSet::default();
        for i in 0..count {
            set.nat.insert(
                format!("PORTICO-SVC-{i:06}"),
                vec![format!("-j PORTICO-SEP-{i:06}")],
            );
        }
        set
    }

    #[test]
    fn the_ledger_reads_back_what_it_wrote() {
        let set = many_chains(3000);
        let ledger = Ledger::of_rule_set(&set);
        let lines = lines(&ledger.nat);
        assert_eq!(lines[0], ":PORTICO-LEDGER - [0:0]");
        assert_eq!(lines.len(), 1 + GROUPS.div_ceil(PER_RULE));
        // iptables -S prints the rules as they were written, without the declaration.
        let listing = format!("-N {CHAIN}\n{}\n", lines[1..].join("\n"));
        assert_eq!(parse(&listing), Some(ledger.nat.clone()));
        for line in &lines[1..] {
            let comment = line.split_once("--comment ").unwrap().1;
            assert!(comment.len() <= 255 + 2, "{comment}");
        }
    }

    #[test]
    fn a_partial_or_foreign_ledger_is_not_trusted() {
        let ledger = Ledger::of_rule_set(&many_chains(10));
        let lines = lines(&ledger.nat);
        let missing_one = lines[1..lines.len() - 1].join("\n");
        assert_eq!(parse(&missing_one), None);
        let doubled = format!("{}\n{}", lines[1], lines[1..].join("\n"));
        assert_eq!(parse(&doubled), None);
        let other_version = lines[1..].join("\n").replace(VERSION, "portico-ledger-v0");
        assert_eq!(parse(&other_version), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn only_the_groups_of_changed_chains_are_stale() {
        let before = many_chains(3000);
        let found = Ledger::of_rule_set(&before);
        let mut after = before.clone();
        after
            .nat
            .insert("PORTICO-SVC-000007".into(), vec!["-j DROP".into()]);
        after
            .nat
            .insert("PORTICO-NEW".into(), vec!["-j RETURN".into()]);
        after.nat.remove("PORTICO-SVC-000042");
        let ours = Ledger::of_rule_set(&after);
        let stale = ours.stale_chains(&after, &found);
        let groups = [
            group_of("PORTICO-SVC-000007"),
            group_of("PORTICO-NEW"),
            group_of("PORTICO-SVC-000042"),
        ];
        // Every chain of those groups is written again, and nothing else.
        let expected: BTreeSet<String> = after
            .nat
            .keys()
            .filter(|name| groups.contains(&group_of(name)))
            .cloned()
            .collect();
        assert_eq!(stale.nat, expected);
        assert!(stale.nat.contains("PORTICO-SVC-000007") && stale.nat.contains("PORTICO-NEW"));
        assert!(stale.nat.len() < 40, "{} chains", stale.nat.len());
        assert!(stale.filter.is_empty());
        assert!(ours.stale_chains(&after, &ours).nat.is_empty());
    }

    #[test]
    fn updating_the_changed_groups_equals_computing_all() {
        let before = many_chains(500);
        let mut ledger = Ledger::of_rule_set(&before);
        let mut after = before.clone();
        after
            .nat
            .insert("PORTICO-SVC-000003".into(), vec!["-j DROP".into()]);
        after.nat.remove("PORTICO-SVC-000004");
        let changed = ChainNames {
            nat: ["PORTICO-SVC-000003".into(), "PORTICO-SVC-000004".into()].into(),
            filter: BTreeSet::new(),
        };
        ledger.update(&after, &changed);
        assert_eq!(ledger, Ledger::of_rule_set(&after));
        assert_ne!(ledger, Ledger::of_rule_set(&before));
    }

    #[test]
    fn the_same_rules_give_the_same_ledger() {
        let set = many_chains(20);
        assert_eq!(Ledger::of_rule_set(&set), Ledger::of_rule_set(&set.clone()));
        let mut renamed = set.clone();
        let rules = renamed.nat.remove("PORTICO-SVC-000003").unwrap();
        renamed.nat.insert("PORTICO-SVC-X00003".into(), rules);
        assert_ne!(Ledger::of_rule_set(&set), Ledger::of_rule_set(&renamed));
    }

    use std::collections::BTreeSet;
}
