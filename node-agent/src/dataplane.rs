//! The node's Service dataplane: what the node should do with Service traffic, independent of
//! the backend that programs it.
//!
//! ```text
//!   Services + EndpointSlices ─▶ build::desired_state(node) ─▶ DesiredState
//!        (k8s_openapi objects)                                    │
//!                      ┌──────────────────────────────────────────┼──────────────────┐
//!                      ▼                                          ▼                  ▼
//!        iptables::render / Syncer (rules)      endpoints::local_ready_endpoints   conntrack::stale_udp_flows
//!                                               (health check counts)              (old vs new state)
//! ```
//!
//! Everything here but `conntrack::delete_stale_udp_flows` is pure.

pub mod backend;
pub mod build;
pub mod conntrack;
pub mod endpoints;
pub mod fingerprint;
pub mod model;
pub mod slice_problems;

pub use build::{desired_state, desired_state_of, service_ports};
pub use endpoints::{EndpointSets, categorize, local_ready_endpoints};
pub use model::{
    DesiredState, Endpoint, IpFamily, NodeContext, Protocol, ServicePort, ServicePortKey,
    TrafficPolicy,
};
