//! A restarted agent over an earlier run's rules: the ledger the earlier run wrote lets the first
//! sync write only the chains whose group changed meanwhile, traffic keeps flowing, and after
//! the first check the kernel holds exactly the render. Without a ledger it rewrites everything.

use portico_agent::dataplane::IpFamily;
use portico_agent::iptables::ledger;
use portico_agent::iptables::{Backend, Iptables, RuleSet, SyncKind, Syncer};

use crate::helper::{Answer, EchoServer, connect_from};
use crate::services::{mk_service, mk_slice, node_context, state};
use crate::topology::{
    ECHO_PORT, NODE_IP, NODE_NAME, NODE_POD_GATEWAY, POD_A_IP, POD_B_IP, Topology, in_ns,
    output_in_ns, root_or_skip,
};

/// Portico's rules in the kernel (the ledger aside), sorted.
fn kernel_rules(node: &str, save: &str) -> Vec<String> {
    let mut lines: Vec<String> = output_in_ns(node, &[save])
        .lines()
        .filter(|line| {
            line.starts_with("-A PORTICO-") && !line.starts_with(&format!("-A {} ", ledger::CHAIN))
        })
        .map(str::to_owned)
        .collect();
    lines.sort_unstable();
    lines
}

/// Asserts the kernel holds exactly the rendered rules, naming the ones that differ.
fn assert_kernel_holds(node: &str, save: &str, set: &RuleSet) {
    let kernel = kernel_rules(node, save);
    let rendered = rendered_rules(set);
    let missing: Vec<&String> = rendered.iter().filter(|r| !kernel.contains(r)).collect();
    let extra: Vec<&String> = kernel.iter().filter(|r| !rendered.contains(r)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "rendered but not in the kernel: {missing:#?}\nin the kernel but not rendered: {extra:#?}"
    );
}

fn rendered_rules(set: &RuleSet) -> Vec<String> {
    let mut lines: Vec<String> = set
        .nat
        .iter()
        .chain(&set.filter)
        .flat_map(|(chain, rules)| rules.iter().map(move |rule| format!("-A {chain} {rule}")))
        // iptables-save prints the MARK target's shorthands in their general form.
        .map(|line| {
            line.replace("--or-mark 0x4000", "--set-xmark 0x4000/0x4000")
                .replace("--xor-mark 0x4000", "--set-xmark 0x4000/0x0")
        })
        .collect();
    lines.sort_unstable();
    lines
}

async fn a_restart_writes_only_what_changed(backend: Backend, tag: &str) {
    let topology = Topology::new(tag);
    let node = topology.node.as_str();
    let save = format!("iptables-{}-save", backend.as_str());
    let new_syncer = || {
        Syncer::new(
            Iptables::new(IpFamily::V4)
                .with_backend(backend)
                .in_netns(node),
            &node_context(),
        )
    };
    let _echo = EchoServer::start(&topology.pod_a, &format!("0.0.0.0:{ECHO_PORT}"));
    let _echo_b = EchoServer::start(&topology.pod_b, &format!("0.0.0.0:{ECHO_PORT}"));

    // Forty Services; "web" is a NodePort Service on pod A.
    let mut services = vec![mk_service("web", "10.96.0.10", "NodePort", Some(30080))];
    let mut slices = vec![mk_slice("web", &[(POD_A_IP, NODE_NAME)])];
    for i in 0..39 {
        let name = format!("svc-{i}");
        services.push(mk_service(
            &name,
            &format!("10.96.1.{i}"),
            "ClusterIP",
            None,
        ));
        slices.push(mk_slice(&name, &[(POD_B_IP, "node-b")]));
    }
    let first = new_syncer()
        .sync(&state(&services, &slices), &node_context())
        .await
        .expect("first run");
    assert_eq!(first.kind, SyncKind::Full);
    let node_port = format!("{NODE_IP}:30080");
    assert_eq!(
        connect_from(&topology.client, &node_port),
        Answer::Peer(NODE_POD_GATEWAY.into())
    );

    // A restart with nothing changed writes no chain.
    let mut second = new_syncer();
    let outcome = second
        .sync(&state(&services, &slices), &node_context())
        .await
        .expect("second run");
    assert_eq!(outcome.kind, SyncKind::Resume, "{outcome:?}");
    assert_eq!(outcome.chains_written, 0, "{outcome:?}");
    assert_kernel_holds(node, &save, second.rule_set());

    // While no agent runs: web moves to pod B, one Service goes away, one is added. The next
    // run writes the chains of their groups only.
    slices[0] = mk_slice("web", &[(POD_B_IP, "node-b")]);
    services.remove(5);
    slices.remove(5);
    services.push(mk_service("late", "10.96.2.1", "ClusterIP", None));
    slices.push(mk_slice("late", &[(POD_A_IP, NODE_NAME)]));
    let changed = state(&services, &slices);
    let mut third = new_syncer();
    let outcome = third
        .sync(&changed, &node_context())
        .await
        .expect("third run");
    let total = third.rule_set().nat.len() + third.rule_set().filter.len();
    assert_eq!(outcome.kind, SyncKind::Resume, "{outcome:?}");
    assert!(
        outcome.chains_written > 0 && outcome.chains_written * 3 < total,
        "{} of {total} chains written",
        outcome.chains_written
    );
    assert_eq!(
        connect_from(&topology.client, &node_port),
        Answer::Peer(NODE_POD_GATEWAY.into()),
        "web answers from pod B after the restart"
    );
    // The chains of the Service that went away are left to the first check, which deletes
    // them; then the kernel holds exactly the render.
    let checked = third.check(&changed, &node_context()).await.expect("check");
    assert_eq!(checked.kind, SyncKind::Repair, "{checked:?}");
    assert!(checked.chains_deleted >= 2, "{checked:?}");
    assert_kernel_holds(node, &save, third.rule_set());

    // A ledger that is gone (or was never written, by an older version) is not trusted: every
    // chain is written.
    let tool = format!("iptables-{}", backend.as_str());
    for table in ["nat", "filter"] {
        in_ns(node, &[&tool, "-t", table, "-F", ledger::CHAIN]);
        in_ns(node, &[&tool, "-t", table, "-X", ledger::CHAIN]);
    }
    let mut fourth = new_syncer();
    let outcome = fourth
        .sync(&changed, &node_context())
        .await
        .expect("fourth run");
    assert_eq!(outcome.kind, SyncKind::Full, "{outcome:?}");
    assert_kernel_holds(node, &save, fourth.rule_set());
    let fifth = new_syncer()
        .sync(&changed, &node_context())
        .await
        .expect("fifth run");
    assert_eq!(
        (fifth.kind, fifth.chains_written),
        (SyncKind::Resume, 0),
        "the full write left a ledger again"
    );
}

#[tokio::test]
async fn a_restart_on_iptables_nft_writes_only_what_changed() {
    if root_or_skip("a_restart_on_iptables_nft_writes_only_what_changed") {
        a_restart_writes_only_what_changed(Backend::Nft, "rsnft").await;
    }
}

#[tokio::test]
async fn a_restart_on_iptables_legacy_writes_only_what_changed() {
    if root_or_skip("a_restart_on_iptables_legacy_writes_only_what_changed") {
        a_restart_writes_only_what_changed(Backend::Legacy, "rsleg").await;
    }
}
