//! The GCP lab cloud end to end, on the lab cloud harness (`portico_tests::cloud_lab::CloudLab` with
//! `Provider::Gcp`): the real controller builds a target-pool load balancer in the fake
//! Compute server; `portico-lab gcp-cloud` in the cloud namespace probes every pool member for
//! real and routes the forwarding rule's IP to the healthy ones (pass-through, ECMP, each
//! connection pinned to its first node); the real agents answer the checks and carry the
//! packets to the pods. Root only; fails rather than skips under CI.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use portico_tests::cloud_lab::gcp::{ROLLING_CHECKS, cloud_ns, routed_to, vip_of};
use portico_tests::cloud_lab::measure::{measure_move, run_rolling_update};
use portico_tests::cloud_lab::{CloudLab, Provider, fast_checks};
use portico_tests::lab_cluster::wait_for;

use crate::lab_cloud::policies::run_policy_story;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_lb_sends_only_where_health_checks_pass_and_follows_endpoints_and_taints() {
    if !portico_tests::require_root() {
        return;
    }
    let lab = CloudLab::start(Provider::Gcp, "198.18.91.0/24", 3)
        .await
        .expect("the GCP lab cloud needs nothing from outside the workspace");
    run_policy_story(&lab).await;
    lab.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_rolling_update_under_load_loses_no_request() {
    if !portico_tests::require_root() {
        return;
    }
    let mut lab = CloudLab::start(Provider::Gcp, "198.18.93.0/24", 2)
        .await
        .unwrap();
    // Not the shortest checks: with 1 s probes given 1 s each, two probes of the new node
    // timing out in a row on a loaded machine take it out, and with both nodes out the pool
    // fails open to every node, so a request can fail (seen 2 times in ~25 runs at load 15).
    let checks = ROLLING_CHECKS;
    let (failed, sent) = run_rolling_update(&mut lab, &checks, (2, 3)).await;
    lab.teardown().await;
    eprintln!(
        "gcp lab cloud, rolling update with 2 s / 2 s / 1 / 3 checks: {failed} of {sent} requests failed"
    );
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed during the rolling update"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_connections_stay_on_their_node_other_ports_stay_out_and_a_dead_agent_leaves_by_the_check_alone()
 {
    if !portico_tests::require_root() {
        return;
    }
    let mut lab = CloudLab::start(Provider::Gcp, "198.18.92.0/24", 3)
        .await
        .unwrap();
    lab.create_service("local", "Local", &fast_checks(Provider::Gcp))
        .await;
    let moved = measure_move(&lab, "local", 0, 1).await;
    eprintln!("gcp lab cloud, Local endpoint move with 1 s / 1 s / 1 / 2 checks: {moved}");
    // Routed to node-1 alone; a check that timed out on a loaded machine may briefly take it
    // out, which is the check's job, not what this test is about.
    let vip = vip_of(&lab, "local").await;
    wait_for(
        "the VIP routed to node-1 alone",
        Duration::from_secs(20),
        || async { (routed_to(&lab, vip) == [1]).then_some(()) },
    )
    .await;

    // Every connection carries the mark of the node its first packet went to, so a change of
    // the ECMP route leaves it there.
    lab.who_answers("local", 10).await;
    let mark = portico_lab::cloud::gcp::pinning::mark(lab.lab.nodes()[1].ip).to_string();
    let pinned = lab
        .lab
        .run_in(
            &cloud_ns(&lab),
            "conntrack",
            &["-L", "-d", &vip.to_string(), "--mark", &mark],
        )
        .unwrap();
    assert!(
        pinned.lines().count() >= 10,
        "the connections to {vip} carry node-1's mark {mark}:\n{pinned}"
    );

    // The rule forwards TCP port 80 only: anything else sent to its IP stays in the cloud.
    let other_port = SocketAddr::new(IpAddr::V4(vip), 8080);
    assert!(
        lab.lab
            .tcp_request_from(lab.lab.client_ns(), other_port)
            .await
            .is_err()
    );
    let table = lab
        .lab
        .run_in(
            &cloud_ns(&lab),
            "nft",
            &["list", "table", "ip", portico_lab::cloud::gcp::ports::TABLE],
        )
        .unwrap();
    assert!(
        table.contains(&format!("ip daddr {vip} tcp dport 80 accept")),
        "{table}"
    );
    let dropped = table
        .lines()
        .find(|line| line.contains("@rule_ips counter"))
        .and_then(|line| {
            line.split_whitespace()
                .skip_while(|w| *w != "packets")
                .nth(1)
        })
        .and_then(|n| n.parse::<u64>().ok());
    assert!(dropped.is_some_and(|n| n > 0), "{table}");

    // Cluster: node-1's agent dies, so nothing answers its 10256 any more; its rules stay and
    // the controller keeps it in the pool, so only the shared check (8 s, 3 failures) tells.
    lab.create_service("cluster", "Cluster", &[]).await;
    lab.set_endpoints("cluster", &[(0, true, true, false)])
        .await;
    lab.wait_for_in_service("cluster", &[0, 1, 2]).await;
    lab.agents[1].kill();
    let left = lab.wait_for_in_service("cluster", &[0, 2]).await;
    eprintln!(
        "gcp lab cloud: a node whose agent died left the Cluster Service's load balancer in {left:?} (8 s / 1 s / 1 / 3)"
    );
    lab.teardown().await;
}
