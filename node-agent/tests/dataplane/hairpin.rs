//! Hairpin: a pod that reaches itself through a Service gets its connection masqueraded (to the
//! node's address), as kube-proxy does, so its own reply goes back through the node that
//! DNATed it. Also when this node has no SEP chain for the pod: an endpoint of another node,
//! reached by that pod through this node's NodePort or VIP.

use crate::helper::{Answer, EchoServer, connect_from};
use crate::services::{
    mk_service, mk_slice, node_context, state, syncer, with_lb_ip, with_local_policy,
};
use crate::topology::{
    ECHO_PORT, LB_IP, NODE_IP, NODE_NAME, NODE_POD_GATEWAY, POD_A_IP, Topology, root_or_skip,
};

crate::in_both_modes!(a_pod_reaching_itself_through_a_service_is_masqueraded);
async fn a_pod_reaching_itself_through_a_service_is_masqueraded(
    mode: portico_agent::args::ProxyMode,
) {
    let topology = Topology::new(&crate::services::tag(mode, "hp"));
    let _echo = EchoServer::start(&topology.pod_a, &format!("0.0.0.0:{ECHO_PORT}"));
    let mut syncer = crate::services::backend(mode, &topology.node);
    let mut failures = Vec::new();
    for local_policy in [false, true] {
        // "node-b": the pod counts as another node's endpoint, DNATed from the SVC chain in place
        // (how a node without the pod sees it); NODE_NAME: this node's, through its SEP chain.
        for endpoint_node in ["node-b", NODE_NAME] {
            let mut service = with_lb_ip(
                mk_service("web", "10.96.0.10", "LoadBalancer", Some(30080)),
                LB_IP,
            );
            if local_policy {
                service = with_local_policy(service);
            }
            let slices = [mk_slice("web", &[(POD_A_IP, endpoint_node)])];
            syncer
                .sync(&state(&[service], &slices), &node_context())
                .await
                .expect("sync");
            for target in [format!("{NODE_IP}:30080"), format!("{LB_IP}:80")] {
                let answer = connect_from(&topology.pod_a, &target);
                if answer != Answer::Peer(NODE_POD_GATEWAY.into()) {
                    failures.push(format!(
                        "{} policy, endpoint on {endpoint_node}, pod → {target}: {answer:?}",
                        if local_policy { "Local" } else { "Cluster" }
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "expected the node's address {NODE_POD_GATEWAY}:\n{}",
        failures.join("\n")
    );
}

/// The start-up probe for the hairpin rule's xt_bpf match: this kernel has it, and the probe's
/// scratch chain is gone afterwards (a kernel without it gets the rule left out, see
/// `render::tests::without_the_kernels_bpf_match_...`).
#[tokio::test]
async fn the_xt_bpf_probe_finds_the_match_and_leaves_no_chain_behind() {
    if !root_or_skip("the_xt_bpf_probe_finds_the_match_and_leaves_no_chain_behind") {
        return;
    }
    let topology = Topology::new("hq");
    let syncer = syncer(&topology.node);
    assert!(syncer.iptables().supports_hairpin_match().await);
    let raw = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &topology.node,
            "iptables-save",
            "-t",
            "raw",
        ])
        .output()
        .expect("iptables-save -t raw");
    let raw = String::from_utf8_lossy(&raw.stdout);
    assert!(!raw.contains("PORTICO"), "{raw}");
}
