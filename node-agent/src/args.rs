//! The agent's flags. Every flag has a long name, an environment variable and a help line.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use ipnet::IpNet;
use portico_runtime::{AdminArgs, ClientArgs, LogArgs};

/// The dataplane `--proxy-mode` selects.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyMode {
    /// Portico's iptables rules and health check servers.
    Iptables,
    /// Portico's nftables tables (`ip portico`, `ip6 portico`): maps instead of chains, so a
    /// change costs a few elements whatever the cluster's size.
    Nftables,
    /// No dataplane: another service proxy (kube-proxy) carries the traffic and serves the
    /// health check node ports; Portico only announces the VIPs.
    Off,
}

/// portico-agent runs on every node: it carries NodePort and LoadBalancer traffic to pods,
/// answers the load balancers' health checks, and announces the node's VIPs on bare metal.
#[derive(Parser, Clone, Debug)]
#[command(name = "portico-agent", version)]
pub struct Args {
    /// Name of the Node this agent runs on, as in the Node object (the DaemonSet passes
    /// spec.nodeName through the downward API).
    #[arg(long, env = "NODE_NAME", required_unless_present = "cleanup")]
    pub node_name: Option<String>,

    /// Remove every rule, chain and table Portico installed on this node (iptables and
    /// nftables modes alike), then exit (no API server needed). Other programs' rules are left
    /// alone.
    #[arg(long)]
    pub cleanup: bool,

    /// The cluster's pod CIDRs, comma separated. Traffic from them is pod traffic: never
    /// masqueraded to ClusterIPs, and short-circuited to all endpoints when it reaches a
    /// Local Service's external address.
    #[arg(long, env = "PORTICO_CLUSTER_CIDR", value_delimiter = ',')]
    pub cluster_cidr: Vec<IpNet>,

    /// This node's addresses, comma separated; by default the InternalIP and ExternalIP
    /// addresses of its Node object.
    #[arg(long, env = "PORTICO_NODE_IP", value_delimiter = ',')]
    pub node_ip: Vec<IpAddr>,

    /// Only node addresses within these CIDRs (comma separated) serve NodePorts and health
    /// check ports; all of the node's addresses when empty (kube-proxy's --nodeport-addresses).
    #[arg(long, env = "PORTICO_NODEPORT_ADDRESSES", value_delimiter = ',')]
    pub nodeport_addresses: Vec<IpNet>,

    /// Address of the node health server (/healthz and /livez, as kube-proxy's
    /// --healthz-bind-address) that load balancers of Cluster-policy Services probe.
    #[arg(
        long,
        env = "PORTICO_HEALTHZ_BIND_ADDRESS",
        default_value = "0.0.0.0:10256"
    )]
    pub healthz_bind_address: SocketAddr,

    /// How often the agent checks, without changes, that Portico's jumps and top-level chains
    /// are in place, and repairs only what drifted (as kube-proxy's --sync-period); the node
    /// health check fails when a requested sync waits longer than twice this.
    #[arg(long, env = "PORTICO_SYNC_PERIOD", default_value = "30s", value_parser = humantime::parse_duration)]
    pub sync_period: Duration,

    /// Longest time between two full rewrites of every rule (kube-proxy rewrites everything
    /// once an hour); a failed sync is always followed by a full one.
    #[arg(long, env = "PORTICO_FULL_SYNC_PERIOD", default_value = "1h", value_parser = humantime::parse_duration)]
    pub full_sync_period: Duration,

    /// Shortest time between two syncs: a burst of changes within it is applied at once.
    #[arg(long, env = "PORTICO_MIN_SYNC_PERIOD", default_value = "1s", value_parser = humantime::parse_duration)]
    pub min_sync_period: Duration,

    /// Which dataplane carries Service traffic (kube-proxy's flag): `iptables`, `nftables`, or
    /// `off` to run beside kube-proxy as an L2 announcer only (no rules, no health check
    /// listeners). Switching removes the other mode's rules at the first sync.
    #[arg(long, env = "PORTICO_PROXY_MODE", value_enum, default_value_t = ProxyMode::Iptables)]
    pub proxy_mode: ProxyMode,

    /// UDP port of the agents' membership gossip (SWIM), which tells the L2 announcer within a
    /// second that a node died; 0 turns it off (VIPs are still announced, but do not fail over).
    #[arg(long, env = "PORTICO_MEMBERLIST_PORT", default_value_t = 7946)]
    pub memberlist_port: u16,

    /// How often the owner of a VIP repeats its gratuitous ARP / unsolicited Neighbor
    /// Advertisement after the takeover burst, for switches and hosts that age entries out;
    /// 0s for never.
    #[arg(long, env = "PORTICO_L2_REFRESH_PERIOD", default_value = "30s", value_parser = humantime::parse_duration)]
    pub l2_refresh_period: Duration,

    #[command(flatten)]
    pub client: ClientArgs,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub admin: AdminArgs,
}
