//! The controller's flags. Every flag has a long name, an environment variable and a help line.

use clap::{Parser, ValueEnum};
use portico_runtime::{AdminArgs, ClientArgs, LogArgs};

use crate::leader::LeaderArgs;

/// Where external addresses and load balancers come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    /// Addresses from AddressPools, announced by the agents with ARP/NDP.
    Baremetal,
    /// AWS Network Load Balancers (ELBv2), with the nodes as instance targets.
    Aws,
    /// GCP Compute Engine L4 load balancers.
    Gcp,
}

/// portico-controller gives Services of type LoadBalancer an external address and a
/// health-checked load balancer, and writes it to status.loadBalancer.ingress.
#[derive(Parser, Clone, Debug)]
#[command(name = "portico-controller", version)]
pub struct Args {
    /// Where addresses and load balancers come from.
    #[arg(
        long,
        env = "PORTICO_PROVIDER",
        value_enum,
        default_value = "baremetal"
    )]
    pub provider: Provider,

    /// Also act on LoadBalancer Services that set no spec.loadBalancerClass, as the cluster's
    /// default implementation. Without it, only Services of class portico.dev/lb are touched.
    #[arg(long, env = "PORTICO_DEFAULT_CLASS")]
    pub default_class: bool,

    #[command(flatten)]
    pub leader: LeaderArgs,

    #[command(flatten)]
    pub client: ClientArgs,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub admin: AdminArgs,
}
