//! The periodic drift check: instead of rewriting ~76,000 rules every sync period, list only the
//! built-in chains (for Portico's jumps) and Portico's top-level chains (for their rule counts),
//! and repair only what is off. kube-proxy does the same with its canary chains and an hourly
//! full sync (k/k#129329).
//!
//! ```text
//!   iptables -S PREROUTING, OUTPUT, ...  ─▶ missing jumps (inspect_dump)       ┐
//!   iptables -S PORTICO-SERVICES, ...    ─▶ rule counts vs the rendered set ───┴▶ repair_for ─▶ Repair
//! ```
//!
//! A flushed top-level chain is rewritten alone. A missing top-level chain, or every top-level
//! chain of a table emptied, means the table itself was flushed or deleted (a firewall reload):
//! then nothing of Portico's can be trusted and the repair is a full rewrite.

use super::apply::{Iptables, IptablesError};
use super::names;
use super::render::BUILTIN_JUMPS;
use super::ruleset::{ChainNames, ExtraLines, RuleSet, Table};

/// Portico's chains that hold no per-Service rules: few, short, and jumped to from the built-in
/// chains, so listing them is cheap at any scale.
pub const TOP_CHAINS: [(Table, &str); 8] = [
    (Table::Nat, names::SERVICES),
    (Table::Nat, names::NODEPORTS),
    (Table::Nat, names::POSTROUTING),
    (Table::Nat, names::MARK_MASQ),
    (Table::Filter, names::SERVICES),
    (Table::Filter, names::EXTERNAL_SERVICES),
    (Table::Filter, names::NODEPORTS),
    (Table::Filter, names::FIREWALL),
];

/// One top-level chain as the check found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub table: Table,
    pub chain: &'static str,
    /// Rules in the rendered set.
    pub expected: usize,
    /// Rules in the kernel; `None` when the chain does not exist.
    pub found: Option<usize>,
}

/// What a check decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Repair {
    /// Everything checked is in place.
    #[default]
    Nothing,
    /// Rewrite these chains and add these jumps; everything else is right.
    Partial {
        chains: ChainNames,
        jumps: ExtraLines,
    },
    /// The table was flushed or deleted: rewrite everything.
    Full,
}

/// Decides the repair from the top-level chains and the missing jumps (pure).
pub fn repair_for(observed: &[Observed], jumps: ExtraLines) -> Repair {
    if observed.iter().any(|o| o.found.is_none()) {
        return Repair::Full;
    }
    for table in Table::ALL {
        let with_rules: Vec<&Observed> = observed
            .iter()
            .filter(|o| o.table == table && o.expected > 0)
            .collect();
        // One emptied chain is a flush of that chain; all of them, a flush of the table, which
        // emptied the per-Service chains as well.
        if with_rules.len() > 1 && with_rules.iter().all(|o| o.found == Some(0)) {
            return Repair::Full;
        }
    }
    let mut chains = ChainNames::default();
    for o in observed.iter().filter(|o| o.found != Some(o.expected)) {
        chains.of_mut(o.table).insert(o.chain.to_string());
    }
    if chains == ChainNames::default() && jumps == ExtraLines::default() {
        Repair::Nothing
    } else {
        Repair::Partial { chains, jumps }
    }
}

/// Whether the built-in chains show an earlier run's rules: some of Portico's jumps are already
/// there, or jumps to PORTICO- chains that are not wanted (pure).
pub fn earlier_run_seen(jumps: &ExtraLines) -> bool {
    let lines = || jumps.nat.iter().chain(&jumps.filter);
    let inserts = lines().filter(|line| line.starts_with("-I ")).count();
    inserts < BUILTIN_JUMPS.len() || lines().any(|line| line.starts_with("-D "))
}

/// Lists the built-in chains and Portico's top-level chains of `set` and decides the repair.
pub async fn check(iptables: &Iptables, set: &RuleSet) -> Result<Repair, IptablesError> {
    let jumps = iptables.missing_jumps().await?;
    let mut observed = Vec::new();
    for (table, chain) in TOP_CHAINS {
        let Some(rules) = set.chains(table).get(chain) else {
            continue;
        };
        let listing = iptables.list_chain(table, chain).await?;
        observed.push(Observed {
            table,
            chain,
            expected: rules.len(),
            found: listing.map(|l| l.lines().filter(|l| l.starts_with("-A ")).count()),
        });
    }
    Ok(repair_for(&observed, jumps))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(
        table: Table,
        chain: &'static str,
        expected: usize,
        found: Option<usize>,
    ) -> Observed {
        Observed {
            table,
            chain,
            expected,
            found,
        }
    }

    fn in_place() -> Vec<Observed> {
        vec![
            observed(Table::Nat, names::SERVICES, 12, Some(12)),
            observed(Table::Nat, names::POSTROUTING, 3, Some(3)),
            observed(Table::Nat, names::MARK_MASQ, 1, Some(1)),
            observed(Table::Filter, names::SERVICES, 0, Some(0)),
            observed(Table::Filter, names::NODEPORTS, 2, Some(2)),
        ]
    }

    #[test]
    fn nothing_to_repair_when_everything_is_in_place() {
        assert_eq!(
            repair_for(&in_place(), ExtraLines::default()),
            Repair::Nothing
        );
    }

    #[test]
    fn a_missing_jump_is_added_alone() {
        let jumps = ExtraLines {
            nat: vec!["-I PREROUTING -j PORTICO-SERVICES".into()],
            filter: vec![],
        };
        assert_eq!(
            repair_for(&in_place(), jumps.clone()),
            Repair::Partial {
                chains: ChainNames::default(),
                jumps
            }
        );
    }

    #[test]
    fn a_flushed_chain_is_rewritten_alone() {
        let mut found = in_place();
        found[0].found = Some(0);
        let Repair::Partial { chains, jumps } = repair_for(&found, ExtraLines::default()) else {
            panic!("a partial repair");
        };
        assert_eq!(
            chains.nat.into_iter().collect::<Vec<_>>(),
            [names::SERVICES]
        );
        assert!(chains.filter.is_empty());
        assert_eq!(jumps, ExtraLines::default());
    }

    #[test]
    fn an_earlier_run_shows_in_the_built_in_chains() {
        let all_missing = ExtraLines {
            nat: vec!["-I PREROUTING -j PORTICO-SERVICES".into(); 3],
            filter: vec!["-I INPUT -j PORTICO-NODEPORTS".into(); BUILTIN_JUMPS.len() - 3],
        };
        assert!(!earlier_run_seen(&all_missing), "a clean node");
        let mut one_present = all_missing.clone();
        one_present.filter.pop();
        assert!(earlier_run_seen(&one_present));
        let mut old_jump = all_missing;
        old_jump
            .nat
            .push("-D PREROUTING -j PORTICO-SERVICES".into());
        assert!(earlier_run_seen(&old_jump), "an older version's jump");
    }

    #[test]
    fn a_deleted_chain_or_a_flushed_table_needs_a_full_rewrite() {
        let mut deleted = in_place();
        deleted[2].found = None;
        assert_eq!(repair_for(&deleted, ExtraLines::default()), Repair::Full);
        let mut flushed = in_place();
        for o in flushed.iter_mut().filter(|o| o.table == Table::Nat) {
            o.found = Some(0);
        }
        assert_eq!(repair_for(&flushed, ExtraLines::default()), Repair::Full);
    }
}
