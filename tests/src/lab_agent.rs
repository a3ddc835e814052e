//! The real agent started on one node of a network-namespace lab, as the agent tests and the lab
//! cloud harness run it: its Node name, the lab API server's kubeconfig, the pod CIDR, the node
//! health check on the node's own address, and the admin port on the node's loopback.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use portico_lab::netns::{LabTopology, NetnsError, NodeLayout, NsChild};

/// Starts `portico-agent` in `node`'s namespace with the lab's flags plus `extra` ones.
pub fn start_agent(
    lab: &LabTopology,
    node: &NodeLayout,
    kubeconfig: &Path,
    extra: &[&str],
) -> Result<NsChild, NetnsError> {
    let agent = crate::workspace_binary("portico-agent").expect("portico-agent is built");
    let health = SocketAddr::new(IpAddr::V4(node.ip), 10256).to_string();
    let kubeconfig = kubeconfig.to_str().expect("a UTF-8 kubeconfig path");
    let mut args = vec![
        "--node-name",
        &node.name,
        "--kubeconfig",
        kubeconfig,
        "--cluster-cidr",
        "10.244.0.0/16",
        "--healthz-bind-address",
        &health,
        "--admin-addr",
        "127.0.0.1:9473",
    ];
    args.extend_from_slice(extra);
    lab.spawn_in(&node.ns, &agent, &args)
}
