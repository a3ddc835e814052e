//! The cache against `render()` when many ports share dispatch buckets and change in the middle
//! of them: the cache finds unchanged ports' rules in the rule set by position, so any slip in
//! the order or the count of a bucket's rules shows here.

use super::*;
use crate::dataplane::TrafficPolicy;
use crate::iptables::render::render;
use crate::iptables::render::tests::{mk_endpoint, mk_port, node};
use crate::iptables::ruleset::ExtraLines;

/// A small deterministic generator (no dependency, same steps on every run).
struct Steps(u64);

impl Steps {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// Port `i` in one of a few shapes: cluster, LB and external IPs on three last octets (three
/// shared buckets),
/// node ports in one range, some with LB or external IPs, some Local, some without endpoints.
fn port(i: u64, shape: u64, endpoints: u64) -> ServicePort {
    let mut port = mk_port(
        &format!("svc{i:02}"),
        &format!("10.96.{i}.{}", shape % 3 + 1),
    );
    if shape.is_multiple_of(2) {
        port.node_port = Some(30000 + (i % 40) as u16);
    }
    if shape.is_multiple_of(4) {
        // The same last octet as the cluster IP: two rules of one port in one bucket.
        port.load_balancer_ips = vec![format!("198.19.0.{}", shape % 3 + 1).parse().unwrap()];
    }
    if shape.is_multiple_of(5) {
        port.external_ips = vec![format!("192.0.2.{}", (shape + 1) % 3 + 1).parse().unwrap()];
    }
    if shape.is_multiple_of(3) {
        port.external_policy = TrafficPolicy::Local;
        port.health_check_node_port = Some(31000 + i as u16);
    }
    port.endpoints = (0..endpoints)
        .map(|e| {
            let node = if (i + e).is_multiple_of(3) {
                "node-a"
            } else {
                "node-b"
            };
            mk_endpoint(&format!("10.244.{i}.{}", e + 1), node)
        })
        .collect();
    port
}

#[test]
fn the_cache_equals_render_while_ports_sharing_buckets_change() {
    let mut steps = Steps(7);
    let mut ports: BTreeMap<u64, (u64, u64)> = (0..40).map(|i| (i, (i % 7, i % 4))).collect();
    let mut cache = RenderCache::new(&node(), IpFamily::V4);
    let state_of = |ports: &BTreeMap<u64, (u64, u64)>| {
        let mut state = DesiredState::default();
        for (i, (shape, endpoints)) in ports {
            state.insert(port(*i, *shape, *endpoints));
        }
        state
    };
    let mut previous = cache.render(&state_of(&ports), &node()).clone();
    cache.take_changes();
    for step in 0..60 {
        for _ in 0..=steps.next(5) {
            let i = steps.next(48);
            match steps.next(4) {
                0 => {
                    ports.remove(&i);
                }
                1 => {
                    ports.insert(i, (steps.next(7), steps.next(4)));
                }
                _ => {
                    let shape = ports.get(&i).map_or(0, |(shape, _)| *shape);
                    ports.insert(i, (shape, steps.next(4)));
                }
            }
        }
        let state = state_of(&ports);
        let rendered = cache.render(&state, &node()).clone();
        assert_eq!(
            rendered,
            render(&state, &node(), IpFamily::V4),
            "step {step}"
        );
        let changes = cache.take_changes();
        assert_eq!(
            rendered.changed_restore(&changes.chains, &ExtraLines::default()),
            rendered.partial_restore(&previous),
            "step {step}"
        );
        previous = rendered;
    }
}
