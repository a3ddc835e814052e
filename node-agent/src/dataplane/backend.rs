//! The seam between the proxier and the program that writes the node's rules: one trait fed the
//! whole `DesiredState` and the node context, implemented by the iptables syncers
//! (`iptables::IptablesBackend`) and the nftables table (`nftables::NftablesBackend`), chosen by
//! `--proxy-mode`.
//!
//! ```text
//!   Proxier ── sync / sync_full / check (DesiredState, NodeContext) ──▶ dyn Backend
//!                                            ▲                          ├─ IptablesBackend (v4, v6 Syncers)
//!            --proxy-mode ─▶ for_mode ───────┘                          └─ NftablesBackend (ip, ip6 tables)
//! ```
//!
//! A backend's first full sync also removes what the other backend left, so switching modes on
//! a running node leaves no rules of the other mode behind.

use futures::future::BoxFuture;

use super::{DesiredState, NodeContext};
use crate::iptables::IptablesError;
use crate::nftables::NftError;

/// One write a sync made, for the `dataplane_writes` metric: `full`, `partial` or `repair`.
pub type WriteKind = &'static str;

/// Why a backend could not sync or clean up; `label()` is what metrics count.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Iptables(#[from] IptablesError),
    #[error(transparent)]
    Nftables(#[from] NftError),
}

impl BackendError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            BackendError::Iptables(e) => e.label(),
            BackendError::Nftables(e) => e.label(),
        }
    }
}

/// A dataplane backend. Every method takes the whole desired state: a backend decides itself
/// what changed since its last sync.
pub trait Backend: Send {
    /// `iptables` or `nftables`, as `--proxy-mode` spells it.
    fn mode(&self) -> &'static str;

    /// Applies what changed since the last sync (everything when the kernel's state is unknown).
    fn sync<'a>(
        &'a mut self,
        state: &'a DesiredState,
        node: &'a NodeContext,
    ) -> BoxFuture<'a, Result<Vec<WriteKind>, BackendError>>;

    /// Rewrites everything (the full period elapsed, or after a failure).
    fn sync_full<'a>(
        &'a mut self,
        state: &'a DesiredState,
        node: &'a NodeContext,
    ) -> BoxFuture<'a, Result<Vec<WriteKind>, BackendError>>;

    /// A sync plus the periodic drift check, repairing what drifted.
    fn check<'a>(
        &'a mut self,
        state: &'a DesiredState,
        node: &'a NodeContext,
    ) -> BoxFuture<'a, Result<Vec<WriteKind>, BackendError>>;

    /// Removes everything this backend installed (both families); other rules stay.
    /// The periodic check when nothing changed since the last successful sync, without the
    /// desired state (building it is a fifth of a second of CPU at 10,000 Services, every sync
    /// period): `Some(writes)` when the kernel holds what was last written, `None` when the
    /// backend needs the state (it never synced, it found drift, or it has no such check).
    fn check_unchanged(&mut self) -> BoxFuture<'_, Result<Option<Vec<WriteKind>>, BackendError>> {
        Box::pin(async { Ok(None) })
    }

    fn cleanup(&mut self) -> BoxFuture<'_, Result<(), BackendError>>;
}

/// The backend `--proxy-mode` names, driving the tools inside `netns` when given (tests);
/// `None` for `off`, which has no dataplane.
pub fn for_mode(
    mode: crate::args::ProxyMode,
    netns: Option<&str>,
    node: &NodeContext,
) -> Option<Box<dyn Backend>> {
    use crate::args::ProxyMode;
    match mode {
        ProxyMode::Iptables => Some(Box::new(crate::iptables::IptablesBackend::new(netns, node))),
        ProxyMode::Nftables => Some(Box::new(crate::nftables::NftablesBackend::new(netns, node))),
        ProxyMode::Off => None,
    }
}

/// `--cleanup`: removes the rules of every backend, so a node is clean whichever mode ran.
pub async fn cleanup_all(netns: Option<&str>) -> Vec<(&'static str, BackendError)> {
    let node = NodeContext::default();
    let mut failures = Vec::new();
    for mode in [
        crate::args::ProxyMode::Iptables,
        crate::args::ProxyMode::Nftables,
    ] {
        if let Some(mut backend) = for_mode(mode, netns, &node)
            && let Err(e) = backend.cleanup().await
        {
            failures.push((backend.mode(), e));
        }
    }
    failures
}
