//! The periodic drift check: instead of rewriting ~76,000 rules every sync period, list only the
//! built-in chains (for Portico's jumps) and Portico's top-level chains (for their rule counts),
//! and repair only what is off. kube-proxy does the same with its canary chains and an hourly
//! full sync (k/k#129329).
//!
//! ```text
//!   -S PREROUTING, OUTPUT, ...  ─▶ missing jumps (inspect_dump)       ┐
//!   -S PORTICO-SERVICES, ...    ─▶ rule counts vs the rendered set ───┴▶ repair_for ─▶ Repair
//! ```
//!
//! With iptables-nft the listings of a table are `-S <chain>` lines fed to one
//! `iptables-restore` (two processes per check, not fourteen: starting iptables is most of a
//! listing's cost); with iptables-legacy, one `iptables-save` and a listing per chain.
//!
//! A flushed top-level chain is rewritten alone. A missing top-level chain, or every top-level
//! chain of a table emptied, means the table itself was flushed or deleted (a firewall reload):
//! then nothing of Portico's can be trusted and the repair is a full rewrite.

use super::apply::{Backend, Iptables, IptablesError, inspect_dump};
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
    // iptables-nft: one process per table lists every chain (a process start is most of what
    // a listing costs, and the check runs every sync period). A chain that does not exist fails
    // that run; the one-by-one listing below then tells which.
    if iptables.backend != Some(Backend::Legacy)
        && let Some(repair) = check_per_table(iptables, set).await?
    {
        return Ok(repair);
    }
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

/// The check with one listing per table; `None` when a listed chain does not exist.
async fn check_per_table(
    iptables: &Iptables,
    set: &RuleSet,
) -> Result<Option<Repair>, IptablesError> {
    let mut builtin_dump = String::new();
    let mut observed = Vec::new();
    for table in Table::ALL {
        let mut builtin: Vec<&str> = Vec::new();
        for jump in BUILTIN_JUMPS.iter().filter(|jump| jump.table == table) {
            if !builtin.contains(&jump.chain) {
                builtin.push(jump.chain);
            }
        }
        let top: Vec<(&str, usize)> = TOP_CHAINS
            .iter()
            .filter(|(t, _)| *t == table)
            .filter_map(|(_, chain)| Some((*chain, set.chains(table).get(*chain)?.len())))
            .collect();
        let names: Vec<&str> = builtin
            .iter()
            .copied()
            .chain(top.iter().map(|(chain, _)| *chain))
            .collect();
        let Some(listing) = iptables.list_chains(table, &names).await? else {
            return Ok(None);
        };
        let (builtin_lines, counts) = split_listing(&listing, &builtin);
        builtin_dump.push_str(&format!("*{}\n{builtin_lines}COMMIT\n", table.as_str()));
        for (chain, expected) in top {
            observed.push(Observed {
                table,
                chain,
                expected,
                found: Some(counts.get(chain).copied().unwrap_or(0)),
            });
        }
    }
    let (_, jumps) = inspect_dump(&builtin_dump);
    Ok(Some(repair_for(&observed, jumps)))
}

/// Splits the listing of several chains (pure): the rules of the `builtin` chains, as lines,
/// and the number of rules of every chain listed.
pub fn split_listing<'a>(
    listing: &'a str,
    builtin: &[&str],
) -> (String, std::collections::BTreeMap<&'a str, usize>) {
    let mut builtin_lines = String::new();
    let mut counts = std::collections::BTreeMap::new();
    for line in listing.lines() {
        let Some(chain) = line
            .strip_prefix("-A ")
            .and_then(|rest| rest.split_whitespace().next())
        else {
            continue;
        };
        *counts.entry(chain).or_insert(0) += 1;
        if builtin.contains(&chain) {
            builtin_lines.push_str(line);
            builtin_lines.push('\n');
        }
    }
    (builtin_lines, counts)
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

    #[test]
    fn a_listing_of_several_chains_splits_into_builtin_rules_and_counts() {
        let listing = "-P PREROUTING ACCEPT\n\
            -A PREROUTING -m comment --comment \"portico service portals\" -j PORTICO-SERVICES\n\
            -P OUTPUT ACCEPT\n\
            -N PORTICO-SERVICES\n\
            -A PORTICO-SERVICES -d 0.0.0.10/0.0.0.255 -j PORTICO-SVCS-0A\n\
            -A PORTICO-SERVICES -m addrtype --dst-type LOCAL -j PORTICO-NODEPORTS\n\
            -N PORTICO-MARK-MASQ\n";
        let (builtin, counts) = split_listing(listing, &["PREROUTING", "OUTPUT"]);
        assert_eq!(
            builtin,
            "-A PREROUTING -m comment --comment \"portico service portals\" -j PORTICO-SERVICES\n"
        );
        assert_eq!(counts.get("PREROUTING"), Some(&1));
        assert_eq!(counts.get("PORTICO-SERVICES"), Some(&2));
        // Listed with no rules: not counted, read as 0 by the check.
        assert_eq!(counts.get("OUTPUT"), None);
        assert_eq!(counts.get("PORTICO-MARK-MASQ"), None);
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
