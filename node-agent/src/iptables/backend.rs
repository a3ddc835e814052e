//! The iptables syncers behind the dataplane seam: one `Syncer` per family, the IPv6 one made
//! only once an IPv6 Service appears (and then kept in sync).

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use super::{Iptables, SyncKind, SyncOutcome, Syncer};
use crate::dataplane::backend::{Backend, BackendError, WriteKind};
use crate::dataplane::{DesiredState, IpFamily, NodeContext};

#[derive(Clone, Copy)]
enum Request {
    Changes,
    Check,
    Full,
}

/// `--proxy-mode iptables`.
pub struct IptablesBackend {
    netns: Option<String>,
    syncers: BTreeMap<IpFamily, Syncer>,
    /// Whether the nftables backend's tables were looked for (once, at the first sync).
    other_mode_removed: bool,
}

impl IptablesBackend {
    pub fn new(netns: Option<&str>, _node: &NodeContext) -> Self {
        IptablesBackend {
            netns: netns.map(String::from),
            syncers: BTreeMap::new(),
            other_mode_removed: false,
        }
    }

    fn tools(&self, family: IpFamily) -> Iptables {
        let tools = Iptables::new(family);
        match &self.netns {
            Some(netns) => tools.in_netns(netns),
            None => tools,
        }
    }

    /// The syncer of a family, when that family has rules.
    pub fn syncer(&self, family: IpFamily) -> Option<&Syncer> {
        self.syncers.get(&family)
    }

    async fn run(
        &mut self,
        state: &DesiredState,
        node: &NodeContext,
        request: Request,
    ) -> Result<Vec<WriteKind>, BackendError> {
        if !self.other_mode_removed {
            // Switching from nftables: its tables would still DNAT and drop beside these rules.
            crate::nftables::remove_tables(self.netns.as_deref()).await?;
            self.other_mode_removed = true;
        }
        let mut writes = Vec::new();
        for family in [IpFamily::V4, IpFamily::V6] {
            let wanted = state.ports_of(family).next().is_some();
            if !wanted && family == IpFamily::V6 && !self.syncers.contains_key(&family) {
                continue;
            }
            let tools = self.tools(family);
            let syncer = self
                .syncers
                .entry(family)
                .or_insert_with(|| Syncer::new(tools, node));
            let outcome = match request {
                Request::Full => syncer.sync_full(state, node).await?,
                Request::Check => syncer.check(state, node).await?,
                Request::Changes => syncer.sync(state, node).await?,
            };
            if let Some(kind) = write_kind(&outcome) {
                tracing::debug!(?family, kind = ?outcome.kind, chains = outcome.chains_written, rules = outcome.rules_written, restore = ?outcome.restore, "iptables synced");
                writes.push(kind);
            }
        }
        Ok(writes)
    }
}

fn write_kind(outcome: &SyncOutcome) -> Option<WriteKind> {
    match outcome.kind {
        SyncKind::Full => Some("full"),
        SyncKind::Partial => Some("partial"),
        SyncKind::Repair => Some("repair"),
        SyncKind::Resume => Some("resume"),
        SyncKind::Unchanged => None,
    }
}

impl Backend for IptablesBackend {
    fn mode(&self) -> &'static str {
        "iptables"
    }

    fn sync<'a>(
        &'a mut self,
        state: &'a DesiredState,
        node: &'a NodeContext,
    ) -> BoxFuture<'a, Result<Vec<WriteKind>, BackendError>> {
        Box::pin(self.run(state, node, Request::Changes))
    }

    fn sync_full<'a>(
        &'a mut self,
        state: &'a DesiredState,
        node: &'a NodeContext,
    ) -> BoxFuture<'a, Result<Vec<WriteKind>, BackendError>> {
        Box::pin(self.run(state, node, Request::Full))
    }

    fn check<'a>(
        &'a mut self,
        state: &'a DesiredState,
        node: &'a NodeContext,
    ) -> BoxFuture<'a, Result<Vec<WriteKind>, BackendError>> {
        Box::pin(self.run(state, node, Request::Check))
    }

    fn check_unchanged(&mut self) -> BoxFuture<'_, Result<Option<Vec<WriteKind>>, BackendError>> {
        Box::pin(async move {
            if self.syncers.is_empty() {
                return Ok(None);
            }
            for syncer in self.syncers.values_mut() {
                if !syncer.drift_free().await? {
                    return Ok(None);
                }
            }
            Ok(Some(Vec::new()))
        })
    }

    fn cleanup(&mut self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            self.syncers.clear();
            for family in [IpFamily::V4, IpFamily::V6] {
                self.tools(family).cleanup().await?;
            }
            Ok(())
        })
    }
}
