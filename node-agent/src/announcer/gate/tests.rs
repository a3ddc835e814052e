use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector;
use kube::runtime::watcher::Event;
use portico_api::ServiceKey;
use serde_json::json;

use super::*;
use crate::announcer::plan::{Interfaces, Outcome};

const VIP: &str = "198.19.0.10";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn vip(inputs: &'static str, owned: bool) -> Vec<Vip<&'static str>> {
    vec![Vip {
        ip: ip(VIP),
        inputs,
        owned,
    }]
}

/// The proxier's sync covered generation `n`.
fn synced(n: u64) -> Synced {
    Synced::Upto(Some(n))
}

/// One pass over the one VIP: whether it is announced.
fn pass(
    gate: &mut Gate<&'static str>,
    inputs: &'static str,
    owned: bool,
    seen: u64,
    synced: Synced,
) -> bool {
    gate.update(vip(inputs, owned), seen, synced)
        .announce
        .contains(&ip(VIP))
}

/// The case that lost requests: the Service's endpoints changed (generation 7) while this node
/// stood by; its proxier had synced only up to 5 when the owner left. It takes the VIP over
/// once its rules include the change, not before.
#[test]
fn a_takeover_waits_until_the_dataplane_has_synced_the_vips_last_change() {
    let mut gate = Gate::default();
    assert!(!pass(&mut gate, "one endpoint", false, 5, synced(5)));
    // The slice is recreated: gone, then back.
    pass(&mut gate, "no endpoints", false, 6, synced(5));
    pass(&mut gate, "one endpoint", false, 7, synced(5));
    // The owner leaves: this node owns the VIP, but its rules are those of generation 5.
    let held = gate.update(vip("one endpoint", true), 8, synced(5));
    assert_eq!(held.held, BTreeMap::from([(ip(VIP), 7)]));
    assert!(held.announce.is_empty());
    assert!(!pass(&mut gate, "one endpoint", true, 8, synced(6)));
    let open = gate.update(vip("one endpoint", true), 8, synced(7));
    assert_eq!(open.announce, BTreeSet::from([ip(VIP)]));
    assert!(open.held.is_empty());
}

/// SIGKILL or link-down failover is not slowed: the runner-up's rules for the VIP have long
/// been in place, and changes to other Services (the generation racing ahead of the proxier)
/// do not hold it.
#[test]
fn a_runner_up_whose_rules_are_in_place_takes_over_at_once_however_busy_the_cluster() {
    let mut gate = Gate::default();
    pass(&mut gate, "one endpoint", false, 30, synced(30));
    for seen in 31..500 {
        pass(&mut gate, "one endpoint", false, seen, synced(seen - 20));
    }
    assert!(pass(&mut gate, "one endpoint", true, 500, synced(480)));
}

/// The gate holds takeovers only: a VIP this node announces is never dropped because its
/// Service changed (nobody else would answer for it meanwhile).
#[test]
fn an_announced_vip_stays_announced_when_its_inputs_change() {
    let mut gate = Gate::default();
    assert!(pass(&mut gate, "a", true, 3, synced(3)));
    assert!(pass(&mut gate, "b", true, 9, synced(3)));
}

/// A VIP lost and then taken again is a new takeover, gated anew.
#[test]
fn a_vip_taken_again_waits_again() {
    let mut gate = Gate::default();
    assert!(pass(&mut gate, "a", true, 3, synced(3)));
    assert!(!pass(&mut gate, "a", false, 4, synced(3)));
    pass(&mut gate, "b", false, 5, synced(3));
    assert!(!pass(&mut gate, "b", true, 5, synced(4)));
    assert!(pass(&mut gate, "b", true, 5, synced(5)));
}

/// Before the proxier's first sync nothing is announced; with `--proxy-mode off` (another
/// proxy's rules) nothing waits.
#[test]
fn nothing_before_the_first_sync_and_no_wait_without_a_proxier() {
    let mut gate = Gate::default();
    let decision = gate.update(vip("a", true), 0, Synced::Upto(None));
    assert_eq!(decision.held, BTreeMap::from([(ip(VIP), 0)]));
    let mut gate = Gate::default();
    assert!(pass(&mut gate, "a", true, 7, Synced::NotGated));
    assert!(!pass(&mut gate, "a", false, 8, Synced::NotGated));
}

/// Interfaces keep only the VIPs the gate lets through.
#[test]
fn held_vips_are_left_off_their_interfaces() {
    let decision = Decision {
        announce: BTreeSet::from([ip("198.19.0.11")]),
        held: BTreeMap::from([(ip(VIP), 4)]),
    };
    let owned = BTreeMap::from([
        (
            "eth0".to_string(),
            BTreeSet::from([ip(VIP), ip("198.19.0.11")]),
        ),
        ("eth1".to_string(), BTreeSet::from([ip(VIP)])),
    ]);
    assert_eq!(
        decision.announced(owned),
        BTreeMap::from([("eth0".to_string(), BTreeSet::from([ip("198.19.0.11")]))])
    );
}

fn service_view(name: &str) -> ServiceView {
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.10", "ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": VIP}]}},
    }))
    .unwrap();
    ServiceView::from(&service)
}

fn slice(service: &str, pod_ip: &str) -> Arc<SliceView> {
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": format!("{service}-x"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"port": 8080}],
        "endpoints": [{"addresses": [pod_ip], "nodeName": "node-a"}],
    }))
    .unwrap();
    Arc::new(SliceView::from(&slice))
}

fn owned_by(node: &str) -> Vec<VipPlan> {
    vec![VipPlan {
        ip: ip(VIP),
        pool: "lab".into(),
        services: vec![ServiceKey::new("default", "web")],
        outcome: Outcome::Owner {
            node: node.into(),
            interfaces: Interfaces::default(),
        },
        runner_up: None,
    }]
}

/// A VIP's inputs are its Services' and their slices' views: they change with its own slice,
/// not with another Service's.
#[test]
fn a_vips_inputs_follow_its_services_and_their_slices_only() {
    let (services, mut writer) = reflector::store::<ServiceView>();
    for event in [
        Event::Init,
        Event::InitApply(service_view("web")),
        Event::InitApply(service_view("other")),
        Event::InitDone,
    ] {
        writer.apply_watcher_event(&event);
    }
    let plans = owned_by("node-a");
    let before = vips_of(
        &plans,
        "node-a",
        &services,
        &[slice("web", "10.244.0.5"), slice("other", "10.244.0.6")],
    );
    assert!(before[0].owned);
    assert!(!vips_of(&plans, "node-b", &services, &[])[0].owned);
    let other_moved = vips_of(
        &plans,
        "node-a",
        &services,
        &[slice("web", "10.244.0.5"), slice("other", "10.244.0.7")],
    );
    assert_eq!(before[0].inputs, other_moved[0].inputs);
    let own_moved = vips_of(
        &plans,
        "node-a",
        &services,
        &[slice("web", "10.244.0.9"), slice("other", "10.244.0.6")],
    );
    assert_ne!(before[0].inputs, own_moved[0].inputs);
    let no_slice = vips_of(&plans, "node-a", &services, &[slice("other", "10.244.0.6")]);
    assert_ne!(before[0].inputs, no_slice[0].inputs);
}
