//! The nftables tables behind the dataplane seam. The first sync, and any sync after a failed
//! transaction, is full; later ones send only what changed. The periodic check asks whether the
//! table still exists (a `flush ruleset` by a firewall reload) and rewrites it when it does not;
//! edits inside the table are repaired by the full sync of `--full-sync-period`.

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use super::apply::{Nft, NftError};
use super::table::{TableCache, Update};
use crate::dataplane::backend::{Backend, BackendError, WriteKind};
use crate::dataplane::{DesiredState, IpFamily, NodeContext};

/// One family's table and whether the kernel holds its last render.
#[derive(Debug)]
struct Family {
    cache: TableCache,
    in_sync: bool,
}

/// `--proxy-mode nftables`.
pub struct NftablesBackend {
    nft: Nft,
    families: BTreeMap<IpFamily, Family>,
    /// Whether the iptables backend's rules were removed (once, at the first sync).
    other_mode_removed: bool,
    /// Transactions sent as netlink batches (the others went through `nft -f`).
    netlink_transactions: usize,
}

impl NftablesBackend {
    pub fn new(netns: Option<&str>, _node: &NodeContext) -> Self {
        NftablesBackend {
            nft: Nft::new(netns),
            families: BTreeMap::new(),
            other_mode_removed: false,
            netlink_transactions: 0,
        }
    }

    /// How many transactions (full or partial) went straight to the kernel as netlink batches.
    pub fn netlink_transactions(&self) -> usize {
        self.netlink_transactions
    }

    /// The last full transaction of `family` (what the kernel holds after a successful sync).
    pub fn full_text(&self, family: IpFamily) -> Option<String> {
        self.families.get(&family).map(|f| f.cache.full_text())
    }

    async fn remove_other_mode(&mut self) {
        if self.other_mode_removed {
            return;
        }
        self.other_mode_removed = true;
        // Switching from iptables: its chains would still DNAT and REJECT beside this table.
        for family in [IpFamily::V4, IpFamily::V6] {
            let mut tools = crate::iptables::Iptables::new(family);
            if let Some(netns) = &self.nft.netns {
                tools = tools.in_netns(netns);
            }
            if let Err(error) = tools.cleanup().await {
                tracing::warn!(%error, ?family, "could not remove the iptables mode's rules");
            }
        }
    }

    async fn run(
        &mut self,
        state: &DesiredState,
        node: &NodeContext,
        full: bool,
        check: bool,
    ) -> Result<Vec<WriteKind>, BackendError> {
        self.remove_other_mode().await;
        let mut writes = Vec::new();
        for family in [IpFamily::V4, IpFamily::V6] {
            // IPv6 rules are written only once an IPv6 Service appears (and then kept in sync).
            // Keys sort by family first (V4 before V6), so the last key says whether one exists
            // without walking every port (0.4 ms at 10,000).
            let has_v6 = || {
                state
                    .ports
                    .keys()
                    .next_back()
                    .is_some_and(|key| key.family == IpFamily::V6)
            };
            if family == IpFamily::V6 && !self.families.contains_key(&family) && !has_v6() {
                continue;
            }
            let entry = self.families.entry(family).or_insert_with(|| Family {
                cache: TableCache::new(node, family),
                in_sync: false,
            });
            let synced = sync_family(&self.nft, entry, state, node, full, check).await?;
            if let Some((kind, netlink)) = synced {
                self.netlink_transactions += usize::from(netlink);
                writes.push(kind);
            }
        }
        Ok(writes)
    }
}

async fn sync_family(
    nft: &Nft,
    family: &mut Family,
    state: &DesiredState,
    node: &NodeContext,
    full: bool,
    check: bool,
) -> Result<Option<(WriteKind, bool)>, NftError> {
    if full || !family.in_sync {
        family.cache.invalidate();
    }
    let update = family.cache.update(state, node);
    let mut netlink = false;
    let mut kind = match &update {
        Update::Unchanged => None,
        Update::Partial(transaction) => match nft
            .apply_transaction(transaction, || transaction.text())
            .await
        {
            Ok(as_netlink) => {
                netlink = as_netlink;
                Some("partial")
            }
            Err(error) => {
                tracing::warn!(%error, "partial nft transaction failed; falling back to a full one");
                family.cache.invalidate();
                family.cache.update(state, node);
                netlink = write_full(nft, family).await?;
                Some("full")
            }
        },
        Update::Full => {
            netlink = write_full(nft, family).await?;
            Some("full")
        }
    };
    if check && kind.is_none() && !nft.table_exists(family.cache.family()).await? {
        tracing::warn!(family = ?family.cache.family(), "Portico's nftables table is gone; rewriting it");
        netlink = write_full(nft, family).await?;
        kind = Some("repair");
    }
    Ok(kind.map(|kind| (kind, netlink)))
}

/// Writes the whole table; returns whether it went as netlink.
async fn write_full(nft: &Nft, family: &mut Family) -> Result<bool, NftError> {
    family.in_sync = false;
    // The netlink batch skips nft's parse of the whole table (most of a full load's time);
    // `full_text` is the same table for nft when a shape is not encodable.
    let transaction = family.cache.full_transaction();
    let cache = &family.cache;
    match nft
        .apply_transaction(&transaction, || cache.full_text())
        .await
    {
        Ok(netlink) => {
            family.in_sync = true;
            Ok(netlink)
        }
        Err(error) => {
            family.cache.invalidate();
            Err(error)
        }
    }
}

impl Backend for NftablesBackend {
    fn mode(&self) -> &'static str {
        "nftables"
    }

    fn check_unchanged(&mut self) -> BoxFuture<'_, Result<Option<Vec<WriteKind>>, BackendError>> {
        Box::pin(async move {
            if self.families.is_empty() || self.families.values().any(|f| !f.in_sync) {
                return Ok(None);
            }
            let mut writes = Vec::new();
            for family in self.families.values_mut() {
                // A gone table is written again from the cache: no desired state needed.
                if !self.nft.table_exists(family.cache.family()).await? {
                    tracing::warn!(family = ?family.cache.family(), "Portico's nftables table is gone; rewriting it");
                    let netlink = write_full(&self.nft, family).await?;
                    self.netlink_transactions += usize::from(netlink);
                    writes.push("repair");
                }
            }
            Ok(Some(writes))
        })
    }

    fn sync<'a>(
        &'a mut self,
        state: &'a DesiredState,
        node: &'a NodeContext,
    ) -> BoxFuture<'a, Result<Vec<WriteKind>, BackendError>> {
        Box::pin(self.run(state, node, false, false))
    }

    fn sync_full<'a>(
        &'a mut self,
        state: &'a DesiredState,
        node: &'a NodeContext,
    ) -> BoxFuture<'a, Result<Vec<WriteKind>, BackendError>> {
        Box::pin(self.run(state, node, true, false))
    }

    fn check<'a>(
        &'a mut self,
        state: &'a DesiredState,
        node: &'a NodeContext,
    ) -> BoxFuture<'a, Result<Vec<WriteKind>, BackendError>> {
        Box::pin(self.run(state, node, false, true))
    }

    fn cleanup(&mut self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            self.families.clear();
            super::apply::remove_tables(self.nft.netns.as_deref()).await?;
            Ok(())
        })
    }
}
