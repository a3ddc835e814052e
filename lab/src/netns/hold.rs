//! `portico-lab netns`: builds the namespace cluster, prints where everything is, and holds it
//! until SIGTERM or SIGINT (then tears it down). For poking at the lab by hand, and for the
//! test that proves a SIGKILLed run's leftovers are removed by the next one.

use std::io::Write;

use clap::Args as ClapArgs;
use ipnet::Ipv4Net;

use super::{LabSpec, LabTopology};

/// Flags of `portico-lab netns`.
#[derive(ClapArgs, Debug)]
pub struct NetnsArgs {
    /// Number of node namespaces.
    #[arg(long, env = "PORTICO_LAB_NODES", default_value_t = 2)]
    pub nodes: usize,
    /// Pod namespaces behind each node.
    #[arg(long, env = "PORTICO_LAB_PODS_PER_NODE", default_value_t = 1)]
    pub pods_per_node: usize,
    /// The /24 joining host, client and nodes.
    #[arg(long, env = "PORTICO_LAB_NODE_SUBNET", default_value = "198.18.0.0/24")]
    pub node_subnet: Ipv4Net,
    /// Put a cloud namespace between the client and the nodes (for the lab cloud).
    #[arg(long, env = "PORTICO_LAB_CLOUD")]
    pub cloud: bool,
}

pub async fn run(args: NetnsArgs) -> anyhow::Result<()> {
    let mut spec = LabSpec::new(args.nodes, args.pods_per_node, std::env::current_exe()?)
        .with_node_subnet(args.node_subnet);
    if args.cloud {
        spec = spec.with_cloud();
    }
    let lab = tokio::task::spawn_blocking(move || LabTopology::create(spec)).await??;
    let layout = lab.layout();
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "ready {} {}",
            layout.prefix.namespace_start(),
            layout.host_link
        )?;
        writeln!(out, "host {} {}", layout.host_link, layout.host_ip)?;
        writeln!(out, "client {} {}", layout.client_ns, layout.client_ip)?;
        if let Some(cloud) = &layout.cloud {
            writeln!(
                out,
                "cloud {} {} {}",
                cloud.ns, cloud.node_side_ip, cloud.load_balancer_range
            )?;
        }
        for node in &layout.nodes {
            writeln!(
                out,
                "node {} {} {} {}",
                node.name, node.ns, node.ip, node.pod_cidr
            )?;
            for pod in &node.pods {
                writeln!(out, "pod {} {} {}", node.name, pod.ns, pod.ip)?;
            }
        }
        out.flush()?;
    }
    portico_runtime::shutdown::signal().await;
    tokio::task::spawn_blocking(move || lab.teardown()).await?;
    Ok(())
}
