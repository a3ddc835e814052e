//! Who announces each VIP: a pure function of the watched state and the live membership, the
//! same in every agent.
//!
//! ```text
//!   Services (status.loadBalancer.ingress) ─▶ VIPs ─▶ the AddressPool holding each one
//!   L2Announcements covering that pool ─▶ selected nodes (and their interfaces)
//!   ∩ nodes not deleting, not tainted for deletion, not excluded, alive in the membership
//!   ∩ (Local) nodes holding a ready endpoint of every Local Service on the VIP
//!   ─▶ owner::choose_owner (rendezvous hash, preferred first) ─▶ VipPlan
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};
use portico_api::keys::node::EXCLUDE_FROM_EXTERNAL_LB;
use portico_api::selector::selects;
use portico_api::{AddressPool, L2Announcement, ServiceKey};

use super::owner::{Candidate, choose_owner_and_runner_up};
use crate::health::node_eligible;
use crate::view::SliceView;

mod index;
use index::ReadyNodes;

/// Where the owner announces a VIP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interfaces {
    /// Announce on the interface holding the node's InternalIP (an `L2Announcement` without
    /// `interfaces` covers the VIP on this node).
    pub default: bool,
    /// Interfaces named by the covering `L2Announcement`s that select the node.
    pub named: BTreeSet<String>,
}

/// The decision for one VIP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// This node announces it on these interfaces.
    Owner {
        node: String,
        interfaces: Interfaces,
    },
    /// No `L2Announcement` covers the VIP's pool: nobody announces it, and the user is told.
    NotCovered,
    /// Covered, but no node is eligible now (all dead, excluded, or without a Local endpoint).
    NoEligibleNode,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipPlan {
    pub ip: IpAddr,
    pub pool: String,
    /// The Services holding the VIP (several when it is shared), sorted.
    pub services: Vec<ServiceKey>,
    pub outcome: Outcome,
    /// The node that owns the VIP if its owner goes (none without a second eligible node).
    pub runner_up: Option<String>,
}

impl VipPlan {
    pub fn owner(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Owner { node, .. } => Some(node),
            _ => None,
        }
    }
}

/// Everything the decision needs, at once.
pub struct Inputs<'a> {
    pub services: &'a [Arc<Service>],
    pub slices: &'a [Arc<SliceView>],
    pub nodes: &'a [Arc<Node>],
    pub pools: &'a [Arc<AddressPool>],
    pub announcements: &'a [Arc<L2Announcement>],
    /// Node names the membership holds alive.
    pub alive: &'a BTreeSet<String>,
}

/// One plan per VIP held by a LoadBalancer Service and inside an `AddressPool` (addresses from
/// elsewhere, such as a cloud, are not Portico's to announce), sorted by address.
pub fn plan(inputs: &Inputs) -> Vec<VipPlan> {
    let mut by_vip: BTreeMap<IpAddr, Vec<&Service>> = BTreeMap::new();
    for service in inputs.services {
        for ip in ingress_ips(service) {
            by_vip.entry(ip).or_default().push(service);
        }
    }
    // Only Local Services on a VIP need their endpoints' nodes: index just those, once.
    let local: BTreeSet<(&str, &str)> = (by_vip.values().flatten())
        .filter(|s| is_local(s))
        .map(|s| namespace_and_name(s))
        .collect();
    let ready = ReadyNodes::of(inputs.slices, &local);
    by_vip
        .into_iter()
        .filter_map(|(ip, services)| {
            let pool = pool_of(inputs.pools, ip)?;
            let mut keys: Vec<ServiceKey> = services.iter().map(|s| service_key(s)).collect();
            keys.sort();
            let (outcome, runner_up) = decide(inputs, &ready, ip, pool, &services);
            Some(VipPlan {
                ip,
                pool: pool.metadata.name.clone().unwrap_or_default(),
                services: keys,
                outcome,
                runner_up,
            })
        })
        .collect()
}

fn decide(
    inputs: &Inputs,
    ready: &ReadyNodes,
    ip: IpAddr,
    pool: &AddressPool,
    services: &[&Service],
) -> (Outcome, Option<String>) {
    let covering: Vec<&L2Announcement> = inputs
        .announcements
        .iter()
        .map(AsRef::as_ref)
        .filter(|a| covers_pool(a, pool))
        .collect();
    if covering.is_empty() {
        return (Outcome::NotCovered, None);
    }
    let local_services: Vec<&Service> = services.iter().copied().filter(|s| is_local(s)).collect();
    let mut candidates: Vec<(Candidate, Interfaces)> = Vec::new();
    for node in inputs.nodes {
        let Some(name) = node.metadata.name.as_deref() else {
            continue;
        };
        let selecting: Vec<&&L2Announcement> = covering
            .iter()
            .filter(|a| selects_any_or_all(&a.spec.node_selectors, node))
            .collect();
        if selecting.is_empty()
            || !node_eligible(node)
            || excluded(node)
            || !inputs.alive.contains(name)
            || !local_services
                .iter()
                .all(|s| ready.holds(namespace_and_name(s), name))
        {
            continue;
        }
        let preferred = selecting.iter().any(|a| {
            a.spec
                .preferred_node_selectors
                .iter()
                .any(|selector| selects(selector, labels(node)))
        });
        let mut interfaces = Interfaces::default();
        for announcement in &selecting {
            if announcement.spec.interfaces.is_empty() {
                interfaces.default = true;
            }
            interfaces
                .named
                .extend(announcement.spec.interfaces.iter().cloned());
        }
        candidates.push((
            Candidate {
                node: name,
                preferred,
            },
            interfaces,
        ));
    }
    let (owner, runner_up) = choose_owner_and_runner_up(ip, candidates.iter().map(|(c, _)| *c));
    let outcome = match owner {
        Some(owner) => {
            let interfaces = candidates
                .iter()
                .find(|(c, _)| c.node == owner)
                .map(|(_, i)| i.clone())
                .unwrap_or_default();
            Outcome::Owner {
                node: owner.to_owned(),
                interfaces,
            }
        }
        None => Outcome::NoEligibleNode,
    };
    (outcome, runner_up.map(str::to_owned))
}

fn ingress_ips(service: &Service) -> impl Iterator<Item = IpAddr> + '_ {
    let is_lb = service
        .spec
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .is_some_and(|t| t == "LoadBalancer");
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter(move |_| is_lb)
        .filter_map(|ingress| ingress.ip.as_deref()?.parse().ok())
}

fn pool_of(pools: &[Arc<AddressPool>], ip: IpAddr) -> Option<&AddressPool> {
    pools
        .iter()
        .map(AsRef::as_ref)
        .find(|pool| pool.spec.ranges().iter().any(|range| range.contains(ip)))
}

fn service_key(service: &Service) -> ServiceKey {
    ServiceKey::new(
        service.metadata.namespace.clone().unwrap_or_default(),
        service.metadata.name.clone().unwrap_or_default(),
    )
}

fn covers_pool(announcement: &L2Announcement, pool: &AddressPool) -> bool {
    let spec = &announcement.spec;
    if spec.address_pools.is_empty() && spec.address_pool_selectors.is_empty() {
        return true;
    }
    let name = pool.metadata.name.as_deref().unwrap_or_default();
    spec.address_pools.iter().any(|p| p == name)
        || spec
            .address_pool_selectors
            .iter()
            .any(|selector| selects(selector, pool_labels(pool)))
}

static NO_LABELS: std::sync::LazyLock<BTreeMap<String, String>> =
    std::sync::LazyLock::new(BTreeMap::new);

fn labels(node: &Node) -> &BTreeMap<String, String> {
    node.metadata.labels.as_ref().unwrap_or(&NO_LABELS)
}

fn pool_labels(pool: &AddressPool) -> &BTreeMap<String, String> {
    pool.metadata.labels.as_ref().unwrap_or(&NO_LABELS)
}

/// No selector selects every node; otherwise any one of them must (MetalLB's semantics).
fn selects_any_or_all(
    selectors: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector],
    node: &Node,
) -> bool {
    selectors.is_empty() || selectors.iter().any(|s| selects(s, labels(node)))
}

/// KEP-3458's label: the node takes no load-balancer traffic, so it must not attract it.
fn excluded(node: &Node) -> bool {
    labels(node)
        .get(EXCLUDE_FROM_EXTERNAL_LB)
        .is_some_and(|v| v.parse::<bool>().unwrap_or(true))
}

fn is_local(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.external_traffic_policy.as_deref())
        == Some("Local")
}

fn namespace_and_name(service: &Service) -> (&str, &str) {
    (
        service.metadata.namespace.as_deref().unwrap_or_default(),
        service.metadata.name.as_deref().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests;
