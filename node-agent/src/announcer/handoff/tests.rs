use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use portico_api::ServiceKey;

use super::*;
use crate::announcer::plan::{Interfaces, Outcome};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn vip(address: &str, owner: &str, runner_up: Option<&str>) -> VipPlan {
    VipPlan {
        ip: ip(address),
        pool: "lab".into(),
        services: vec![ServiceKey::new("default", "web")],
        outcome: Outcome::Owner {
            node: owner.into(),
            interfaces: Interfaces {
                default: true,
                named: BTreeSet::new(),
            },
        },
        runner_up: runner_up.map(str::to_owned),
    }
}

fn seen(entries: &[(&str, Option<&str>)]) -> BTreeMap<IpAddr, Option<String>> {
    entries
        .iter()
        .map(|(vip, owner)| (ip(vip), owner.map(str::to_owned)))
        .collect()
}

fn rules(handoffs: &Handoffs) -> Vec<(String, String)> {
    handoffs
        .rules()
        .iter()
        .map(|(vip, node)| (vip.to_string(), node.clone()))
        .collect()
}

fn pair(vip: &str, node: &str) -> (String, String) {
    (vip.to_owned(), node.to_owned())
}

#[test]
fn the_runner_up_stands_by_for_the_owner_so_a_takeover_writes_no_rule() {
    let now = Instant::now();
    let mut b = Handoffs::default();
    // node-a owns it, node-b would take it over: node-b's rule points at node-a already.
    let before = seen(&[("198.19.0.1", Some("node-a"))]);
    let plans = [vip("198.19.0.1", "node-a", Some("node-b"))];
    assert!(b.update(&plans, &before, "node-b", now));
    assert_eq!(rules(&b), [pair("198.19.0.1", "node-a")]);
    // node-a goes (crash or leave): node-b takes over, with the rule it already has.
    let plans = [vip("198.19.0.1", "node-b", Some("node-c"))];
    assert!(!b.update(&plans, &before, "node-b", now));
    assert_eq!(rules(&b), [pair("198.19.0.1", "node-a")]);
    // Neither owner nor runner-up: nothing.
    let mut c = Handoffs::default();
    assert!(!c.update(
        &[vip("198.19.0.1", "node-a", Some("node-b"))],
        &before,
        "node-c",
        now
    ));
    assert!(c.rules().is_empty());
}

#[test]
fn a_restarted_node_hands_back_to_the_node_it_takes_its_vip_back_from() {
    let now = Instant::now();
    let mut a = Handoffs::default();
    // Just started: no record; the VIP is its own again, and node-b had it meanwhile.
    let plans = [vip("198.19.0.1", "node-a", Some("node-b"))];
    assert!(a.update(&plans, &BTreeMap::new(), "node-a", now));
    assert_eq!(rules(&a), [pair("198.19.0.1", "node-b")]);
    // Until the time is up.
    let owners = seen(&[("198.19.0.1", Some("node-a"))]);
    let later = now + Duration::from_secs(1);
    assert!(!a.update(&plans, &owners, "node-a", later));
    assert_eq!(a.next_expiry(), Some(now + HANDOFF_FOR));
    assert!(a.update(&plans, &owners, "node-a", now + HANDOFF_FOR));
    assert!(a.rules().is_empty());
    // Alone in the cluster: nobody to hand back to.
    let mut alone = Handoffs::default();
    let plans = [vip("198.19.0.1", "node-a", None)];
    assert!(!alone.update(&plans, &BTreeMap::new(), "node-a", now));
}

#[test]
fn the_node_that_lost_a_vip_does_not_point_back_at_the_node_that_hands_back_to_it() {
    let now = Instant::now();
    let mut b = Handoffs::default();
    // node-b owned it; node-a comes back and takes it: node-a hands back to node-b, so node-b
    // (now the runner-up) must not send node-a's unknown packets back to node-a.
    let before = seen(&[("198.19.0.1", Some("node-b"))]);
    let plans = [vip("198.19.0.1", "node-a", Some("node-b"))];
    b.update(&plans, &before, "node-b", now);
    assert!(b.rules().is_empty());
    // Once node-a no longer hands back, node-b stands by for it again.
    let owners = seen(&[("198.19.0.1", Some("node-a"))]);
    assert!(b.update(&plans, &owners, "node-b", now + HANDOFF_FOR));
    assert_eq!(rules(&b), [pair("198.19.0.1", "node-a")]);
}

#[test]
fn a_vip_nobody_owned_or_that_is_gone_has_no_rule() {
    let now = Instant::now();
    let mut a = Handoffs::default();
    let plans = [vip("198.19.0.1", "node-a", Some("node-b"))];
    a.update(&plans, &seen(&[("198.19.0.1", None)]), "node-a", now);
    assert!(a.rules().is_empty());
    a.update(&plans, &BTreeMap::new(), "node-a", now);
    assert_eq!(rules(&a), [pair("198.19.0.1", "node-b")]);
    assert!(a.update(&[], &seen(&[("198.19.0.1", Some("node-a"))]), "node-a", now));
    assert!(a.rules().is_empty());
    assert_eq!(a.next_expiry(), None);
}

#[test]
fn the_rules_hand_unknown_tcp_over_and_keep_syns() {
    let handoffs = BTreeMap::from([
        (ip("198.19.0.1"), "node-a".to_string()),
        (ip("fd00::1"), "node-a".to_string()),
        (ip("198.19.0.2"), "node-gone".to_string()),
    ]);
    let resolved = resolve(&handoffs, |node, vip| match (node, vip.is_ipv4()) {
        ("node-a", true) => Some(ip("198.18.0.10")),
        ("node-a", false) => Some(ip("fd00:198::10")),
        _ => None,
    });
    assert_eq!(resolved.len(), 2);
    let unknown = "-A PORTICO-L2-HANDOFF -d 198.19.0.1/32 -p tcp -m tcp ! --syn -m conntrack \
                   --ctstate NEW,INVALID -m comment --comment \"connections of 198.19.0.1 held \
                   by 198.18.0.10\"";
    assert_eq!(
        restore_input(&resolved, IpFamily::V4),
        format!(
            "*mangle\n:PORTICO-L2-HANDOFF - [0:0]\n\
             {unknown} -m ttl --ttl-lt 2 -j DROP\n\
             {unknown} -j TTL --ttl-dec 1\n\
             {unknown} -j TEE --gateway 198.18.0.10\n\
             {unknown} -j DROP\nCOMMIT\n"
        )
    );
    let v6 = restore_input(&resolved, IpFamily::V6);
    assert!(v6.contains("-d fd00::1/128 "), "{v6}");
    assert!(v6.contains("-m hl --hl-lt 2 -j DROP"), "{v6}");
    assert!(v6.contains("-j TEE --gateway fd00:198::10"), "{v6}");
    // No hand-backs: the chain is declared (so flushed) and left empty.
    assert_eq!(
        restore_input(&BTreeMap::new(), IpFamily::V4),
        "*mangle\n:PORTICO-L2-HANDOFF - [0:0]\nCOMMIT\n"
    );
}
