use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use portico_api::ServiceKey;

use super::*;
use crate::announcer::plan::{Interfaces, Outcome};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn owned_by(vip: &str, node: &str) -> VipPlan {
    VipPlan {
        ip: ip(vip),
        pool: "lab".into(),
        services: vec![ServiceKey::new("default", "web")],
        outcome: Outcome::Owner {
            node: node.into(),
            interfaces: Interfaces {
                default: true,
                named: BTreeSet::new(),
            },
        },
    }
}

fn nobody_without_me(_: IpAddr) -> Option<String> {
    None
}

#[test]
fn a_vip_taken_from_a_node_that_left_is_handed_back_to_it() {
    let plans = [owned_by("198.19.0.1", "node-b"), owned_by("198.19.0.2", "node-b")];
    let before = BTreeMap::from([
        (ip("198.19.0.1"), Some("node-a".to_string())),
        // Already ours: nothing taken over.
        (ip("198.19.0.2"), Some("node-b".to_string())),
    ]);
    assert_eq!(
        taken_over(&plans, &before, "node-b", nobody_without_me),
        [(ip("198.19.0.1"), "node-a".to_string())]
    );
    // Another node's VIP, or one nobody owned before, hands nothing back.
    let before = BTreeMap::from([(ip("198.19.0.1"), None)]);
    assert!(taken_over(&plans[..1], &before, "node-b", nobody_without_me).is_empty());
    assert!(taken_over(&plans, &BTreeMap::new(), "node-c", |_| Some("node-a".into())).is_empty());
}

#[test]
fn a_restarted_node_hands_back_to_the_owner_it_takes_the_vip_from() {
    // Just started: no record of the earlier owner, which is the owner without this node.
    let plans = [owned_by("198.19.0.1", "node-a")];
    let runner_up = |vip: IpAddr| (vip == ip("198.19.0.1")).then(|| "node-b".to_string());
    assert_eq!(
        taken_over(&plans, &BTreeMap::new(), "node-a", runner_up),
        [(ip("198.19.0.1"), "node-b".to_string())]
    );
    // Alone in the cluster: nobody to hand back to.
    assert!(taken_over(&plans, &BTreeMap::new(), "node-a", nobody_without_me).is_empty());
}

#[test]
fn hand_backs_end_when_the_vip_is_lost_or_the_time_is_up() {
    let now = Instant::now();
    let mut handoffs = Handoffs::default();
    let vip = ip("198.19.0.1");
    let owned = BTreeSet::from([vip, ip("fd00::1")]);
    // A previous owner of the other family cannot take the packets.
    let taken = [(vip, ip("198.18.0.10")), (ip("fd00::1"), ip("198.18.0.10"))];
    assert!(handoffs.update(&taken, &owned, now));
    assert_eq!(handoffs.next_expiry(), Some(now + HANDOFF_FOR));
    // Unchanged: nothing to rewrite.
    assert!(!handoffs.update(&[], &owned, now + Duration::from_secs(1)));
    // Time is up.
    assert!(handoffs.update(&[], &owned, now + HANDOFF_FOR));
    assert!(handoffs.is_empty());
    // Lost before the time is up.
    handoffs.update(&taken, &owned, now);
    assert!(handoffs.update(&[], &BTreeSet::new(), now));
    assert!(handoffs.is_empty());
    // Taken over but lost again in the same pass: nothing.
    assert!(!handoffs.update(&taken, &BTreeSet::new(), now));
}

#[test]
fn the_rules_hand_unknown_tcp_back_and_keep_syns() {
    let now = Instant::now();
    let mut handoffs = Handoffs::default();
    handoffs.update(
        &[
            (ip("198.19.0.1"), ip("198.18.0.10")),
            (ip("fd00::1"), ip("fd00:198::10")),
        ],
        &BTreeSet::from([ip("198.19.0.1"), ip("fd00::1")]),
        now,
    );
    let unknown = "-A PORTICO-L2-HANDOFF -d 198.19.0.1/32 -p tcp -m tcp ! --syn -m conntrack \
                   --ctstate NEW,INVALID -m comment --comment \"connections of 198.19.0.1 opened \
                   through 198.18.0.10\"";
    assert_eq!(
        handoffs.restore_input(IpFamily::V4),
        format!(
            "*mangle\n:PORTICO-L2-HANDOFF - [0:0]\n\
             {unknown} -m ttl --ttl-lt 2 -j DROP\n\
             {unknown} -j TTL --ttl-dec 1\n\
             {unknown} -j TEE --gateway 198.18.0.10\n\
             {unknown} -j DROP\nCOMMIT\n"
        )
    );
    let v6 = handoffs.restore_input(IpFamily::V6);
    assert!(v6.contains("-d fd00::1/128 "), "{v6}");
    assert!(v6.contains("-m hl --hl-lt 2 -j DROP"), "{v6}");
    assert!(v6.contains("-j TEE --gateway fd00:198::10"), "{v6}");
    // No hand-backs: the chain is declared (so flushed) and left empty.
    assert_eq!(
        Handoffs::default().restore_input(IpFamily::V4),
        "*mangle\n:PORTICO-L2-HANDOFF - [0:0]\nCOMMIT\n"
    );
}
