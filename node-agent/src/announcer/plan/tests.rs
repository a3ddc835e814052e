use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    LoadBalancerIngress, LoadBalancerStatus, Node, NodeSpec, Service, ServiceSpec, ServiceStatus,
    Taint,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use portico_api::{AddressPool, AddressPoolSpec, L2Announcement, L2AnnouncementSpec, ServiceKey};

use super::*;
use crate::announcer::owner::choose_owner;
use crate::dataplane::build::SERVICE_NAME_LABEL;

fn labels(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn mk_service(name: &str, vip: &str, policy: &str) -> Arc<Service> {
    Arc::new(Service {
        metadata: ObjectMeta {
            namespace: Some("default".into()),
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            external_traffic_policy: Some(policy.into()),
            ..Default::default()
        }),
        status: Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(vec![LoadBalancerIngress {
                    ip: Some(vip.into()),
                    ..Default::default()
                }]),
            }),
            ..Default::default()
        }),
    })
}

fn mk_node(name: &str, node_labels: &[(&str, &str)]) -> Arc<Node> {
    Arc::new(Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: labels(node_labels),
            ..Default::default()
        },
        ..Default::default()
    })
}

fn mk_pool(name: &str, addresses: &str, pool_labels: &[(&str, &str)]) -> Arc<AddressPool> {
    let mut pool = AddressPool::new(
        name,
        AddressPoolSpec {
            addresses: vec![addresses.into()],
            auto_assign: true,
            avoid_buggy_ips: false,
            service_allocation: None,
        },
    );
    pool.metadata.labels = labels(pool_labels);
    Arc::new(pool)
}

fn mk_announcement(spec: L2AnnouncementSpec) -> Arc<L2Announcement> {
    Arc::new(L2Announcement::new("announce", spec))
}

fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels(pairs),
        match_expressions: None,
    }
}

fn mk_slice(service: &str, endpoints: &[(&str, Option<bool>)]) -> Arc<EndpointSlice> {
    Arc::new(EndpointSlice {
        metadata: ObjectMeta {
            namespace: Some("default".into()),
            name: Some(format!("{service}-abc")),
            labels: labels(&[(SERVICE_NAME_LABEL, service)]),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints: endpoints
            .iter()
            .enumerate()
            .map(|(i, (node, ready))| Endpoint {
                addresses: vec![format!("10.244.{i}.5")],
                node_name: Some(node.to_string()),
                conditions: Some(EndpointConditions {
                    ready: *ready,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect(),
        ports: None,
    })
}

/// A small world: three nodes, one pool, one announcement covering every pool from every node.
struct World {
    services: Vec<Arc<Service>>,
    slices: Vec<Arc<EndpointSlice>>,
    nodes: Vec<Arc<Node>>,
    pools: Vec<Arc<AddressPool>>,
    announcements: Vec<Arc<L2Announcement>>,
    alive: BTreeSet<String>,
}

impl World {
    fn new() -> Self {
        World {
            services: vec![mk_service("web", "198.18.0.200", "Cluster")],
            slices: vec![],
            nodes: ["node-a", "node-b", "node-c"]
                .iter()
                .map(|n| mk_node(n, &[("zone", n)]))
                .collect(),
            pools: vec![mk_pool("lab", "198.18.0.200-198.18.0.250", &[])],
            announcements: vec![mk_announcement(L2AnnouncementSpec::default())],
            alive: ["node-a", "node-b", "node-c"]
                .iter()
                .map(|n| n.to_string())
                .collect(),
        }
    }

    fn plan(&self) -> Vec<VipPlan> {
        let slices: Vec<Arc<SliceView>> = (self.slices.iter())
            .map(|slice| Arc::new(SliceView::from(&**slice)))
            .collect();
        plan(&Inputs {
            services: &self.services,
            slices: &slices,
            nodes: &self.nodes,
            pools: &self.pools,
            announcements: &self.announcements,
            alive: &self.alive,
        })
    }

    fn outcome(&self) -> Outcome {
        let plans = self.plan();
        assert_eq!(plans.len(), 1, "{plans:?}");
        plans[0].outcome.clone()
    }

    fn owner(&self) -> Option<String> {
        self.plan()[0].owner().map(str::to_owned)
    }
}

fn hash_owner(vip: &str, nodes: &[&str]) -> String {
    let candidates = nodes.iter().map(|node| Candidate {
        node,
        preferred: false,
    });
    choose_owner(vip.parse().unwrap(), candidates)
        .unwrap()
        .to_owned()
}

#[test]
fn every_eligible_node_counts_and_the_owner_is_the_hash_winner() {
    let world = World::new();
    let plans = world.plan();
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].pool, "lab");
    assert_eq!(plans[0].services, vec![ServiceKey::new("default", "web")]);
    assert_eq!(
        plans[0].outcome,
        Outcome::Owner {
            node: hash_owner("198.18.0.200", &["node-a", "node-b", "node-c"]),
            interfaces: Interfaces {
                default: true,
                named: BTreeSet::new()
            },
        }
    );
}

#[test]
fn nodes_drop_out_for_each_reason() {
    let all = ["node-a", "node-b", "node-c"];
    let first = hash_owner("198.18.0.200", &all);
    let others: Vec<&str> = all.iter().copied().filter(|n| *n != first).collect();
    let expected = hash_owner("198.18.0.200", &others);
    let base = mk_node(&first, &[("zone", &first)]);
    let swap_first = |world: &mut World, node: Node| {
        let i = world
            .nodes
            .iter()
            .position(|n| n.metadata.name.as_deref() == Some(first.as_str()))
            .unwrap();
        world.nodes[i] = Arc::new(node);
    };
    let deleting = {
        let mut node = (*base).clone();
        node.metadata.deletion_timestamp = Some(Time(Default::default()));
        node
    };
    let tainted = {
        let mut node = (*base).clone();
        node.spec = Some(NodeSpec {
            taints: Some(vec![Taint {
                key: "ToBeDeletedByClusterAutoscaler".into(),
                effect: "NoSchedule".into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        node
    };
    let excluded = {
        let mut node = (*base).clone();
        node.metadata.labels = labels(&[(EXCLUDE_FROM_EXTERNAL_LB, "true")]);
        node
    };
    for (reason, node) in [
        ("being deleted", deleting),
        ("tainted by the autoscaler", tainted),
        ("excluded from load balancers", excluded),
    ] {
        let mut world = World::new();
        swap_first(&mut world, node);
        assert_eq!(
            world.owner().as_deref(),
            Some(expected.as_str()),
            "{reason}"
        );
    }
    let mut world = World::new();
    world.alive.remove(&first);
    assert_eq!(world.owner().as_deref(), Some(expected.as_str()), "dead");
    let mut world = World::new();
    world.announcements = vec![mk_announcement(L2AnnouncementSpec {
        node_selectors: others.iter().map(|n| selector(&[("zone", n)])).collect(),
        ..Default::default()
    })];
    assert_eq!(
        world.owner().as_deref(),
        Some(expected.as_str()),
        "not selected"
    );
}

#[test]
fn local_services_need_a_ready_local_endpoint() {
    let mut world = World::new();
    world.services = vec![mk_service("web", "198.18.0.200", "Local")];
    assert_eq!(
        world.outcome(),
        Outcome::NoEligibleNode,
        "no endpoints at all"
    );
    world.slices = vec![mk_slice(
        "web",
        &[("node-a", Some(false)), ("node-b", Some(true))],
    )];
    assert_eq!(world.owner().as_deref(), Some("node-b"));
    // A nil ready condition means ready.
    world.slices = vec![mk_slice("web", &[("node-c", None)])];
    assert_eq!(world.owner().as_deref(), Some("node-c"));
    // Another Service's endpoints do not count.
    world.slices = vec![mk_slice("other", &[("node-c", Some(true))])];
    assert_eq!(world.outcome(), Outcome::NoEligibleNode);
}

#[test]
fn a_shared_vip_needs_the_endpoints_of_every_local_service() {
    let mut world = World::new();
    world.services = vec![
        mk_service("web", "198.18.0.200", "Local"),
        mk_service("dns", "198.18.0.200", "Local"),
    ];
    world.slices = vec![
        mk_slice("web", &[("node-a", Some(true)), ("node-b", Some(true))]),
        mk_slice("dns", &[("node-b", Some(true)), ("node-c", Some(true))]),
    ];
    let plans = world.plan();
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].services.len(), 2);
    assert_eq!(plans[0].owner(), Some("node-b"));
}

#[test]
fn a_pool_no_announcement_covers_is_reported() {
    let mut world = World::new();
    world.announcements = vec![mk_announcement(L2AnnouncementSpec {
        address_pools: vec!["elsewhere".into()],
        ..Default::default()
    })];
    assert_eq!(world.outcome(), Outcome::NotCovered);
    world.announcements = vec![];
    assert_eq!(world.outcome(), Outcome::NotCovered);
    // Covered by name, or by the pool's labels.
    world.announcements = vec![mk_announcement(L2AnnouncementSpec {
        address_pools: vec!["lab".into()],
        ..Default::default()
    })];
    assert!(world.owner().is_some());
    world.pools = vec![mk_pool("lab", "198.18.0.200/29", &[("tier", "edge")])];
    world.announcements = vec![mk_announcement(L2AnnouncementSpec {
        address_pool_selectors: vec![selector(&[("tier", "edge")])],
        ..Default::default()
    })];
    assert!(world.owner().is_some());
}

#[test]
fn addresses_outside_every_pool_and_other_service_types_are_ignored() {
    let mut world = World::new();
    world
        .services
        .push(mk_service("cloud", "203.0.113.7", "Cluster"));
    let mut cluster_ip = (*mk_service("internal", "198.18.0.201", "Cluster")).clone();
    cluster_ip.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
    world.services.push(Arc::new(cluster_ip));
    let plans = world.plan();
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].ip.to_string(), "198.18.0.200");
}

#[test]
fn interfaces_are_the_union_of_the_announcements_selecting_the_owner() {
    let mut world = World::new();
    world.announcements = vec![
        mk_announcement(L2AnnouncementSpec {
            interfaces: vec!["eth1".into()],
            ..Default::default()
        }),
        mk_announcement(L2AnnouncementSpec {
            interfaces: vec!["bond0".into(), "eth1".into()],
            ..Default::default()
        }),
    ];
    let Outcome::Owner { interfaces, .. } = world.outcome() else {
        panic!("no owner");
    };
    assert!(!interfaces.default);
    assert_eq!(
        interfaces.named.into_iter().collect::<Vec<_>>(),
        ["bond0", "eth1"]
    );
}

#[test]
fn a_preferred_node_owns_while_alive_and_fails_over_after() {
    let mut world = World::new();
    let winner = hash_owner("198.18.0.200", &["node-a", "node-b", "node-c"]);
    let preferred = ["node-a", "node-b", "node-c"]
        .into_iter()
        .find(|n| *n != winner)
        .unwrap();
    world.announcements = vec![mk_announcement(L2AnnouncementSpec {
        preferred_node_selectors: vec![selector(&[("zone", preferred)])],
        ..Default::default()
    })];
    assert_eq!(world.owner().as_deref(), Some(preferred));
    world.alive.remove(preferred);
    assert_eq!(world.owner(), Some(winner));
    world.alive.insert(preferred.to_owned());
    assert_eq!(world.owner().as_deref(), Some(preferred));
}

#[test]
fn a_dead_node_moves_only_the_vips_it_owned() {
    let mut world = World::new();
    world.services = (200..=250)
        .map(|i| mk_service(&format!("svc-{i}"), &format!("198.18.0.{i}"), "Cluster"))
        .collect();
    let before: BTreeMap<IpAddr, String> = world
        .plan()
        .into_iter()
        .map(|p| (p.ip, p.owner().unwrap().to_owned()))
        .collect();
    assert!(before.values().any(|owner| owner == "node-b"));
    world.alive.remove("node-b");
    for plan in world.plan() {
        let owner = plan.owner().unwrap();
        if before[&plan.ip] == "node-b" {
            assert_ne!(owner, "node-b");
        } else {
            assert_eq!(owner, before[&plan.ip], "{} moved", plan.ip);
        }
    }
    world.alive.clear();
    assert!(
        world
            .plan()
            .iter()
            .all(|p| p.outcome == Outcome::NoEligibleNode)
    );
}

#[test]
fn the_runner_up_is_the_owner_once_the_owner_has_gone() {
    let mut world = World::new();
    let plans = world.plan();
    let owner = plans[0].owner().unwrap().to_owned();
    let runner_up = plans[0].runner_up.clone().unwrap();
    assert_ne!(runner_up, owner);
    world.alive.remove(&owner);
    assert_eq!(world.owner(), Some(runner_up));
    // Alone: nobody to fall back on.
    world.alive = [owner].into_iter().collect();
    assert_eq!(world.plan()[0].runner_up, None);
}
