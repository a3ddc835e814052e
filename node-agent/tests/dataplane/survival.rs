//! Portico touches only its own chains: other programs' rules survive full and partial syncs,
//! and cleanup removes every PORTICO- chain and jump but nothing else. On both backends.

use portico_agent::dataplane::IpFamily;
use portico_agent::iptables::{Backend, Iptables, SyncKind, Syncer};

use crate::helper::{Answer, EchoServer, connect_from};
use crate::services::{mk_service, mk_slice, node_context, state};
use crate::topology::{
    ECHO_PORT, NODE_IP, NODE_NAME, NODE_POD_GATEWAY, POD_A_IP, Topology, in_ns, output_in_ns,
    root_or_skip,
};

async fn foreign_rules_survive_syncs_and_cleanup(backend: Backend, tag: &str) {
    let topology = Topology::new(tag);
    let node = topology.node.as_str();
    let tool = format!("iptables-{}", backend.as_str());
    let save = format!("iptables-{}-save", backend.as_str());
    in_ns(node, &[&tool, "-t", "nat", "-N", "FOREIGN-NAT"]);
    in_ns(
        node,
        &[
            &tool,
            "-t",
            "nat",
            "-A",
            "FOREIGN-NAT",
            "-s",
            "192.0.2.1/32",
            "-j",
            "RETURN",
        ],
    );
    in_ns(
        node,
        &[&tool, "-t", "nat", "-A", "PREROUTING", "-j", "FOREIGN-NAT"],
    );
    in_ns(
        node,
        &[
            &tool,
            "-t",
            "filter",
            "-A",
            "INPUT",
            "-s",
            "192.0.2.2/32",
            "-j",
            "DROP",
        ],
    );
    let foreign = [
        "-A FOREIGN-NAT -s 192.0.2.1/32 -j RETURN",
        "-A PREROUTING -j FOREIGN-NAT",
        "-A INPUT -s 192.0.2.2/32 -j DROP",
    ];
    let assert_foreign_intact = |when: &str| {
        let dump = output_in_ns(node, &[&save]);
        for rule in foreign {
            assert!(dump.contains(rule), "{rule} lost {when}:\n{dump}");
        }
    };

    let _echo = EchoServer::start(&topology.pod_a, &format!("0.0.0.0:{ECHO_PORT}"));
    let mut syncer = Syncer::new(
        Iptables::new(IpFamily::V4)
            .with_backend(backend)
            .in_netns(node),
        &node_context(),
    );
    let services = [mk_service("web", "10.96.0.10", "NodePort", Some(30080))];
    let first = syncer
        .sync(&state(&services, &[]), &node_context())
        .await
        .expect("full sync");
    assert_eq!(first.kind, SyncKind::Full);
    assert_foreign_intact("after a full sync");
    let node_port = format!("{NODE_IP}:30080");
    assert_eq!(connect_from(&topology.client, &node_port), Answer::Refused);

    // An endpoint appears: a partial sync rewrites the Service's chains and bucket only.
    let slices = [mk_slice("web", &[(POD_A_IP, NODE_NAME)])];
    let second = syncer
        .sync(&state(&services, &slices), &node_context())
        .await
        .expect("partial sync");
    assert_eq!(second.kind, SyncKind::Partial);
    assert!(
        second.chains_written < 12,
        "partial sync wrote {} chains",
        second.chains_written
    );
    assert_foreign_intact("after a partial sync");
    assert_eq!(
        connect_from(&topology.client, &node_port),
        Answer::Peer(NODE_POD_GATEWAY.into())
    );

    // The Service goes away: its chains are deleted, the dispatch emptied.
    let third = syncer
        .sync(&state(&[], &[]), &node_context())
        .await
        .expect("partial sync");
    assert_eq!(third.kind, SyncKind::Partial);
    let dump = output_in_ns(node, &[&save, "-t", "nat"]);
    assert!(
        !dump.contains("PORTICO-SVC-"),
        "a Service chain outlived its Service:\n{dump}"
    );

    syncer.cleanup().await.expect("cleanup");
    let dump = output_in_ns(node, &[&save]);
    assert!(
        !dump.contains("PORTICO-"),
        "cleanup left Portico's rules:\n{dump}"
    );
    assert_foreign_intact("after cleanup");
}

#[tokio::test]
async fn foreign_rules_survive_on_iptables_nft() {
    if root_or_skip("foreign_rules_survive_on_iptables_nft") {
        foreign_rules_survive_syncs_and_cleanup(Backend::Nft, "fnft").await;
    }
}

#[tokio::test]
async fn foreign_rules_survive_on_iptables_legacy() {
    if root_or_skip("foreign_rules_survive_on_iptables_legacy") {
        foreign_rules_survive_syncs_and_cleanup(Backend::Legacy, "fleg").await;
    }
}

#[tokio::test]
async fn a_restart_removes_chains_of_services_that_went_away_at_the_first_check() {
    if !root_or_skip("a_restart_removes_chains_of_services_that_went_away_at_the_first_check") {
        return;
    }
    let topology = Topology::new("rst");
    let services = [mk_service("old", "10.96.0.20", "ClusterIP", None)];
    let slices = [mk_slice("old", &[(POD_A_IP, NODE_NAME)])];
    let mut before = crate::services::syncer(&topology.node);
    before
        .sync(&state(&services, &slices), &node_context())
        .await
        .expect("sync");
    // A new agent process knows nothing of the old one's chains but what its ledger says. Its
    // first sync writes the changed groups without dumping every rule first (seconds at
    // scale); nothing jumps to the old chains any more, and the first periodic check finds
    // and deletes them.
    let mut after = crate::services::syncer(&topology.node);
    let outcome = after
        .sync(&state(&[], &[]), &node_context())
        .await
        .expect("sync");
    assert_eq!(outcome.kind, SyncKind::Resume);
    let dump = output_in_ns(&topology.node, &["iptables-save"]);
    assert!(
        !dump
            .lines()
            .any(|line| line.starts_with("-A PORTICO-SERVICES ")
                && line.contains("-j PORTICO-SVCS-")),
        "nothing leads to the old chains:\n{dump}"
    );
    let outcome = after
        .check(&state(&[], &[]), &node_context())
        .await
        .expect("check");
    assert_eq!(outcome.kind, SyncKind::Repair);
    assert!(outcome.chains_deleted >= 2, "{outcome:?}");
    let again = after
        .check(&state(&[], &[]), &node_context())
        .await
        .expect("check");
    assert_eq!(
        again.kind,
        SyncKind::Unchanged,
        "listed once, not every check"
    );
    let dump = output_in_ns(&topology.node, &["iptables-save"]);
    assert!(
        !dump.contains("PORTICO-SVC-") && !dump.contains("PORTICO-SEP-"),
        "stale chains left:\n{dump}"
    );
    // Jumps are not duplicated by the second agent.
    assert_eq!(
        dump.lines()
            .filter(
                |line| line.starts_with("-A PREROUTING ") && line.ends_with(" -j PORTICO-SERVICES")
            )
            .count(),
        1,
        "{dump}"
    );
}

#[tokio::test]
async fn the_backend_is_detected_from_iptables_version() {
    if !root_or_skip("the_backend_is_detected_from_iptables_version") {
        return;
    }
    let topology = Topology::new("bkd");
    let version = output_in_ns(&topology.node, &["iptables", "-V"]);
    let detected = portico_agent::iptables::detect_backend(Some(&topology.node))
        .await
        .expect("iptables -V");
    let expected = if version.contains("nf_tables") {
        Backend::Nft
    } else {
        Backend::Legacy
    };
    assert_eq!(detected, expected, "{version}");
}
