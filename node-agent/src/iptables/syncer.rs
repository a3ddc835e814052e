//! Keeps one family's rules in step with the desired state. The first sync, and any sync after
//! a failed restore, is full: it reads which PORTICO- chains exist, checks the jumps from the
//! built-in chains, and writes every chain. Later syncs are partial: only the chains whose rules
//! changed are written (a Service's own chains and the one dispatch bucket it sits in), so the
//! cost follows the size of the change, not of the cluster. A failed partial restore falls back
//! to a full one, as kube-proxy does.

use std::time::{Duration, Instant};

use super::apply::{Iptables, IptablesError};
use super::render::RenderCache;
use super::ruleset::{ChainNames, RestorePlan, RuleSet};
use crate::dataplane::{DesiredState, NodeContext};

/// What kind of restore a sync ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncKind {
    Full,
    Partial,
    /// Nothing changed: no restore ran.
    Unchanged,
}

/// What one sync did and how long its parts took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncOutcome {
    pub kind: SyncKind,
    pub chains_written: usize,
    pub rules_written: usize,
    pub chains_deleted: usize,
    pub restore_bytes: usize,
    /// Rendering and diffing the rules.
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
    /// What the last successful restore left in the kernel; `None` before the first sync and
    /// after a failure, when the kernel's state is unknown.
    applied: Option<RuleSet>,
}

impl Syncer {
    pub fn new(iptables: Iptables, node: &NodeContext) -> Self {
        let cache = RenderCache::new(node, iptables.family);
        Syncer { iptables, cache, applied: None }
    }

    pub fn iptables(&self) -> &Iptables {
        &self.iptables
    }

    /// The rule set the last successful sync wrote.
    pub fn applied(&self) -> Option<&RuleSet> {
        self.applied.as_ref()
    }

    /// Brings the rules to `state`: partially when the kernel's state is known, else fully.
    pub async fn sync(&mut self, state: &DesiredState, node: &NodeContext) -> Result<SyncOutcome, IptablesError> {
        let Some(previous) = self.applied.take() else {
            return self.sync_full(state, node).await;
        };
        let started = Instant::now();
        let desired = self.cache.render(state, node);
        let plan = desired.partial_restore(&previous);
        let compute = started.elapsed();
        if plan.text.is_empty() {
            self.applied = Some(desired);
            return Ok(outcome(SyncKind::Unchanged, &plan, compute, Duration::ZERO, Duration::ZERO));
        }
        let started = Instant::now();
        match self.iptables.restore(&plan.text).await {
            Ok(()) => {
                let restore = started.elapsed();
                self.applied = Some(desired);
                Ok(outcome(SyncKind::Partial, &plan, compute, Duration::ZERO, restore))
            }
            Err(error) => {
                tracing::warn!(%error, "partial iptables restore failed; falling back to a full sync");
                self.sync_full(state, node).await
            }
        }
    }

    /// Writes every chain, deletes PORTICO- chains that are not wanted, and restores missing
    /// jumps from the built-in chains. Run on start, after failures and periodically.
    pub async fn sync_full(&mut self, state: &DesiredState, node: &NodeContext) -> Result<SyncOutcome, IptablesError> {
        let started = Instant::now();
        let existing = match self.applied.take() {
            Some(previous) => Ok(previous.chain_names()),
            None => self.iptables.existing_chains().await,
        };
        let existing: ChainNames = existing?;
        let jumps = self.iptables.missing_jumps().await?;
        let inspect = started.elapsed();
        let started = Instant::now();
        let desired = self.cache.render(state, node);
        let plan = desired.full_restore(&existing, &jumps);
        let compute = started.elapsed();
        let started = Instant::now();
        self.iptables.restore(&plan.text).await?;
        let restore = started.elapsed();
        self.applied = Some(desired);
        Ok(outcome(SyncKind::Full, &plan, compute, inspect, restore))
    }

    /// Removes every PORTICO- chain and jump of this family (agent uninstall, `--proxy=off`).
    pub async fn cleanup(&mut self) -> Result<(), IptablesError> {
        self.applied = None;
        self.iptables.cleanup().await
    }
}

fn outcome(kind: SyncKind, plan: &RestorePlan, compute: Duration, inspect: Duration, restore: Duration) -> SyncOutcome {
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
