//! The controller's Prometheus metrics, under the `portico_controller_` prefix.

use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Handles to the controller's metrics; the registry that serves them is returned beside it.
#[derive(Clone, Debug, Default)]
pub struct ControllerMetrics {}

pub fn registry() -> (Registry, ControllerMetrics) {
    let mut registry = Registry::with_prefix("portico_controller");
    registry.register(
        "build",
        "The running build of portico-controller",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
    );
    (registry, ControllerMetrics::default())
}
