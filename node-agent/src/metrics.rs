//! The agent's Prometheus metrics, under the `portico_agent_` prefix.

use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Handles to the agent's metrics; the registry that serves them is returned beside it.
#[derive(Clone, Debug, Default)]
pub struct AgentMetrics {}

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
    (registry, AgentMetrics::default())
}
