//! The agent's flags. Every flag has a long name, an environment variable and a help line.

use clap::Parser;
use portico_runtime::{AdminArgs, ClientArgs, LogArgs};

/// portico-agent runs on every node: it carries NodePort and LoadBalancer traffic to pods,
/// answers the load balancers' health checks, and announces the node's VIPs on bare metal.
#[derive(Parser, Clone, Debug)]
#[command(name = "portico-agent", version)]
pub struct Args {
    /// Name of the Node this agent runs on, as in the Node object (the DaemonSet passes
    /// spec.nodeName through the downward API).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,

    #[command(flatten)]
    pub client: ClientArgs,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub admin: AdminArgs,
}
