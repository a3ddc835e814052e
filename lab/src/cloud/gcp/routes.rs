//! Pass-through forwarding for target pools, as a pure plan: which pool members are healthy,
//! where each forwarding rule's IP is routed, and the `ip route` commands that move the cloud
//! namespace from what it has to what it should have.
//!
//! ```text
//!   Snapshot + node IPs by instance name + checker verdicts
//!     ─▶ members()  (per pool: instance, node IP, HEALTHY/UNHEALTHY)
//!     ─▶ routes()   (per rule IP: ECMP over the healthy members; none healthy → all of them;
//!                    no member → blackhole)
//!     ─▶ plan()     (`ip route replace|del` for what changed)
//! ```
//!
//! The packet keeps its destination (the rule's IP) and source (the client): the node's rules
//! for the load-balancer IP take it from there, as on GCP. With
//! `net.ipv4.fib_multipath_hash_policy=1` the kernel picks the nexthop by an L4 hash of the
//! flow, as GCP picks the instance by a hash of source and destination address and port.
//!
//! No healthy member: GCP's target pools without a backup pool then go to "force" mode, where
//! "traffic will be spread to the healthy instances with the best effort, or to all instances
//! when no instance is healthy" (the `failoverRatio` / `backupPool` reference). So does this
//! plan: every member, healthy or not, rather than dropping the traffic. A pool without a health
//! check treats every instance as healthy. A pool with no instance (or none that is a lab node)
//! has nowhere to send packets: a blackhole route drops them, as GCP drops them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::model::{Snapshot, url_name};
use crate::cloud::checker::{CheckSpec, Health};

/// One pool member as the lab cloud sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub instance: String,
    /// The lab node of that name; `None` when the instance is no lab node.
    pub node_ip: Option<Ipv4Addr>,
    pub health: Health,
}

/// Where a forwarding rule's IP goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// ECMP over these node IPs (sorted, one or more).
    Nodes(Vec<Ipv4Addr>),
    /// Dropped: the pool has no member to send to.
    Blackhole,
}

/// Every pool's members with their health: a member the checker has not judged yet (or that
/// is no lab node) is unhealthy; in a pool without a health check every member is healthy.
pub fn members(
    snapshot: &Snapshot,
    nodes: &BTreeMap<String, Ipv4Addr>,
    verdict: impl Fn(Ipv4Addr, &CheckSpec) -> Option<Health>,
) -> BTreeMap<String, Vec<Member>> {
    snapshot
        .pools
        .values()
        .map(|pool| {
            let members = pool
                .instances
                .iter()
                .map(|instance| {
                    let node_ip = nodes.get(url_name(instance)).copied();
                    let health = match (node_ip, &pool.check) {
                        (None, _) => Health::Unhealthy,
                        (Some(_), None) => Health::Healthy,
                        (Some(ip), Some(spec)) => verdict(ip, spec).unwrap_or(Health::Unhealthy),
                    };
                    Member {
                        instance: instance.clone(),
                        node_ip,
                        health,
                    }
                })
                .collect();
            (pool.name.clone(), members)
        })
        .collect()
}

/// Where each forwarding rule's IP should be routed. Two rules on one IP (different ports)
/// share the route of the first one listed.
pub fn routes(
    snapshot: &Snapshot,
    members: &BTreeMap<String, Vec<Member>>,
) -> BTreeMap<Ipv4Addr, Via> {
    let mut routes = BTreeMap::new();
    for rule in &snapshot.rules {
        if routes.contains_key(&rule.ip) {
            continue;
        }
        let pool = members.get(&rule.pool).map(Vec::as_slice).unwrap_or(&[]);
        routes.insert(rule.ip, via(pool));
    }
    routes
}

/// The healthy members' nodes; all members' nodes when none is healthy (GCP's force mode);
/// a blackhole when the pool has no lab node at all.
pub fn via(members: &[Member]) -> Via {
    let nodes = |healthy_only: bool| -> Vec<Ipv4Addr> {
        let mut ips: Vec<Ipv4Addr> = members
            .iter()
            .filter(|m| !healthy_only || m.health == Health::Healthy)
            .filter_map(|m| m.node_ip)
            .collect();
        ips.sort();
        ips.dedup();
        ips
    };
    let healthy = nodes(true);
    if !healthy.is_empty() {
        return Via::Nodes(healthy);
    }
    let all = nodes(false);
    if all.is_empty() {
        Via::Blackhole
    } else {
        Via::Nodes(all)
    }
}

/// `ip route replace` for one rule IP.
pub fn route_argv(ip: Ipv4Addr, via: &Via) -> Vec<String> {
    let mut argv: Vec<String> = ["ip", "route", "replace"].map(String::from).to_vec();
    match via {
        Via::Blackhole => argv.extend(["blackhole".to_owned(), format!("{ip}/32")]),
        Via::Nodes(nodes) if nodes.len() == 1 => {
            argv.extend([format!("{ip}/32"), "via".into(), nodes[0].to_string()]);
        }
        Via::Nodes(nodes) => {
            argv.push(format!("{ip}/32"));
            for node in nodes {
                argv.extend(["nexthop".into(), "via".into(), node.to_string()]);
            }
        }
    }
    argv
}

/// The commands that turn `current` into `desired`: a replace per new or changed IP, a delete
/// per IP no rule has any more.
pub fn plan(
    current: &BTreeMap<Ipv4Addr, Via>,
    desired: &BTreeMap<Ipv4Addr, Via>,
) -> Vec<Vec<String>> {
    let mut commands: Vec<Vec<String>> = desired
        .iter()
        .filter(|(ip, via)| current.get(ip) != Some(via))
        .map(|(ip, via)| route_argv(*ip, via))
        .collect();
    commands.extend(
        current
            .keys()
            .filter(|ip| !desired.contains_key(ip))
            .map(|ip| {
                ["ip", "route", "del"]
                    .map(String::from)
                    .into_iter()
                    .chain([format!("{ip}/32")])
                    .collect()
            }),
    );
    commands
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
