//! Keeps one family's rules in step with the desired state. The first sync, and any sync after
//! a failed restore, is full: one iptables-save tells which PORTICO- chains exist and which
//! jumps from the built-in chains are missing, and every chain is written. Later syncs are
//! partial: only the chains whose rules changed are written (a Service's own chains, the one
//! dispatch bucket it sits in, the small parent and filter chains when they change), so the
//! cost follows the size of the change, not of the cluster. A failed partial restore falls
//! back to a full one, as kube-proxy does. The periodic `check` lists only the built-in chains
//! and Portico's top-level chains (`drift`) and rewrites only what drifted. Every restore also
//! writes the `ledger` of what the chains hold, so a restarted agent over an earlier run's rules
//! rewrites only the chains that changed meanwhile (a resume) instead of all of them.

use std::time::{Duration, Instant};

use super::apply::{Iptables, IptablesError};
use super::drift::{self, Repair};
use super::incremental::RenderCache;
use super::ledger::{self, Ledger};
use super::names;
use super::ruleset::{ChainNames, ExtraLines, RestorePlan, RuleSet, Table};
use crate::dataplane::{DesiredState, NodeContext};

/// What kind of restore a sync ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncKind {
    Full,
    Partial,
    /// Nothing changed: no restore ran.
    Unchanged,
    /// A drift check found and rewrote only what drifted.
    Repair,
    /// The first sync over an earlier run's rules: only the chains whose ledger group changed
    /// were written.
    Resume,
}

/// What one sync did and how long its parts took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncOutcome {
    pub kind: SyncKind,
    pub chains_written: usize,
    pub rules_written: usize,
    pub chains_deleted: usize,
    pub restore_bytes: usize,
    /// Rendering the rules and writing the restore input.
    pub compute: Duration,
    /// Reading existing chains and jumps (full syncs only).
    pub inspect: Duration,
    /// The restore itself.
    pub restore: Duration,
}

/// One family's iptables dataplane.
#[derive(Debug)]
pub struct Syncer {
    iptables: Iptables,
    cache: RenderCache,
    /// Whether the kernel holds what the cache rendered last; false before the first sync and
    /// after a failure, when the kernel's state is unknown.
    in_sync: bool,
    /// What the last probe said of the kernel's xt_bpf match (None before the first).
    hairpin_match: Option<bool>,
    /// Whether chains of an earlier run may exist that were not yet listed and deleted.
    leftovers_unknown: bool,
    /// The ledger of the rule set the cache holds, written with it (see `ledger`).
    ledger: Ledger,
    /// Whether the next full sync may resume from the kernel's ledger: only the process's first
    /// (a restart). After a failure or drift the kernel's state is in doubt, and those full
    /// syncs rewrite everything as before.
    may_resume: bool,
}

/// Up to this many chains a resume writes in a plain restore; beyond, iptables-nft's sorted list
/// of the batch's chain names costs more than its whole-table fetch (`restore_all_chains`).
const PLAIN_RESTORE_CHAINS: usize = 2000;

impl Syncer {
    pub fn new(iptables: Iptables, node: &NodeContext) -> Self {
        let cache = RenderCache::new(node, iptables.family);
        Syncer {
            iptables,
            cache,
            in_sync: false,
            hairpin_match: None,
            leftovers_unknown: false,
            ledger: Ledger::default(),
            may_resume: true,
        }
    }

    pub fn iptables(&self) -> &Iptables {
        &self.iptables
    }

    /// The rule set the last sync rendered (what the kernel holds after a successful sync).
    pub fn rule_set(&self) -> &RuleSet {
        self.cache.rule_set()
    }

    /// Brings the rules to `state`: partially when the kernel's state is known, else fully.
    pub async fn sync(
        &mut self,
        state: &DesiredState,
        node: &NodeContext,
    ) -> Result<SyncOutcome, IptablesError> {
        if !self.in_sync {
            return self.sync_full(state, node).await;
        }
        let started = Instant::now();
        let changes = {
            self.cache.render(state, node);
            self.cache.take_changes()
        };
        if changes.rebuilt {
            // The node's addresses changed: every chain is new, write them all.
            return self
                .restore_full(changes.chains, None, started.elapsed(), Duration::ZERO)
                .await;
        }
        let rules = self.cache.rule_set();
        self.ledger.update(rules, &changes.chains);
        let extra = ledger::extra_lines(&self.ledger, |table| !changes.chains.of(table).is_empty());
        let plan = rules.changed_restore(&changes.chains, &extra);
        let compute = started.elapsed();
        if plan.text.is_empty() {
            return Ok(outcome(
                SyncKind::Unchanged,
                &plan,
                compute,
                Duration::ZERO,
                Duration::ZERO,
            ));
        }
        let started = Instant::now();
        match self.iptables.restore(&plan.text).await {
            Ok(()) => Ok(outcome(
                SyncKind::Partial,
                &plan,
                compute,
                Duration::ZERO,
                started.elapsed(),
            )),
            Err(error) => {
                tracing::warn!(%error, "partial iptables restore failed; falling back to a full sync");
                self.in_sync = false;
                self.sync_full(state, node).await
            }
        }
    }

    /// A sync plus the periodic drift check: Portico's jumps and top-level chains are listed,
    /// and only what drifted is rewritten (everything, when the table was flushed).
    pub async fn check(
        &mut self,
        state: &DesiredState,
        node: &NodeContext,
    ) -> Result<SyncOutcome, IptablesError> {
        let synced = self.sync(state, node).await?;
        if synced.kind == SyncKind::Full {
            return Ok(synced);
        }
        let leftovers = match self.delete_leftovers().await {
            Ok(deleted) => deleted,
            Err(error) => {
                tracing::warn!(%error, "deleting leftover chains failed; falling back to a full sync");
                self.in_sync = false;
                return self.sync_full(state, node).await;
            }
        };
        let started = Instant::now();
        let repair = drift::check(&self.iptables, self.cache.rule_set()).await?;
        let inspect = started.elapsed();
        match repair {
            Repair::Nothing => Ok(leftovers.unwrap_or(synced)),
            Repair::Full => {
                tracing::warn!("Portico's top-level chains are gone; rewriting every rule");
                self.in_sync = false;
                self.sync_full(state, node).await
            }
            Repair::Partial { chains, jumps } => {
                tracing::warn!(?chains, ?jumps, "repairing drifted iptables rules");
                let started = Instant::now();
                let plan = self.cache.rule_set().repair_restore(&chains, &jumps);
                let compute = started.elapsed();
                let started = Instant::now();
                if let Err(error) = self.iptables.restore(&plan.text).await {
                    tracing::warn!(%error, "repair restore failed; falling back to a full sync");
                    self.in_sync = false;
                    return self.sync_full(state, node).await;
                }
                Ok(outcome(
                    SyncKind::Repair,
                    &plan,
                    compute,
                    inspect,
                    started.elapsed(),
                ))
            }
        }
    }

    /// Whether the kernel holds what the last sync wrote, as far as the periodic check looks
    /// (the jumps and the top-level chains), with no earlier run's chains left to look for.
    /// Needs no desired state: the caller knows nothing changed since that sync.
    pub async fn drift_free(&mut self) -> Result<bool, IptablesError> {
        if !self.in_sync || self.leftovers_unknown {
            return Ok(false);
        }
        Ok(drift::check(&self.iptables, self.cache.rule_set()).await? == Repair::Nothing)
    }

    /// Writes every chain, deletes PORTICO- chains that are not wanted, and restores missing
    /// jumps from the built-in chains. Run on start, after failures and periodically.
    pub async fn sync_full(
        &mut self,
        state: &DesiredState,
        node: &NodeContext,
    ) -> Result<SyncOutcome, IptablesError> {
        if self.in_sync {
            // Known state: the chains that went away since are among the changed ones, and only
            // the built-in chains need listing, which stays cheap at scale.
            let started = Instant::now();
            self.cache.render(state, node);
            let existing = self.cache.take_changes().chains;
            let compute = started.elapsed();
            return self
                .restore_full(existing, None, compute, Duration::ZERO)
                .await;
        }
        // Unknown state (start, or after a failure): what the kernel supports is asked again.
        let hairpin_match = self.iptables.supports_hairpin_match().await;
        if !hairpin_match && self.hairpin_match != Some(false) {
            tracing::warn!(
                family = ?self.iptables.family,
                "the kernel has no xt_bpf match (CONFIG_NETFILTER_XT_MATCH_BPF): a pod that \
                 reaches itself through another node's endpoint of a Local Service is not \
                 masqueraded, and its connection fails"
            );
        }
        self.hairpin_match = Some(hairpin_match);
        self.cache.set_hairpin_match(hairpin_match);
        // Unknown state: the built-in chains tell the missing jumps, and whether an earlier run
        // left rules. Its chains that are no longer wanted are harmless once nothing jumps to
        // them, so finding them (a dump of every rule, seconds at scale) waits for the next
        // check instead of delaying the start.
        let started = Instant::now();
        let jumps = self.iptables.missing_jumps().await?;
        let earlier_run = drift::earlier_run_seen(&jumps)
            || self
                .iptables
                .list_chain(Table::Nat, names::SERVICES)
                .await?
                .is_some();
        let inspect = started.elapsed();
        let started = Instant::now();
        self.cache.render(state, node);
        self.cache.take_changes();
        self.leftovers_unknown |= earlier_run;
        let compute = started.elapsed();
        if std::mem::take(&mut self.may_resume)
            && earlier_run
            && let Some(resumed) = self.resume(&jumps, compute, inspect).await?
        {
            return Ok(resumed);
        }
        self.restore_full(ChainNames::default(), Some(jumps), compute, inspect)
            .await
    }

    /// The first sync over an earlier run's rules, from the ledger it left: only the chains of
    /// the groups whose fingerprint differs are written (with the ledger and the missing jumps).
    /// `None` when there is no ledger to trust, or the restore failed: then a full sync follows.
    /// Chains the earlier run had in those groups and this one does not want are left to the
    /// next check's listing, like any earlier run's leftovers.
    async fn resume(
        &mut self,
        jumps: &ExtraLines,
        compute: Duration,
        inspect: Duration,
    ) -> Result<Option<SyncOutcome>, IptablesError> {
        let started = Instant::now();
        let Some(found) = self.read_ledger().await? else {
            tracing::info!(
                family = ?self.iptables.family,
                "no ledger from the earlier run's rules; rewriting every chain"
            );
            return Ok(None);
        };
        let inspect = inspect + started.elapsed();
        let started = Instant::now();
        let rules = self.cache.rule_set();
        let ours = Ledger::of_rule_set(rules);
        let stale = ours.stale_chains(rules, &found);
        let mut extra = jumps.clone();
        let ledger_lines = ledger::extra_lines(&ours, |table| ours.of(table) != found.of(table));
        extra.nat.extend(ledger_lines.nat);
        extra.filter.extend(ledger_lines.filter);
        let plan = rules.repair_restore(&stale, &extra);
        let compute = compute + started.elapsed();
        let started = Instant::now();
        let restored = if plan.chains_written <= PLAIN_RESTORE_CHAINS {
            self.iptables.restore(&plan.text).await
        } else {
            self.iptables.restore_all_chains(&plan.text).await
        };
        if let Err(error) = restored {
            tracing::warn!(%error, "resuming from the earlier run's ledger failed; rewriting every chain");
            return Ok(None);
        }
        tracing::info!(
            family = ?self.iptables.family,
            chains = plan.chains_written,
            of = rules.nat.len() + rules.filter.len(),
            "resumed over the earlier run's rules"
        );
        self.ledger = ours;
        self.in_sync = true;
        Ok(Some(outcome(
            SyncKind::Resume,
            &plan,
            compute,
            inspect,
            started.elapsed(),
        )))
    }

    /// Both tables' ledgers as the kernel holds them; `None` when either is missing or unreadable.
    async fn read_ledger(&self) -> Result<Option<Ledger>, IptablesError> {
        let mut found = Ledger::default();
        for table in Table::ALL {
            let Some(listing) = self.iptables.list_chain(table, ledger::CHAIN).await? else {
                return Ok(None);
            };
            let Some(groups) = ledger::parse(&listing) else {
                return Ok(None);
            };
            match table {
                Table::Nat => found.nat = groups,
                Table::Filter => found.filter = groups,
            }
        }
        Ok(Some(found))
    }

    /// Deletes the PORTICO- chains an earlier run (or a failed sync) left that are no longer
    /// wanted, found with one dump; `None` when there was nothing to look for.
    async fn delete_leftovers(&mut self) -> Result<Option<SyncOutcome>, IptablesError> {
        if !self.leftovers_unknown {
            return Ok(None);
        }
        let started = Instant::now();
        let (existing, _) = self.iptables.inspect().await?;
        let inspect = started.elapsed();
        let plan = self.cache.rule_set().delete_restore(&existing);
        let started = Instant::now();
        self.iptables.restore(&plan.text).await?;
        self.leftovers_unknown = false;
        if plan.chains_deleted > 0 {
            tracing::info!(
                chains = plan.chains_deleted,
                "deleted chains an earlier run left"
            );
        }
        Ok((!plan.text.is_empty()).then(|| {
            outcome(
                SyncKind::Repair,
                &plan,
                Duration::ZERO,
                inspect,
                started.elapsed(),
            )
        }))
    }

    async fn restore_full(
        &mut self,
        existing: ChainNames,
        jumps: Option<ExtraLines>,
        compute: Duration,
        inspect: Duration,
    ) -> Result<SyncOutcome, IptablesError> {
        self.in_sync = false;
        let started = Instant::now();
        let jumps = match jumps {
            Some(jumps) => jumps,
            None => self.iptables.missing_jumps().await?,
        };
        let inspect = inspect + started.elapsed();
        let started = Instant::now();
        let rules = self.cache.rule_set();
        self.ledger = Ledger::of_rule_set(rules);
        let extra = ledger::extra_lines(&self.ledger, |_| true);
        // Every chain goes in one restore that has iptables-nft fetch the whole table (see
        // `Iptables::restore_all_chains`). That fetch does not create the built-in chains a
        // fresh table lacks, so the jumps from them, and the chains no longer wanted (which a
        // stale jump may still point to), follow in a small restore of their own.
        let mut plan = rules.full_restore(&ChainNames::default(), &extra);
        let jumps_plan = rules.jumps_and_deletions(&existing, &jumps);
        let compute = compute + started.elapsed();
        let started = Instant::now();
        self.iptables.restore_all_chains(&plan.text).await?;
        self.iptables.restore(&jumps_plan.text).await?;
        let restore = started.elapsed();
        self.in_sync = true;
        plan.chains_deleted += jumps_plan.chains_deleted;
        plan.text.push_str(&jumps_plan.text);
        Ok(outcome(SyncKind::Full, &plan, compute, inspect, restore))
    }

    /// Removes every PORTICO- chain and jump of this family (agent uninstall, `--proxy=off`).
    pub async fn cleanup(&mut self) -> Result<(), IptablesError> {
        self.in_sync = false;
        self.iptables.cleanup().await
    }
}

fn outcome(
    kind: SyncKind,
    plan: &RestorePlan,
    compute: Duration,
    inspect: Duration,
    restore: Duration,
) -> SyncOutcome {
    SyncOutcome {
        kind,
        chains_written: plan.chains_written,
        rules_written: plan.rules_written,
        chains_deleted: plan.chains_deleted,
        restore_bytes: plan.text.len(),
        compute,
        inspect,
        restore,
    }
}
