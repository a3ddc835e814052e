//! The announcer's takeover gate end to end: a node takes a VIP over only once its rules hold
//! the VIP's last change. The other node's agent batches changes (a long `--min-sync-period`,
//! as a busy node's proxier lags its stores), the Service's EndpointSlice is recreated, and the
//! owner's agent restarts gracefully right then: the other node must not attract the VIP's
//! traffic with the rules of the moment the slice was gone.
//!
//! ```text
//!   slice deleted ─▶ other node syncs "no endpoints" ─▶ slice created (other node's next sync
//!   is --min-sync-period away) ─▶ owner's agent SIGTERM ─▶ other node owns the VIP in the plan,
//!   announces it only once synced ─▶ owner's agent back, takes the VIP back
//! ```

use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use portico_lab::demo::objects;
use portico_lab::netns::sampler::{error_lines, failed};
use portico_tests::lab_cluster::wait_for;

use crate::l2_failover::{L2Lab, assert_none_failed, l2_lab, logs, start_agent, stop_gracefully};

/// How long the other node's proxier batches changes: long enough that the owner's graceful
/// stop and the other node's takeover fall inside it.
const LAGGING_MIN_SYNC: &str = "10s";

/// The rules of `table` in the namespace `ns`.
fn rules(ns: &str, table: &str) -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "iptables-save", "-t", table])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `ns` sends the VIP's traffic to the Service (a nat dispatch rule for it).
fn dispatches(ns: &str, vip: Ipv4Addr) -> bool {
    rules(ns, "nat")
        .lines()
        .any(|rule| rule.starts_with("-A PORTICO-") && rule.contains(&format!("-d {vip}/32")))
}

/// Whether `ns` holds the "has no endpoints" rule for the VIP.
fn rejects(ns: &str, vip: Ipv4Addr) -> bool {
    rules(ns, "filter").lines().any(|rule| {
        rule.contains(&format!("-d {vip}/32"))
            && rule.contains("has no endpoints")
            && rule.contains("-j REJECT")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_restart_right_after_an_endpoint_change_fails_no_request() {
    if !portico_tests::require_root() {
        return;
    }
    let mut l2lab: L2Lab = l2_lab("198.18.36.0/24", "198.19.36.0/28").await;
    let vip = l2lab.service("gate", "Cluster", 0).await;
    let owner = l2lab.owner(vip, None).await;
    let other = 1 - owner;
    let nodes = l2lab.lab.lab.nodes().to_vec();
    let other_ns = nodes[other].ns.clone();

    // The other node's agent again, now batching changes.
    stop_gracefully(l2lab.agents[other].take().unwrap(), l2lab.logs.path());
    l2lab.agents[other] = Some(start_agent(
        &l2lab.lab.lab,
        &nodes[other],
        &l2lab.lab.kubeconfig,
        l2lab.logs.path(),
        &[
            "--min-sync-period",
            LAGGING_MIN_SYNC,
            "--log-level",
            "info,portico_agent=debug",
        ],
    ));
    let owner_ip = wait_for(
        "the VIP to answer through its owner",
        Duration::from_secs(30),
        || l2lab.seen(vip),
    )
    .await;
    wait_for(
        "the other node's rules for the VIP",
        Duration::from_secs(30),
        || async { dispatches(&other_ns, vip).then_some(()) },
    )
    .await;

    // The slice is recreated, as a controller may do: gone, and once the other node's rules say
    // so, back (its next sync is then --min-sync-period away).
    let slices: Api<EndpointSlice> = Api::namespaced(l2lab.lab.cluster.client.clone(), "default");
    let slice = objects::echo_slice("gate", &nodes[0].name, nodes[0].pods[0].ip);
    let slice_name = slice.metadata.name.clone().unwrap();
    slices
        .delete(&slice_name, &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        "the other node's rules to say the VIP has no endpoints",
        Duration::from_secs(30),
        || async { rejects(&other_ns, vip).then_some(()) },
    )
    .await;
    slices.create(&PostParams::default(), &slice).await.unwrap();
    wait_for(
        "the VIP to answer through its owner again",
        Duration::from_secs(30),
        || async { l2lab.seen(vip).await.filter(|seen| *seen == owner_ip) },
    )
    .await;

    // The owner's agent restarts, a request every 25 ms throughout.
    let sampler = l2lab.sample(vip);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_gracefully(l2lab.agents[owner].take().unwrap(), l2lab.logs.path());
    assert_eq!(l2lab.owner(vip, Some(owner)).await, other);
    // The node answering ARP for the VIP has its rules.
    let dispatched_at_takeover = dispatches(&other_ns, vip);
    let rules_at_takeover: Vec<String> = ["nat", "filter"]
        .iter()
        .flat_map(|table| {
            rules(&other_ns, table)
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|rule| rule.contains(&format!("{vip}/32")))
        .collect();
    l2lab.agents[owner] = Some(start_agent(
        &l2lab.lab.lab,
        &nodes[owner],
        &l2lab.lab.kubeconfig,
        l2lab.logs.path(),
        &[],
    ));
    assert_eq!(l2lab.owner(vip, Some(other)).await, owner);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let samples = sampler.stop().await;
    let errors = error_lines(&samples);
    assert!(
        dispatched_at_takeover,
        "the other node answered ARP for {vip} with no rule sending it to the Service: \
         {rules_at_takeover:#?}\n{} of {} requests failed: {errors:?}\n{}",
        failed(&samples),
        samples.len(),
        logs(l2lab.logs.path())
    );
    assert_none_failed(&samples, "around the restart", &l2lab);
    let L2Lab { lab, agents, .. } = l2lab;
    drop(agents);
    tokio::task::spawn_blocking(move || lab.lab.teardown())
        .await
        .unwrap();
}
