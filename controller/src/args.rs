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
    pub aws: AwsArgs,

    #[command(flatten)]
    pub gcp: GcpArgs,

    #[command(flatten)]
    pub leader: LeaderArgs,

    #[command(flatten)]
    pub client: ClientArgs,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub admin: AdminArgs,
}

/// What the AWS provider's health check aims at for `externalTrafficPolicy: Cluster`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClusterHealthCheck {
    /// HTTP on the agent's node health port 10256, path /healthz: a draining node leaves the
    /// load balancer before its pods go.
    Agent,
    /// TCP on the traffic port (the nodePort), as cloud-provider-aws does.
    TrafficPort,
}

/// Flags of the AWS provider (`--provider aws`).
#[derive(clap::Args, Clone, Debug)]
pub struct AwsArgs {
    /// The cluster's name: it names and tags (kubernetes.io/cluster/<name>) every AWS resource
    /// Portico creates, and finds the subnets tagged for the cluster. Required with --provider aws.
    #[arg(long, env = "PORTICO_CLUSTER_NAME")]
    pub cluster_name: Option<String>,

    /// AWS region; defaults to the SDK's (AWS_REGION, the profile, the instance metadata).
    #[arg(long, env = "PORTICO_AWS_REGION")]
    pub aws_region: Option<String>,

    /// Endpoint URL for the ELBv2 and EC2 APIs (e.g. a moto server in tests).
    #[arg(long, env = "PORTICO_AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,

    /// Health check for Services with externalTrafficPolicy: Cluster.
    #[arg(
        long,
        env = "PORTICO_AWS_CLUSTER_HEALTH_CHECK",
        value_enum,
        default_value = "agent"
    )]
    pub aws_cluster_health_check: ClusterHealthCheck,
}

/// Flags of the GCP provider (`--provider gcp`); `--cluster-name` is required too (it names the
/// shared health check and is written into every description).
#[derive(clap::Args, Clone, Debug)]
pub struct GcpArgs {
    /// The GCP project the load balancers live in. Required with --provider gcp.
    #[arg(long, env = "PORTICO_GCP_PROJECT")]
    pub gcp_project: Option<String>,

    /// The region of the addresses, target pools and forwarding rules (the nodes' region).
    /// Required with --provider gcp.
    #[arg(long, env = "PORTICO_GCP_REGION")]
    pub gcp_region: Option<String>,

    /// The VPC network the firewall rules apply to.
    #[arg(long, env = "PORTICO_GCP_NETWORK", default_value = "default")]
    pub gcp_network: String,

    /// The nodes' network tags (comma-separated): the firewall rules' targets. Required with
    /// --provider gcp (without them a rule would open the ports on every VM of the network).
    #[arg(long, env = "PORTICO_GCP_NODE_TAGS", value_delimiter = ',')]
    pub gcp_node_tags: Vec<String>,

    /// Endpoint URL of the Compute Engine API (a fake server in tests; a plain-http URL is
    /// called without credentials).
    #[arg(long, env = "PORTICO_GCP_ENDPOINT_URL")]
    pub gcp_endpoint_url: Option<String>,
}
