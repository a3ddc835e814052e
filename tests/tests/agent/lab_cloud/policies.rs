//! The traffic policies through the lab cloud: under Local only the node with a ready local
//! endpoint is in the load balancer and the pod sees the client; a moved endpoint moves the
//! traffic; under Cluster every healthy node forwards; the deletion taint drains a node.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use portico_tests::lab_cluster::wait_for;
use serde_json::json;

use portico_tests::cloud_lab::{CloudLab, Provider, fast_checks};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_lb_sends_only_where_health_checks_pass_and_follows_endpoints_and_taints() {
    if !portico_tests::require_root() {
        return;
    }
    let Some(lab) = CloudLab::start(Provider::Aws, "198.18.60.0/24", 3).await else {
        return;
    };
    run_policy_story(&lab).await;
    lab.teardown().await;
}

/// Local, a move, Cluster and the deletion taint, on one lab: provider-neutral.
pub async fn run_policy_story(lab: &CloudLab) {
    let client_ip = lab.lab.client_ip().to_string();
    let checks = fast_checks(lab.provider);

    // Local: only the node with a ready local endpoint is in service, and the pod sees the client.
    lab.create_service("local", "Local", &checks).await;
    lab.set_endpoints("local", &[(1, true, true, false)]).await;
    lab.wait_for_in_service("local", &[1]).await;
    for (node, seen) in lab.who_answers("local", 6).await {
        assert_eq!(node, "node-1", "Local: only node-1 has the endpoint");
        assert_eq!(
            seen, client_ip,
            "Local: the pod sees the client's own address"
        );
    }

    // The endpoint moves: the load balancer follows within its thresholds.
    lab.set_endpoints("local", &[(2, true, true, false)]).await;
    let followed = lab.wait_for_in_service("local", &[2]).await;
    eprintln!("lab cloud: the load balancer followed the endpoint move in {followed:?}");
    for (node, seen) in lab.who_answers("local", 6).await {
        assert_eq!(node, "node-2", "after the move only node-2 answers");
        assert_eq!(seen, client_ip);
    }

    // Cluster: every healthy node (10256 /healthz) takes traffic, SNATed to itself.
    lab.create_service("cluster", "Cluster", &checks).await;
    lab.set_endpoints("cluster", &[(0, true, true, false)])
        .await;
    lab.wait_for_in_service("cluster", &[0, 1, 2]).await;
    // GCP spreads flows by an L4 hash, not round robin: more requests to see every node.
    let requests = if lab.provider == Provider::Gcp {
        40
    } else {
        12
    };
    let forwarders: BTreeSet<String> = lab
        .who_answers("cluster", requests)
        .await
        .into_iter()
        .map(|(node, seen)| {
            assert_eq!(node, "node-0", "the one endpoint is on node-0");
            lab.node_with_ip(&seen)
                .unwrap_or_else(|| panic!("Cluster: the pod saw {seen}, no node's IP"))
        })
        .collect();
    assert_eq!(
        forwarders,
        BTreeSet::from(["node-0".into(), "node-1".into(), "node-2".into()]),
        "round robin over every healthy node"
    );

    // node-2 is tainted for deletion: its 10256 check fails and it leaves the load balancer.
    let nodes: Api<Node> = Api::all(lab.cluster.client.clone());
    let taint = json!({"spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler",
        "value": "1700000000", "effect": "NoSchedule"}]}});
    nodes
        .patch("node-2", &PatchParams::default(), &Patch::Merge(&taint))
        .await
        .unwrap();
    let node2 = &lab.lab.nodes()[2];
    let cloud_ns = lab.lab.cloud().unwrap().ns.clone();
    let check = wait_for(
        "node-2's 10256 /healthz to fail",
        Duration::from_secs(20),
        || async {
            let reply = lab
                .lab
                .http_get_from(
                    &cloud_ns,
                    SocketAddr::new(IpAddr::V4(node2.ip), 10256),
                    "/healthz",
                )
                .await
                .ok()?;
            (reply.status == 503).then_some(reply.body)
        },
    )
    .await;
    assert!(check.contains(r#""nodeEligible":false"#), "{check}");
    lab.wait_for_in_service("cluster", &[0, 1]).await;
    for (_, seen) in lab.who_answers("cluster", 8).await {
        assert_ne!(
            lab.node_with_ip(&seen).as_deref(),
            Some("node-2"),
            "a node being deleted gets no new connections"
        );
    }
}
