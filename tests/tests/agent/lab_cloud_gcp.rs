//! The GCP lab cloud end to end: a target-pool load balancer built by the real controller in
//! the fake Compute server, obeyed by `portico-lab gcp-cloud` in the cloud namespace, which
//! probes every pool member for real and routes the forwarding rule's IP to the healthy ones;
//! the real agents answer the checks and carry the packets to the pods. Root only; fails
//! rather than skips under CI.

mod harness;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use portico_lab::demo::objects::SERVICE_PORT;
use portico_lab::netns::echo::echo_field;
use portico_lab::netns::sampler::{Sampler, failed, outage_after};
use portico_tests::lab_cluster::wait_for;
use serde_json::json;

use self::harness::{Endpoint, GcpLab, Seen};

/// Short checks for a Local Service's own health check (the shared Cluster check keeps
/// cloud-provider-gcp's 8 s / 1 s / 1 / 3).
const SHORT_CHECKS: [(&str, &str); 4] = [
    ("portico.dev/gcp-healthcheck-interval", "1"),
    ("portico.dev/gcp-healthcheck-timeout", "1"),
    ("portico.dev/gcp-healthcheck-healthy-threshold", "1"),
    ("portico.dev/gcp-healthcheck-unhealthy-threshold", "2"),
];

fn answered_by(seen: &[Option<Seen>]) -> BTreeSet<String> {
    seen.iter().flatten().map(|s| s.pod_ns.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_traffic_reaches_only_nodes_with_a_ready_endpoint_keeps_the_client_ip_and_follows_a_move()
 {
    if !portico_tests::require_root() {
        return;
    }
    let gcp = GcpLab::start("198.18.91.0/24", 3).await;
    let (vip, lb) = gcp.create_service("web", "Local", &SHORT_CHECKS).await;
    gcp.set_endpoints("web", &[(1, Endpoint::Ready)]).await;
    gcp.wait_health(&lb, &[(0, "UNHEALTHY"), (1, "HEALTHY"), (2, "UNHEALTHY")])
        .await;
    assert_eq!(gcp.routed_to(vip), [1], "{}", gcp.cloud_log());

    let seen = gcp.ask_many(vip, 30).await;
    assert!(
        seen.iter().all(Option::is_some),
        "every request reaches the node with the endpoint: {seen:?}\n{}",
        gcp.cloud_log()
    );
    assert_eq!(answered_by(&seen), BTreeSet::from([gcp.pod_ns(1)]));
    let client = gcp.lab.client_ip().to_string();
    assert!(
        seen.iter().flatten().all(|s| s.client == client),
        "the pod sees the client's IP: {seen:?}"
    );
    // Each connection is pinned to the node its first packet went to (its conntrack mark), so
    // a later change of the ECMP route leaves it where it is.
    let mark = portico_lab::cloud::gcp::pinning::mark(gcp.node_ip(1)).to_string();
    let cloud_ns = gcp.lab.layout().cloud.as_ref().unwrap().ns.clone();
    let pinned = gcp
        .lab
        .run_in(
            &cloud_ns,
            "conntrack",
            &["-L", "-d", &vip.to_string(), "--mark", &mark],
        )
        .unwrap();
    assert!(
        pinned.lines().count() >= 30,
        "the connections to {vip} carry node-1's mark {mark}:\n{pinned}"
    );

    // The endpoint moves to node-2: the load balancer follows within its thresholds.
    let sampler = Sampler::start(
        gcp.lab_binary.clone(),
        gcp.lab.client_ns().to_owned(),
        SocketAddr::new(IpAddr::V4(vip), SERVICE_PORT),
        Duration::from_millis(50),
        Duration::from_secs(1),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mark = Instant::now();
    gcp.set_endpoints("web", &[(2, Endpoint::Ready)]).await;
    gcp.wait_health(&lb, &[(1, "UNHEALTHY"), (2, "HEALTHY")])
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let samples = sampler.stop().await;
    let new_pod = gcp.pod_ns(2);
    let outage = outage_after(&samples, mark, |body| {
        echo_field(body, "namespace") == Some(new_pod.as_str())
    })
    .expect("the new node answers after the move");
    let last_failure = samples
        .iter()
        .filter(|s| s.started >= mark && s.answer.is_none())
        .map(|s| s.started - mark)
        .max()
        .unwrap_or_default();
    eprintln!(
        "gcp lab cloud, Local endpoint move with 1 s / 1 s / 1 / 2 checks: first answer from the new node after {:?}, last failed request started {:?} after the move ({} of {} requests failed)",
        outage.interrupted, last_failure, outage.failed, outage.sent
    );
    assert_eq!(gcp.routed_to(vip), [2]);
    let seen = gcp.ask_many(vip, 20).await;
    assert!(seen.iter().all(Option::is_some), "{seen:?}");
    assert_eq!(answered_by(&seen), BTreeSet::from([gcp.pod_ns(2)]));
}

/// The node a Cluster request came in through: the pod sees that node's IP (SNAT), or its own
/// node's pod gateway when it came in through the pod's own node.
fn ingress_node(gcp: &GcpLab, seen: &Seen, endpoint_node: usize) -> usize {
    (0..gcp.lab.nodes().len())
        .find(|n| seen.client == gcp.node_ip(*n).to_string())
        .unwrap_or(endpoint_node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_traffic_enters_through_every_healthy_node_and_leaves_a_draining_or_failed_one() {
    if !portico_tests::require_root() {
        return;
    }
    let mut gcp = GcpLab::start("198.18.92.0/24", 3).await;
    let (vip, lb) = gcp.create_service("web", "Cluster", &[]).await;
    gcp.set_endpoints("web", &[(0, Endpoint::Ready)]).await;
    gcp.wait_health(&lb, &[(0, "HEALTHY"), (1, "HEALTHY"), (2, "HEALTHY")])
        .await;
    assert_eq!(gcp.routed_to(vip), [0, 1, 2], "{}", gcp.cloud_log());
    // 10256 says the node is healthy before its agent has the rules for this Service's IP.
    wait_for(
        "the agents' rules for the IP",
        Duration::from_secs(20),
        || async {
            gcp.ask_many(vip, 6)
                .await
                .iter()
                .all(Option::is_some)
                .then_some(())
        },
    )
    .await;
    let seen = gcp.ask_many(vip, 40).await;
    assert!(seen.iter().all(Option::is_some), "{seen:?}");
    let ingress: BTreeSet<usize> = seen
        .iter()
        .flatten()
        .map(|s| ingress_node(&gcp, s, 0))
        .collect();
    assert_eq!(
        ingress,
        BTreeSet::from([0, 1, 2]),
        "the L4 hash spreads flows over every healthy node: {seen:?}"
    );

    // node-2 is about to be deleted by the cluster autoscaler: its 10256 answers 503, the check
    // (and the controller's node set) take it out of the load balancer.
    let nodes: kube::Api<Node> = kube::Api::all(gcp.cluster.client.clone());
    let taint = json!({"spec": {"taints": [
        {"key": "ToBeDeletedByClusterAutoscaler", "value": "1700000000", "effect": "NoSchedule"}
    ]}});
    let node2 = gcp.lab.nodes()[2].name.clone();
    nodes
        .patch(&node2, &PatchParams::default(), &Patch::Merge(&taint))
        .await
        .unwrap();
    let node2_health = SocketAddr::new(IpAddr::V4(gcp.node_ip(2)), 10256);
    wait_for(
        "node-2's 10256 to answer 503",
        Duration::from_secs(20),
        || async {
            let (status, _) = portico_tests::cli::http_get(node2_health, "/healthz").ok()?;
            (status == 503).then_some(())
        },
    )
    .await;
    wait_for(
        "the route to leave node-2",
        Duration::from_secs(60),
        || async { (gcp.routed_to(vip) == [0, 1]).then_some(()) },
    )
    .await;
    let seen = gcp.ask_many(vip, 40).await;
    assert!(seen.iter().all(Option::is_some), "{seen:?}");
    let ingress: BTreeSet<usize> = seen
        .iter()
        .flatten()
        .map(|s| ingress_node(&gcp, s, 0))
        .collect();
    assert_eq!(ingress, BTreeSet::from([0, 1]), "{seen:?}");

    // node-1's agent dies: nothing answers its 10256 any more, and the shared check (8 s, 3
    // failures) alone takes the node out; its rules stay, so only the check tells.
    gcp.agents[1].kill();
    gcp.wait_health(&lb, &[(0, "HEALTHY"), (1, "UNHEALTHY")])
        .await;
    assert_eq!(gcp.routed_to(vip), [0], "{}", gcp.cloud_log());
}

/// The rolling update of the design: the new pod on another node becomes ready, the old one
/// turns serving-and-terminating (its node's check answers 503 while it still forwards), and
/// only after the load balancer has drained its node does it disappear. Every request of a
/// steady stream (one every 20 ms) is answered.
async fn rolling_update_failures(
    gcp: &GcpLab,
    annotations: &[(&str, &str)],
    grace: Option<Duration>,
) -> (usize, usize) {
    let (vip, lb) = gcp.create_service("roll", "Local", annotations).await;
    gcp.set_endpoints("roll", &[(0, Endpoint::Ready)]).await;
    gcp.wait_health(&lb, &[(0, "HEALTHY"), (1, "UNHEALTHY")])
        .await;
    wait_for("the route to node-0", Duration::from_secs(20), || async {
        (gcp.routed_to(vip) == [0]).then_some(())
    })
    .await;
    let sampler = Sampler::start(
        gcp.lab_binary.clone(),
        gcp.lab.client_ns().to_owned(),
        SocketAddr::new(IpAddr::V4(vip), SERVICE_PORT),
        Duration::from_millis(20),
        Duration::from_secs(2),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The new pod is ready on node-1.
    gcp.set_endpoints("roll", &[(0, Endpoint::Ready), (1, Endpoint::Ready)])
        .await;
    gcp.wait_health(&lb, &[(1, "HEALTHY")]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The old pod terminates: serving, not ready, for its grace period.
    gcp.set_endpoints("roll", &[(0, Endpoint::Terminating), (1, Endpoint::Ready)])
        .await;
    match grace {
        Some(grace) => tokio::time::sleep(grace).await,
        None => {
            gcp.wait_health(&lb, &[(0, "UNHEALTHY")]).await;
            wait_for(
                "the route to leave node-0",
                Duration::from_secs(60),
                || async { (gcp.routed_to(vip) == [1]).then_some(()) },
            )
            .await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    gcp.set_endpoints("roll", &[(1, Endpoint::Ready)]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let samples = sampler.stop().await;
    let pods: BTreeSet<String> = samples
        .iter()
        .filter_map(|s| echo_field(s.answer.as_deref()?, "namespace").map(String::from))
        .collect();
    assert_eq!(
        pods,
        BTreeSet::from([gcp.pod_ns(0), gcp.pod_ns(1)]),
        "both pods served during the update"
    );
    (failed(&samples), samples.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_under_steady_load_loses_no_request() {
    if !portico_tests::require_root() {
        return;
    }
    let gcp = GcpLab::start("198.18.93.0/24", 2).await;
    let (failures, sent) = rolling_update_failures(&gcp, &SHORT_CHECKS, None).await;
    eprintln!(
        "gcp lab cloud, rolling update with 1 s / 1 s / 1 / 2 checks: {failures} of {sent} requests failed"
    );
    assert_eq!(failures, 0, "{}", gcp.cloud_log());
}

/// The same with cloud-provider-gcp's default check (8 s / 1 s / 1 / 3) and the default 30 s
/// grace period; minutes long, so run by hand for the figure in the closing note:
/// `cargo test -p portico-tests --test agent lab_cloud_gcp -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: default health-check intervals"]
async fn a_rolling_update_with_the_default_checks_and_grace_period() {
    if !portico_tests::require_root() {
        return;
    }
    let gcp = GcpLab::start("198.18.94.0/24", 2).await;
    let (failures, sent) = rolling_update_failures(&gcp, &[], Some(Duration::from_secs(30))).await;
    eprintln!(
        "gcp lab cloud, rolling update with the default 8 s / 1 s / 1 / 3 checks and a 30 s grace period: {failures} of {sent} requests failed"
    );
}
