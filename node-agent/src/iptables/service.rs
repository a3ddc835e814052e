//! Renders one Service port: its own nat chains (SVC, SVL, EXT, FW, SEP), the dispatch rules
//! that lead to them, and its filter rules (REJECT, DROP, firewall, health check port).
//!
//! ```text
//!   SERVICES ─▶ SVCS-<low byte> ─ clusterIP ──▶ SVC (or SVL for internalTrafficPolicy Local)
//!                               ─ LB IP ──────▶ FW (source ranges) ─▶ EXT
//!                               ─ external IP ▶ EXT
//!   NODEPORTS ─▶ NPS-<proto>-<range> ─────────▶ EXT ─ Cluster: mark, SVC
//!                                                   ─ Local: pods ▶ SVC, node ▶ mark + SVC, else ▶ SVL
//!   SVC/SVL ─▶ statistic 1/(n-i) ─▶ SEP (local endpoint: hairpin mark, DNAT) or DNAT in place
//! ```
//!
//! Leaner than kube-proxy: a SEP chain exists only for endpoints on this node (or of unknown
//! node); remote endpoints are DNATed straight from the SVC chain. iptables-nft 1.8's
//! `--noflush` restore slows with the square of the chain count, which makes the per-endpoint
//! chains the dominant cost of a sync. A pod can still reach itself through this node when it
//! is another node's endpoint (this node's NodePort under the Local policy sends pod traffic to
//! the SVC chain): the one hairpin rule in PORTICO-POSTROUTING (`render::hairpin_rule`)
//! masquerades it, as kube-proxy's per-endpoint `-s <endpoint> -j KUBE-MARK-MASQ` does.

use std::net::IpAddr;

use ipnet::IpNet;

use super::names;
use crate::dataplane::{Endpoint, IpFamily, ServicePort, categorize};

mod endpoints;
use endpoints::load_balance;

/// What the renderer knows about the node, for one family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderContext {
    pub family: IpFamily,
    pub node_name: String,
    pub node_ips: Vec<IpAddr>,
    pub pod_cidrs: Vec<IpNet>,
    /// This family's NodePort addresses; None: every local address (`-m addrtype LOCAL`).
    pub nodeport_ips: Option<Vec<IpAddr>>,
    /// Whether endpoint rules carry their `ns/name:port -> IP:port` comment: not in large
    /// clusters, as kube-proxy's `largeClusterMode` (see `LARGE_CLUSTER_ENDPOINTS`).
    pub endpoint_comments: bool,
    /// Whether the kernel has the xt_bpf match the hairpin rule needs (`render::hairpin_rule`);
    /// without it the rule is left out rather than failing every restore.
    pub hairpin_match: bool,
}

/// Above this many endpoints in a family, endpoint rules go without comments (kube-proxy's
/// `largeClusterEndpointsThreshold`): at 10,000 Services of 5 endpoints they are two thirds of
/// the comments' bytes, and iptables-legacy stores each comment in a 256-byte match, so the
/// whole-table restores of iptables-legacy grow by half with them.
pub const LARGE_CLUSTER_ENDPOINTS: usize = 1000;

/// A rule for a dispatch bucket, and the match in the parent chain that leads to the bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatchRule {
    /// `PORTICO-SERVICES` or `PORTICO-NODEPORTS`.
    pub parent: &'static str,
    pub bucket: String,
    pub bucket_match: String,
    pub rule: String,
}

/// Everything one Service port contributes to the rule set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceRules {
    /// The port's own nat chains, each with its rules.
    pub nat_chains: Vec<(String, Vec<String>)>,
    pub dispatch: Vec<DispatchRule>,
    /// (filter chain, rule).
    pub filter: Vec<(&'static str, String)>,
}

/// Renders one Service port for the node in `ctx`.
pub fn render_service_port(port: &ServicePort, ctx: &RenderContext) -> ServiceRules {
    let key = &port.key;
    let sets = categorize(port, &ctx.node_name);
    let has_endpoints = sets.has_any();
    let has_internal = if port.internal_policy_local() {
        !sets.local.is_empty()
    } else {
        !sets.cluster.is_empty()
    };
    let has_external = if port.external_policy_local() {
        !sets.local.is_empty()
    } else {
        !sets.cluster.is_empty()
    };
    let hash = names::port_proto_hash(key);
    let svc = names::service_chain("SVC", &hash);
    let svl = names::service_chain("SVL", &hash);
    let ext = names::service_chain("EXT", &hash);
    let fw = names::service_chain("FW", &hash);
    let internal_chain = if port.internal_policy_local() {
        &svl
    } else {
        &svc
    };
    let uses_ext = has_endpoints && port.externally_accessible();
    let uses_fw = uses_ext
        && !port.load_balancer_ips.is_empty()
        && !port.load_balancer_source_ranges.is_empty();

    let proto = port.key.protocol.as_str();
    // kube-proxy's comments, in the order iptables-save prints a rule's parts (addresses, `-p`,
    // then the matches as given), so `iptables-save` shows what was rendered.
    let port_name = key.service_port_name();
    let named = |what: &str| names::comment(&format!("{port_name}{what}"));
    let service_match = |ip: &IpAddr, what: &str| {
        format!(
            "-d {} -p {proto} {} -m {proto} --dport {}",
            host(ip),
            named(what),
            port.port
        )
    };
    // REJECT tells clients at once that nothing serves the port; DROP when endpoints exist but
    // the policy keeps this node's traffic from them (the LB's health check moves clients off).
    let (no_endpoints_target, no_endpoints_comment) = if has_endpoints {
        ("DROP", " has no local endpoints")
    } else {
        ("REJECT", " has no endpoints")
    };

    let mut out = ServiceRules::default();
    let mut dispatch = |ip: &IpAddr, what: &str, target: &str| {
        let (bucket, bucket_match) = names::address_bucket(ip);
        out.dispatch.push(DispatchRule {
            parent: names::SERVICES,
            bucket,
            bucket_match,
            rule: format!("{} -j {target}", service_match(ip, what)),
        });
    };

    if has_internal {
        dispatch(&port.cluster_ip, " cluster IP", internal_chain);
    }
    for ip in &port.external_ips {
        if has_endpoints {
            dispatch(ip, " external IP", &ext);
        }
    }
    for ip in &port.load_balancer_ips {
        if has_endpoints {
            dispatch(ip, " loadbalancer IP", if uses_fw { &fw } else { &ext });
        }
    }
    if let Some(node_port) = port.node_port
        && has_endpoints
    {
        let (bucket, bucket_match) = names::node_port_bucket(port.key.protocol, node_port);
        out.dispatch.push(DispatchRule {
            parent: names::NODEPORTS,
            bucket,
            bucket_match,
            rule: format!(
                "-p {proto} {} -m {proto} --dport {node_port} -j {ext}",
                named("")
            ),
        });
    }

    // Filter rules.
    if !has_internal {
        out.filter.push((
            names::SERVICES,
            format!(
                "{} -j {no_endpoints_target}",
                service_match(&port.cluster_ip, no_endpoints_comment)
            ),
        ));
    }
    if !has_external {
        for ip in port.external_ips.iter().chain(&port.load_balancer_ips) {
            out.filter.push((
                names::EXTERNAL_SERVICES,
                format!(
                    "{} -j {no_endpoints_target}",
                    service_match(ip, no_endpoints_comment)
                ),
            ));
        }
        if let Some(node_port) = port.node_port {
            out.filter.push((
                names::EXTERNAL_SERVICES,
                format!(
                    "-p {proto} {} -m addrtype --dst-type LOCAL -m {proto} --dport {node_port} -j {no_endpoints_target}",
                    named(no_endpoints_comment)
                ),
            ));
        }
    }
    if uses_fw {
        let not_accepted = format!(" traffic not accepted by {fw}");
        for ip in &port.load_balancer_ips {
            out.filter.push((
                names::FIREWALL,
                format!("{} -j DROP", service_match(ip, &not_accepted)),
            ));
        }
    }
    if let Some(health_port) = port.health_check_node_port {
        out.filter.push((
            names::NODEPORTS,
            format!(
                "-p tcp {} -m tcp --dport {health_port} -j ACCEPT",
                named(" health check node port")
            ),
        ));
    }

    // The masquerade rule for off-cluster sources sits in whichever chain the ClusterIP enters.
    let masq_rule = masquerade_off_cluster(
        &service_match(&port.cluster_ip, " cluster IP"),
        &ctx.pod_cidrs,
    );
    let mut sep_chains: Vec<(String, Vec<String>)> = Vec::new();
    let mut policy_chain = |chain: &String, endpoints: &[&Endpoint], with_masq: bool| {
        let mut rules = Vec::new();
        if with_masq {
            rules.extend(masq_rule.clone());
        }
        rules.extend(load_balance(
            port,
            endpoints,
            ctx,
            &port_name,
            &mut sep_chains,
        ));
        (chain.clone(), rules)
    };
    if !sets.cluster.is_empty() {
        let chain = policy_chain(
            &svc,
            &sets.cluster,
            has_internal && !port.internal_policy_local(),
        );
        out.nat_chains.push(chain);
    }
    if !sets.local.is_empty() {
        let chain = policy_chain(
            &svl,
            &sets.local,
            has_internal && port.internal_policy_local(),
        );
        out.nat_chains.push(chain);
    }
    if uses_ext {
        let mut rules = Vec::new();
        if port.external_policy_local() {
            // Pods reaching an external address act as if they went out to the LB and back.
            let pods = names::comment(&format!(
                "pod traffic for {port_name} external destinations"
            ));
            rules.extend(
                ctx.pod_cidrs
                    .iter()
                    .map(|cidr| format!("-s {cidr} {pods} -j {svc}")),
            );
            // The node's own traffic gets the node's source anyway; route it cluster-wide so it
            // works without a local endpoint.
            rules.push(format!(
                "{} -m addrtype --src-type LOCAL -j {}",
                names::comment(&format!(
                    "masquerade LOCAL traffic for {port_name} external destinations"
                )),
                names::MARK_MASQ
            ));
            rules.push(format!(
                "{} -m addrtype --src-type LOCAL -j {svc}",
                names::comment(&format!(
                    "route LOCAL traffic for {port_name} external destinations"
                ))
            ));
            if has_external {
                rules.push(format!("-j {svl}"));
            }
        } else {
            rules.push(format!(
                "{} -j {}",
                names::comment(&format!(
                    "masquerade traffic for {port_name} external destinations"
                )),
                names::MARK_MASQ
            ));
            rules.push(format!("-j {svc}"));
        }
        out.nat_chains.push((ext.clone(), rules));
    }
    if uses_fw {
        let lb_comment = named(" loadbalancer IP");
        let mut rules: Vec<String> = port
            .load_balancer_source_ranges
            .iter()
            .map(|range| format!("-s {range} {lb_comment} -j {ext}"))
            .collect();
        // A VIP held by this node answers the node's own requests with the VIP as the source.
        let allows_node = port
            .load_balancer_source_ranges
            .iter()
            .any(|range| ctx.node_ips.iter().any(|ip| range.contains(ip)));
        if allows_node {
            rules.extend(
                port.load_balancer_ips
                    .iter()
                    .map(|ip| format!("-s {} {lb_comment} -j {ext}", host(ip))),
            );
        }
        // A rule without a target, as kube-proxy writes it: says where the rest goes.
        rules.push(names::comment(&format!(
            "other traffic to {port_name} will be dropped by {}",
            names::FIREWALL
        )));
        out.nat_chains.push((fw, rules));
    }
    out.nat_chains.extend(sep_chains);
    out
}

/// Marks traffic to the ClusterIP from outside the pod network for masquerade, so replies come
/// back through this node. Without a known pod CIDR, nothing is marked (kube-proxy without a
/// local-traffic detector does the same).
fn masquerade_off_cluster(service_match: &str, pod_cidrs: &[IpNet]) -> Option<String> {
    match pod_cidrs {
        [] => None,
        [cidr] => Some(format!(
            "! -s {cidr} {service_match} -j {}",
            names::MARK_MASQ
        )),
        _ => Some(format!("{service_match} -j {}", names::MASQ_NOT_POD)),
    }
}

/// An address as a one-host network, as iptables prints it.
pub fn host(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(_) => format!("{ip}/32"),
        IpAddr::V6(_) => format!("{ip}/128"),
    }
}
