//! The health check servers kube-proxy runs, with kube-proxy's answers, so cloud load balancers
//! and operators' tooling see the same thing whichever of the two runs on a node:
//!
//! ```text
//!   dataplane sync ──queued()/updated()──▶ SyncHealth ──healthy?──┬─▶ :10256 /healthz /livez
//!   Node object ──────────── node_eligible() ─────────────────────┘
//!   local endpoint counts ──▶ ServiceHealthServers ─▶ :healthCheckNodePort (any path) 200 / 503
//! ```

pub mod node;
pub mod service;
pub mod sync_state;

pub use node::{NodeHealthServer, node_eligible};
pub use service::{BindFailure, ServiceHealthServers, ServiceKey};
pub use sync_state::SyncHealth;

/// The headers kube-proxy puts on every health answer.
const NOSNIFF: (&str, &str) = ("x-content-type-options", "nosniff");
const JSON: (&str, &str) = ("content-type", "application/json");
