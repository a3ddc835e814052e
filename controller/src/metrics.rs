//! The controller's Prometheus metrics, under the `portico_controller_` prefix.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `success` or `error`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The error's short label (`pool_exhausted`, `api`, ...).
    pub error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloudCallLabels {
    /// The API operation (`DescribeLoadBalancers`, `CreateTargetGroup`, ...).
    pub operation: &'static str,
    /// `read` or `write`.
    pub kind: &'static str,
    /// `ok`, `throttled` or `error`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub pool: String,
    /// `IPv4` or `IPv6`.
    pub family: &'static str,
    /// `assigned` or `available`.
    pub state: &'static str,
}

/// Handles to the controller's metrics; the registry that serves them is returned beside it.
#[derive(Clone, Debug)]
pub struct ControllerMetrics {
    /// 1 while this replica holds the leader Lease (or runs without leader election).
    pub leader: Gauge,
    pub reconciles: Family<ResultLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Histogram,
    /// 409 answers to writes made from a cached object older than the server's.
    pub api_conflicts: Counter,
    pub pool_addresses: Family<PoolLabels, Gauge>,
    /// Calls to the cloud's API, by operation, kind and result.
    pub aws_calls: Family<CloudCallLabels, Counter>,
    /// Calls to the Compute Engine API (the GCP provider), by operation, kind and result.
    pub gcp_calls: Family<CloudCallLabels, Counter>,
}

impl Default for ControllerMetrics {
    fn default() -> Self {
        ControllerMetrics {
            leader: Gauge::default(),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            // 0.5 ms to ~4 s: reconciles are API round trips on a healthy cluster.
            reconcile_duration: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            api_conflicts: Counter::default(),
            pool_addresses: Family::default(),
            aws_calls: Family::default(),
            gcp_calls: Family::default(),
        }
    }
}

pub fn registry() -> (Registry, ControllerMetrics) {
    let mut registry = Registry::with_prefix("portico_controller");
    registry.register(
        "build",
        "The running build of portico-controller",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
    );
    let metrics = ControllerMetrics::default();
    registry.register(
        "leader",
        "Whether this replica leads (1) or waits (0)",
        metrics.leader.clone(),
    );
    registry.register(
        "reconciles",
        "Service reconciles, by result",
        metrics.reconciles.clone(),
    );
    registry.register(
        "reconcile_errors",
        "Failed Service reconciles, by error",
        metrics.reconcile_errors.clone(),
    );
    registry.register(
        "reconcile_duration_seconds",
        "Time taken by one Service reconcile",
        metrics.reconcile_duration.clone(),
    );
    registry.register(
        "api_conflicts",
        "Writes refused with 409 Conflict because the cached object was older than the server's",
        metrics.api_conflicts.clone(),
    );
    registry.register(
        "pool_addresses",
        "Addresses of each AddressPool, by family and state (assigned or available)",
        metrics.pool_addresses.clone(),
    );
    registry.register(
        "aws_calls",
        "Calls to the AWS APIs (ELBv2, EC2), by operation, kind (read or write) and result \
         (ok, throttled after the SDK's retries, error)",
        metrics.aws_calls.clone(),
    );
    registry.register(
        "gcp_calls",
        "Calls to the Compute Engine API (GCP provider), by operation, kind (read or write) and \
         result (ok, throttled, error); operation polls count as reads",
        metrics.gcp_calls.clone(),
    );
    (registry, metrics)
}
