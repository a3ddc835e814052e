//! The periodic drift check of the real agent: while nothing changes, checks run every
//! `--sync-period` without a single iptables-restore; a deleted jump or a flushed top-level
//! chain is put back by a repair restore of that alone, not by a rewrite of every rule; a
//! flushed table is rewritten in full. Restores are counted through the agent's metrics.

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::PostParams;
use portico_lab::demo::objects;
use portico_tests::cli::http_get;
use portico_tests::lab_cluster::{LabCluster, wait_for};

use crate::nodes::{NodeNs, remove_leftovers};

/// The sum of the metric lines that start with `prefix` (0 when absent).
fn metric(admin: SocketAddr, prefix: &str) -> f64 {
    let Ok((_, body)) = http_get(admin, "/metrics") else {
        return 0.0;
    };
    body.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

fn restores(admin: SocketAddr, kind: &str) -> f64 {
    metric(
        admin,
        &format!("portico_agent_dataplane_writes_total{{backend=\"iptables\",kind=\"{kind}\"}}"),
    )
}

fn all_restores(admin: SocketAddr) -> f64 {
    metric(admin, "portico_agent_dataplane_writes_total")
}

fn checks(admin: SocketAddr) -> f64 {
    metric(
        admin,
        "portico_agent_sync_duration_seconds_count{kind=\"check\"}",
    )
}

/// Waits until `n` more drift checks have completed.
async fn wait_for_checks(admin: SocketAddr, n: f64, what: &str) {
    let from = checks(admin);
    wait_for(what, Duration::from_secs(30), || async {
        (checks(admin) >= from + n).then_some(())
    })
    .await;
}

fn listing(node: &NodeNs, table: &str, chain: &str) -> String {
    String::from_utf8(
        node.exec(&["iptables", "-w", "-t", table, "-S", chain])
            .stdout,
    )
    .unwrap()
}

fn iptables(node: &NodeNs, args: &[&str]) {
    let mut full = vec!["iptables", "-w"];
    full.extend_from_slice(args);
    let output = node.exec(&full);
    assert!(
        output.status.success(),
        "{full:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_repaired_by_the_periodic_check_and_an_idle_agent_restores_nothing() {
    if !portico_tests::require_root() {
        return;
    }
    remove_leftovers();
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeNs::create("node-d", 7, dir.path());
    let listen = vec![
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::new(node.host_ip, 0),
    ];
    let cluster = LabCluster::start_listening(listen).await;
    let std::net::IpAddr::V4(node_ip) = node.node_ip else {
        panic!("the node namespaces are IPv4")
    };
    kube::Api::<Node>::all(cluster.client.clone())
        .create(
            &PostParams::default(),
            &objects::node_object(&node.name, node_ip),
        )
        .await
        .unwrap();
    cluster
        .create_service("default", &objects::echo_service("echo", "Cluster"))
        .await;
    kube::Api::<EndpointSlice>::namespaced(cluster.client.clone(), "default")
        .create(
            &PostParams::default(),
            &objects::echo_slice("echo", &node.name, "10.244.7.7".parse().unwrap()),
        )
        .await
        .unwrap();
    let admin = SocketAddr::new(node.node_ip, 9473);
    let kubeconfig = cluster.kubeconfig_via(node.host_ip);
    node.start_agent_with(
        &kubeconfig,
        &admin.to_string(),
        &["--sync-period", "1s", "--full-sync-period", "1h"],
    );
    wait_for_checks(admin, 1.0, "the first drift check").await;
    assert_eq!(restores(admin, "full"), 1.0, "{}", node.logs());

    // Idle: checks come and go, nothing is restored.
    let before = all_restores(admin);
    wait_for_checks(admin, 3.0, "three idle checks").await;
    assert_eq!(
        all_restores(admin),
        before,
        "an idle agent runs no iptables-restore"
    );

    // A deleted jump comes back through a repair, not a full rewrite.
    let jump = listing(&node, "nat", "PREROUTING")
        .lines()
        .find(|line| line.contains("-j PORTICO-SERVICES"))
        .expect("the agent installed its PREROUTING jump")
        .to_owned();
    // Through a shell: the rule's comment is quoted as iptables -S prints it.
    let spec = jump.strip_prefix("-A ").unwrap();
    let deleted = node.exec(&["sh", "-c", &format!("iptables -w -t nat -D {spec}")]);
    assert!(deleted.status.success(), "{deleted:?}");
    assert!(!listing(&node, "nat", "PREROUTING").contains("PORTICO-SERVICES"));
    wait_for(
        "the jump to be repaired",
        Duration::from_secs(30),
        || async { (restores(admin, "repair") >= 1.0).then_some(()) },
    )
    .await;
    assert!(
        listing(&node, "nat", "PREROUTING").contains(&jump),
        "the jump is back"
    );

    // A flushed top-level chain is rewritten alone.
    let services = listing(&node, "nat", "PORTICO-SERVICES");
    iptables(&node, &["-t", "nat", "-F", "PORTICO-SERVICES"]);
    wait_for(
        "the chain to be repaired",
        Duration::from_secs(30),
        || async { (restores(admin, "repair") >= 2.0).then_some(()) },
    )
    .await;
    assert_eq!(listing(&node, "nat", "PORTICO-SERVICES"), services);
    assert_eq!(
        restores(admin, "full"),
        1.0,
        "no full rewrite for one drifted chain or jump:\n{}",
        node.logs()
    );

    // A flushed table (every chain emptied, as a firewall reload does) is rewritten in full.
    let svc_chain = listing(&node, "nat", "PORTICO-SERVICES");
    iptables(&node, &["-t", "nat", "-F"]);
    wait_for(
        "the table to be rewritten",
        Duration::from_secs(30),
        || async { (restores(admin, "full") >= 2.0).then_some(()) },
    )
    .await;
    assert_eq!(listing(&node, "nat", "PORTICO-SERVICES"), svc_chain);
    let saved = String::from_utf8(node.exec(&["iptables-save", "-t", "nat"]).stdout).unwrap();
    assert!(
        saved.contains("--to-destination 10.244.7.7:8080"),
        "the Service's own chains are back too:\n{saved}"
    );
    node.stop_agent();
}
