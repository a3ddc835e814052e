//! The agent's Prometheus metrics, under the `portico_agent_` prefix.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncLabels {
    /// `full`, `partial` or `check`.
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// The `--proxy-mode` that wrote: `iptables` or `nftables`.
    pub backend: &'static str,
    /// `full`, `partial` or `repair`.
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProblemLabels {
    /// `fqdn`, `missing_port`, `invalid_address`, `duplicate_endpoint`, `missing_node_name`.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OwnershipLabels {
    /// `first_owner`, `owner_left`, `eligibility`, `not_covered`, `no_eligible_node`.
    pub reason: &'static str,
}

/// The L2 announcer's metrics, under `portico_agent_l2_`.
#[derive(Clone, Debug, Default)]
pub struct AnnouncerMetrics {
    pub ownership_changes: Family<OwnershipLabels, Counter>,
}

fn sync_histogram() -> Histogram {
    // 1 ms to ~16 s: a partial restore is milliseconds, a full one at scale is seconds.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// Handles to the agent's metrics; the registry that serves them is returned beside it.
#[derive(Clone, Debug)]
pub struct AgentMetrics {
    pub sync_duration: Family<SyncLabels, Histogram, fn() -> Histogram>,
    pub sync_errors: Family<ErrorLabels, Counter>,
    /// Dataplane writes: one iptables-restore, or one nftables transaction, each.
    pub writes: Family<WriteLabels, Counter>,
    pub endpoint_slice_problems: Family<ProblemLabels, Counter>,
    pub l2: AnnouncerMetrics,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        AgentMetrics {
            sync_duration: Family::new_with_constructor(sync_histogram),
            sync_errors: Family::default(),
            writes: Family::default(),
            endpoint_slice_problems: Family::default(),
            l2: AnnouncerMetrics::default(),
        }
    }
}

pub fn registry(node_name: &str) -> (Registry, AgentMetrics) {
    let mut registry = Registry::with_prefix("portico_agent");
    registry.register(
        "build",
        "The running build of portico-agent and the node it serves",
        Info::new(vec![
            ("version", env!("CARGO_PKG_VERSION").to_owned()),
            ("node", node_name.to_owned()),
        ]),
    );
    let metrics = AgentMetrics::default();
    registry.register(
        "sync_duration_seconds",
        "Time taken by one dataplane sync (rules, health checks, conntrack), by kind",
        metrics.sync_duration.clone(),
    );
    registry.register(
        "sync_errors",
        "Failed dataplane syncs, by error",
        metrics.sync_errors.clone(),
    );
    registry.register(
        "dataplane_writes",
        "Dataplane writes (one iptables-restore or one nftables transaction each), by backend and kind (full: every rule, partial: what changed, repair: drift a check found)",
        metrics.writes.clone(),
    );
    registry.register(
        "endpoint_slice_problems",
        "EndpointSlice data left out of the dataplane (counted once per slice version), by reason",
        metrics.endpoint_slice_problems.clone(),
    );
    registry.sub_registry_with_prefix("l2").register(
        "ownership_changes",
        "VIP ownership changes this node saw, by reason (first_owner, owner_left, eligibility, not_covered, no_eligible_node)",
        metrics.l2.ownership_changes.clone(),
    );
    (registry, metrics)
}
