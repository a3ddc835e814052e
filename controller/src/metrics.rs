//! The controller's Prometheus metrics, under the `portico_controller_` prefix.

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Handles to the controller's metrics; the registry that serves them is returned beside it.
#[derive(Clone, Debug, Default)]
pub struct ControllerMetrics {
    /// 1 while this replica holds the leader Lease (or runs without leader election).
    pub leader: Gauge,
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
    (registry, metrics)
}
