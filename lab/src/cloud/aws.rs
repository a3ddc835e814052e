//! The AWS side of the lab cloud, pure: moto's state (NLBs, listeners, target groups with their
//! health checks and registered instance targets) ─▶ the HAProxy config that behaves like those
//! NLBs, the address each NLB gets from the cloud's range, and the client's hosts file that
//! makes each NLB's DNS name resolve. `aws_run` does the I/O around it.
//!
//! ```text
//!   moto ─(tests/aws/moto_state.py watch, JSON lines)─▶ Snapshot
//!   Snapshot + instance → node IP + NLB name → address ─▶ plan() ─▶ haproxy::Config, hosts
//! ```
//! Differences from a real NLB, on purpose or for want of a package: UDP and TLS listeners are
//! skipped (HAProxy does no UDP); targets are probed from one place, not one per zone; with
//! every target unhealthy HAProxy refuses connections where an NLB "fails open".

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::haproxy::{Backend, Check, CheckKind, Config, Frontend, Server};

/// One line of `moto_state.py watch`: the state, or why it could not be read this time.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Snapshot {
    #[serde(default)]
    pub load_balancers: Vec<MotoLb>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct MotoLb {
    pub name: String,
    pub dns: String,
    pub listeners: Vec<MotoListener>,
    pub target_groups: Vec<MotoTargetGroup>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct MotoListener {
    pub protocol: String,
    pub port: u16,
    /// The ARN of the target group its default action forwards to.
    pub target_group: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct MotoTargetGroup {
    pub arn: String,
    pub name: String,
    pub protocol: String,
    pub port: Option<u16>,
    pub health_check: MotoHealthCheck,
    /// `[instance ID, port]`.
    pub targets: Vec<(String, u16)>,
}

/// The target group's health-check fields as ELBv2 returns them (absent ones take AWS's
/// defaults for a Network Load Balancer).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct MotoHealthCheck {
    pub protocol: Option<String>,
    /// A port number or `traffic-port`.
    pub port: Option<String>,
    pub path: Option<String>,
    pub interval: Option<u32>,
    pub timeout: Option<u32>,
    pub healthy: Option<u32>,
    pub unhealthy: Option<u32>,
}

/// What the lab cloud serves for one NLB (also written to `view.json` for the demo).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbView {
    pub name: String,
    pub dns: String,
    pub address: Ipv4Addr,
    /// `(listener port, target group name)`.
    pub listeners: Vec<(u16, String)>,
}

/// Everything the lab cloud does for one snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub config: Config,
    pub load_balancers: Vec<LbView>,
    /// Why something of moto's state is not served (UDP listeners, unknown instances), for the log.
    pub skipped: Vec<String>,
}

/// Gives every NLB an address from `range` (hosts from `.10` up): one it already had keeps it,
/// a new one takes the lowest free, a gone one frees its own. None for NLBs past the range's end.
pub fn assign_addresses(
    previous: &BTreeMap<String, Ipv4Addr>,
    names: &[&str],
    range: Ipv4Net,
) -> BTreeMap<String, Ipv4Addr> {
    let mut assigned: BTreeMap<String, Ipv4Addr> = names
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), *previous.get(*name)?)))
        .collect();
    let mut free = range
        .hosts()
        .skip(9)
        .filter(|address| !assigned.values().any(|a| a == address))
        .collect::<Vec<_>>()
        .into_iter();
    for name in names {
        if !assigned.contains_key(*name)
            && let Some(address) = free.next()
        {
            assigned.insert((*name).to_owned(), address);
        }
    }
    assigned
}

/// The HAProxy config, the NLBs' addresses and what was skipped, for `snapshot`.
/// `instances` maps EC2 instance IDs to the lab's node IPs (the lab's nodes are the instances).
pub fn plan(
    snapshot: &Snapshot,
    instances: &BTreeMap<String, Ipv4Addr>,
    addresses: &BTreeMap<String, Ipv4Addr>,
) -> Plan {
    let mut plan = Plan::default();
    for lb in &snapshot.load_balancers {
        let Some(address) = addresses.get(&lb.name) else {
            plan.skipped.push(format!(
                "{}: no address left in the load-balancer range",
                lb.name
            ));
            continue;
        };
        let mut view = LbView {
            name: lb.name.clone(),
            dns: lb.dns.clone(),
            address: *address,
            listeners: Vec::new(),
        };
        for listener in &lb.listeners {
            if listener.protocol != "TCP" {
                plan.skipped.push(format!(
                    "{} listener {}/{}: the lab cloud (HAProxy) forwards TCP only",
                    lb.name, listener.protocol, listener.port
                ));
                continue;
            }
            let Some(group) = lb
                .target_groups
                .iter()
                .find(|tg| Some(&tg.arn) == listener.target_group.as_ref())
            else {
                plan.skipped.push(format!(
                    "{} listener TCP/{}: forwards to no target group of the load balancer",
                    lb.name, listener.port
                ));
                continue;
            };
            plan.config.frontends.push(Frontend {
                name: format!("{}-{}", lb.name, listener.port),
                bind: SocketAddrV4::new(*address, listener.port),
                backend: group.name.clone(),
            });
            view.listeners.push((listener.port, group.name.clone()));
            if !plan.config.backends.iter().any(|b| b.name == group.name) {
                plan.config
                    .backends
                    .push(backend(group, instances, &mut plan.skipped));
            }
        }
        plan.load_balancers.push(view);
    }
    plan
}

fn backend(
    group: &MotoTargetGroup,
    instances: &BTreeMap<String, Ipv4Addr>,
    skipped: &mut Vec<String>,
) -> Backend {
    let servers = group
        .targets
        .iter()
        .filter_map(|(instance, port)| match instances.get(instance) {
            Some(ip) => Some(Server {
                name: instance.clone(),
                addr: SocketAddrV4::new(*ip, *port),
            }),
            None => {
                skipped.push(format!(
                    "{}: target {instance} is none of the lab's nodes",
                    group.name
                ));
                None
            }
        })
        .collect();
    Backend {
        name: group.name.clone(),
        check: check(&group.health_check),
        servers,
    }
}

/// AWS's defaults for an NLB target group: TCP on the traffic port, 30 s, 10 s (6 s for HTTP),
/// 5 healthy, 2 unhealthy.
fn check(health: &MotoHealthCheck) -> Check {
    let http = matches!(health.protocol.as_deref(), Some("HTTP" | "HTTPS"));
    Check {
        kind: if http {
            CheckKind::Http {
                path: health.path.clone().unwrap_or_else(|| "/".into()),
            }
        } else {
            CheckKind::Tcp
        },
        port: health.port.as_deref().and_then(|port| port.parse().ok()),
        interval_s: health.interval.unwrap_or(30),
        timeout_s: health.timeout.unwrap_or(if http { 6 } else { 10 }),
        healthy: health.healthy.unwrap_or(5),
        unhealthy: health.unhealthy.unwrap_or(2),
    }
}

/// The client's `/etc/netns/<ns>/hosts`: localhost, and each NLB's DNS name at its address.
pub fn hosts_file(load_balancers: &[LbView]) -> String {
    let mut out = String::from("127.0.0.1 localhost\n::1 localhost ip6-localhost\n");
    for lb in load_balancers {
        out.push_str(&format!("{} {}\n", lb.address, lb.dns));
    }
    out
}

/// One target as the lab cloud sees it: which NLB, listener's target group, node, and state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TargetHealth {
    pub load_balancer: String,
    pub dns: String,
    pub target_group: String,
    pub instance: String,
    pub status: String,
    pub check_status: String,
}

/// Joins HAProxy's server rows with the NLBs they serve.
pub fn target_health(
    load_balancers: &[LbView],
    stats: &[super::haproxy::ServerStat],
) -> Vec<TargetHealth> {
    let mut out = Vec::new();
    for lb in load_balancers {
        for (_, group) in &lb.listeners {
            for stat in stats.iter().filter(|s| &s.backend == group) {
                out.push(TargetHealth {
                    load_balancer: lb.name.clone(),
                    dns: lb.dns.clone(),
                    target_group: group.clone(),
                    instance: stat.server.clone(),
                    status: stat.status.clone(),
                    check_status: stat.check_status.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "aws_tests.rs"]
mod tests;
