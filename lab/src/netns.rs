//! The lab's network-namespace cluster: a client, N nodes and their pods, joined by one bridge
//! that lives in a namespace of its own, on the kernel of the machine running the tests.
//!
//! ```text
//!  LabSpec ──▶ layout::Layout (pure: names, addresses, the ip/sysctl commands)
//!          ──▶ topology::LabTopology (runs them; routes, processes, probes; teardown on Drop)
//!                 ├─ leftovers: removes namespaces of dead earlier runs first
//!                 ├─ process:   `ip netns exec NS ...` children, killed on teardown
//!                 └─ probe:     `portico-lab probe` inside a namespace → the echo body
//!  `portico-lab echo-server` (echo): the pods' server, answers with client_address=<peer>
//! ```
//!
//! ```no_run
//! # async fn demo() -> Result<(), portico_lab::netns::NetnsError> {
//! use portico_lab::netns::{LabSpec, LabTopology};
//!
//! let lab = LabTopology::create(LabSpec::new(2, 1, "/usr/local/bin/portico-lab"))?;
//! let pod = lab.nodes()[1].pods[0].clone();
//! let _server = lab.spawn_echo_server(&pod.ns, "0.0.0.0:8080".parse().unwrap())?;
//! lab.route_via(lab.nodes()[1].pod_cidr, "node-1")?;
//! let body = lab.tcp_request_from(lab.client_ns(), (pod.ip, 8080).into()).await?;
//! assert!(body.contains(&format!("client_address={}", lab.client_ip())));
//! lab.teardown();
//! # Ok(()) }
//! ```
//!
//! Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2's `ip`.

use std::net::SocketAddr;
use std::time::Duration;

pub mod cmd;
pub mod echo;
pub mod hold;
pub mod layout;
pub mod leftovers;
pub mod names;
pub mod probe;
pub mod process;
pub mod sampler;
pub mod topology;

pub use layout::{CloudLayout, LabSpec, Layout, NodeLayout, PodLayout};
pub use probe::HttpReply;
pub use process::NsChild;
pub use topology::LabTopology;

/// What can go wrong building, using or removing the namespace cluster.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("the lab spec does not fit the address plan: {0}")]
    Spec(String),
    #[error("could not run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("no node named {0:?} in this lab")]
    UnknownNode(String),
    #[error("{what} in {ns} did not become ready: {message}")]
    NotReady {
        what: String,
        ns: String,
        message: String,
    },
    #[error("probe from {ns} to {target} failed: {message}")]
    Probe {
        ns: String,
        target: SocketAddr,
        message: String,
    },
    #[error("probe from {ns} to {target} timed out after {timeout:?}")]
    Timeout {
        ns: String,
        target: SocketAddr,
        timeout: Duration,
    },
}

impl NetnsError {
    /// A short, stable name for metrics and test assertions.
    pub fn label(&self) -> &'static str {
        match self {
            NetnsError::Spec(_) => "spec",
            NetnsError::Spawn { .. } => "spawn",
            NetnsError::Command { .. } => "command",
            NetnsError::UnknownNode(_) => "unknown_node",
            NetnsError::NotReady { .. } => "not_ready",
            NetnsError::Probe { .. } => "probe",
            NetnsError::Timeout { .. } => "timeout",
        }
    }
}
