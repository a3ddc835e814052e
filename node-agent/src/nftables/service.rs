//! Renders one Service port into what it puts in Portico's nftables table: its own chains (only
//! those it needs), its elements in the shared maps, its affinity sets, and the endpoint
//! addresses the hairpin set must hold.
//!
//! ```text
//!   service-ips  (daddr . proto . port) ─▶ service-<h> (cluster IP) / local-<h> (internal Local)
//!                                      ─▶ external-<h> (external IP, LB IP) or firewall-<h> ─▶ external-<h>
//!   service-nodeports (proto . port) ───▶ external-<h> ─ Cluster: mark, service-<h>
//!                                                     ─ Local: pods ▶ service-<h>, node ▶ mark + service-<h>, else ▶ local-<h>
//!   service-<h> / local-<h> ─▶ goto pick-cluster-endpoint / pick-local-endpoint (shared)
//!        ─▶ dnat to <the packet's key> . numgen random mod n offset T(n) in the endpoint maps
//!      (more than 16 endpoints, or ClientIP affinity: `numgen random mod (n-i)` per endpoint ─▶
//!       dnat, or endpoint-<h> with affinity)
//!   no-endpoint-* and firewall-ips maps (filter hooks): reject, or drop
//! ```
//!
//! Why the endpoint maps: any commit that adds a rule with a DNAT or a goto, or a goto element,
//! makes the kernel re-validate every chain reachable from the hooks (`nft_table_validate`, 25+
//! ms at 10,000 Services); elements of a map without verdicts commit in under a millisecond. So
//! a policy chain's rules never name its endpoints or their count: its last rule is a goto to a
//! shared pick chain, which holds one rule per list length n (1..=16), `dnat to ip daddr . meta
//! l4proto . th dport . numgen random mod n offset T(n) map @cluster-ip-endpoints` (and the same
//! keyed by protocol . port for node ports). A Service port with n endpoints has elements only
//! under the buckets T(n)..T(n)+n-1 (T(n) = n(n-1)/2, so lengths never share a bucket), so
//! exactly one rule finds it, and each endpoint is chosen with probability exactly 1/n, as
//! kube-proxy's `numgen random mod n vmap`. An endpoint added or removed is only elements. The
//! key is the packet's own destination (each address or node port that reaches the chain has
//! its elements), because nothing else can carry the Service from its chain to the shared one.
//! Not one anonymous `numgen ... map { ... }` per Service: the kernel names each anonymous set by
//! scanning every set of the table (`nf_tables_set_alloc_name`), so 10,000 took 18 s to load.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;

use super::names;
use super::pick::{Entries, MAPPED_ENDPOINTS_MAX, Pick, mapped_elements};
use crate::dataplane::{Endpoint, IpFamily, ServicePort, categorize};
use crate::iptables::names::{port_proto_hash, sep_chain};

/// What the renderer knows about the node, for one family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NftContext {
    pub family: IpFamily,
    pub node_name: String,
    pub node_ips: Vec<IpAddr>,
    pub pod_cidrs: Vec<IpNet>,
    /// This family's NodePort addresses; None: every local address (`fib daddr type local`).
    pub nodeport_ips: Option<Vec<IpAddr>>,
}

/// One element of a shared map: (map, key, value).
pub type Element = (&'static str, String, String);

/// Everything one Service port contributes to the table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortObjects {
    /// Its chains, each with its rules.
    pub chains: Vec<(String, Vec<String>)>,
    pub elements: Vec<Element>,
    /// Affinity sets: (name, declaration body).
    pub sets: Vec<(String, String)>,
    /// Endpoint addresses this port may DNAT to (for the hairpin set).
    pub endpoint_ips: Vec<IpAddr>,
}

/// `ip` or `ip6`: the table family and the address match prefix.
pub fn family_word(family: IpFamily) -> &'static str {
    match family {
        IpFamily::V4 => "ip",
        IpFamily::V6 => "ip6",
    }
}

pub fn addr_type(family: IpFamily) -> &'static str {
    match family {
        IpFamily::V4 => "ipv4_addr",
        IpFamily::V6 => "ipv6_addr",
    }
}

/// One address or a set of them, as nft writes a match's right-hand side.
pub fn one_or_set<T: std::fmt::Display>(items: &[T]) -> String {
    match items {
        [one] => one.to_string(),
        _ => {
            let joined: Vec<String> = items.iter().map(ToString::to_string).collect();
            format!("{{ {} }}", joined.join(", "))
        }
    }
}

/// Renders one Service port for the node in `ctx`.
pub fn render_port(port: &ServicePort, ctx: &NftContext) -> PortObjects {
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
    let hash = port_proto_hash(&port.key);
    let label = names::port_label(&port.key);
    let svc = names::chain("service", &hash, &label);
    let svl = names::chain("local", &hash, &label);
    let ext = names::chain("external", &hash, &label);
    let fw = names::chain("firewall", &hash, &label);
    let uses_ext = has_endpoints && port.externally_accessible();
    let uses_fw = uses_ext
        && !port.load_balancer_ips.is_empty()
        && !port.load_balancer_source_ranges.is_empty();
    let ip = family_word(ctx.family);
    let proto = port.key.protocol.as_str();
    let key = |addr: &IpAddr| format!("{addr} . {proto} . {}", port.port);
    // REJECT tells clients at once that nothing serves the port; DROP when endpoints exist but
    // the policy keeps this node's traffic from them (the LB's health check moves clients off).
    let no_endpoints = if has_endpoints {
        "drop".to_string()
    } else {
        format!("goto {}", names::REJECT)
    };

    let mut out = PortObjects::default();
    let internal_chain = if port.internal_policy_local() {
        &svl
    } else {
        &svc
    };
    if has_internal {
        out.elements.push((
            names::SERVICE_IPS,
            key(&port.cluster_ip),
            format!("goto {internal_chain}"),
        ));
    } else {
        out.elements.push((
            names::NO_ENDPOINT_SERVICES,
            key(&port.cluster_ip),
            no_endpoints.clone(),
        ));
    }
    if has_endpoints {
        for addr in &port.external_ips {
            out.elements
                .push((names::SERVICE_IPS, key(addr), format!("goto {ext}")));
        }
        let lb_target = if uses_fw { &fw } else { &ext };
        for addr in &port.load_balancer_ips {
            out.elements
                .push((names::SERVICE_IPS, key(addr), format!("goto {lb_target}")));
        }
        if let Some(node_port) = port.node_port {
            out.elements.push((
                names::SERVICE_NODEPORTS,
                format!("{proto} . {node_port}"),
                format!("goto {ext}"),
            ));
        }
    }
    if !has_external {
        for addr in port.external_ips.iter().chain(&port.load_balancer_ips) {
            out.elements
                .push((names::NO_ENDPOINT_EXTERNAL, key(addr), no_endpoints.clone()));
        }
        if let Some(node_port) = port.node_port {
            out.elements.push((
                names::NO_ENDPOINT_NODEPORTS,
                format!("{proto} . {node_port}"),
                no_endpoints.clone(),
            ));
        }
    }
    if uses_fw {
        for addr in &port.load_balancer_ips {
            out.elements
                .push((names::FIREWALL_IPS, key(addr), "drop".into()));
        }
    }

    // Sources outside the pod network are masqueraded on the way to a ClusterIP, so replies come
    // back through this node. External destinations mark in their own chain before they jump
    // here, so the rule needs no destination match. Without a known pod CIDR nothing is marked
    // (as kube-proxy without a local-traffic detector).
    let masquerade = (!ctx.pod_cidrs.is_empty()).then(|| {
        format!(
            "{ip} saddr != {} jump {}",
            one_or_set(&ctx.pod_cidrs),
            names::MARK_MASQ
        )
    });
    // The destinations that reach each policy chain, which key its endpoint map elements.
    let external_entries = || Entries {
        addrs: port
            .external_ips
            .iter()
            .chain(&port.load_balancer_ips)
            .copied()
            .collect(),
        node_port: port.node_port,
    };
    let mut cluster_entries = if uses_ext {
        external_entries()
    } else {
        Entries::default()
    };
    let mut local_entries = if uses_ext && port.external_policy_local() && has_external {
        external_entries()
    } else {
        Entries::default()
    };
    if has_internal {
        let internal = if port.internal_policy_local() {
            &mut local_entries
        } else {
            &mut cluster_entries
        };
        internal.addrs.insert(0, port.cluster_ip);
    }
    let mut endpoint_chains: Vec<(String, Vec<String>)> = Vec::new();
    let mut policy_chain =
        |name: &String, endpoints: &[&Endpoint], with_masq: bool, pick: Pick, entries: &Entries| {
            let mut rules: Vec<String> = Vec::new();
            if with_masq {
                rules.extend(masquerade.clone());
            }
            if port.affinity_timeout_seconds.is_none() && endpoints.len() <= MAPPED_ENDPOINTS_MAX {
                rules.push(format!("goto {}", pick.chain));
                mapped_elements(port, endpoints, pick, entries, &mut out.elements);
            } else {
                rules.extend(load_balance(
                    port,
                    endpoints,
                    ctx,
                    &mut endpoint_chains,
                    &mut out.sets,
                ));
            }
            (name.clone(), rules)
        };
    let mut chains = Vec::new();
    if !sets.cluster.is_empty() {
        chains.push(policy_chain(
            &svc,
            &sets.cluster,
            has_internal && !port.internal_policy_local(),
            Pick::CLUSTER,
            &cluster_entries,
        ));
    }
    if !sets.local.is_empty() {
        chains.push(policy_chain(
            &svl,
            &sets.local,
            has_internal && port.internal_policy_local(),
            Pick::LOCAL,
            &local_entries,
        ));
    }
    if uses_ext {
        let mut rules = Vec::new();
        if port.external_policy_local() {
            // Pods reaching an external address act as if they went out to the LB and back.
            if !ctx.pod_cidrs.is_empty() {
                rules.push(format!(
                    "{ip} saddr {} goto {svc}",
                    one_or_set(&ctx.pod_cidrs)
                ));
            }
            // The node's own traffic gets the node's source anyway; route it cluster-wide so
            // it works without a local endpoint.
            rules.push(format!("fib saddr type local jump {}", names::MARK_MASQ));
            rules.push(format!("fib saddr type local goto {svc}"));
            if has_external {
                rules.push(format!("goto {svl}"));
            }
        } else {
            rules.push(format!("jump {}", names::MARK_MASQ));
            rules.push(format!("goto {svc}"));
        }
        chains.push((ext.clone(), rules));
    }
    if uses_fw {
        let mut rules = vec![format!(
            "{ip} saddr {} goto {ext}",
            one_or_set(&port.load_balancer_source_ranges)
        )];
        // A VIP held by this node answers the node's own requests with the VIP as the source.
        let allows_node = port
            .load_balancer_source_ranges
            .iter()
            .any(|range| ctx.node_ips.iter().any(|ip| range.contains(ip)));
        if allows_node {
            rules.push(format!(
                "{ip} saddr {} goto {ext}",
                one_or_set(&port.load_balancer_ips)
            ));
        }
        // Other sources fall through without DNAT and meet firewall-ips in the filter hooks.
        chains.push((fw, rules));
    }
    chains.extend(endpoint_chains);
    out.chains = chains;
    let mut ips: Vec<IpAddr> = sets
        .cluster
        .iter()
        .chain(&sets.local)
        .map(|ep| ep.ip)
        .collect();
    ips.sort_unstable();
    ips.dedup();
    out.endpoint_ips = ips;
    out
}

/// `dnat ip to 10.0.0.1:80` or `dnat ip6 to [fd00::1]:80`, with the protocol match nft needs
/// before a port mapping.
fn dnat(port: &ServicePort, endpoint: &Endpoint, ctx: &NftContext) -> String {
    format!(
        "meta l4proto {} dnat {} to {}",
        port.key.protocol.as_str(),
        family_word(ctx.family),
        endpoint.address()
    )
}

/// The rules of a policy chain towards its endpoints. With ClientIP affinity each endpoint gets
/// a chain that refreshes its dynamic set (the source address, with the affinity timeout) and
/// DNATs, and the policy chain first sends known sources back to their endpoint.
fn load_balance(
    port: &ServicePort,
    endpoints: &[&Endpoint],
    ctx: &NftContext,
    endpoint_chains: &mut Vec<(String, Vec<String>)>,
    sets: &mut Vec<(String, String)>,
) -> Vec<String> {
    let ip = family_word(ctx.family);
    let count = endpoints.len();
    let choice = |index: usize| {
        if index + 1 < count {
            format!("numgen random mod {} 0 ", count - index)
        } else {
            String::new()
        }
    };
    let Some(timeout) = port.affinity_timeout_seconds else {
        return endpoints
            .iter()
            .enumerate()
            .map(|(index, endpoint)| format!("{}{}", choice(index), dnat(port, endpoint, ctx)))
            .collect();
    };
    let mut sticky = Vec::new();
    let mut random = Vec::new();
    for (index, endpoint) in endpoints.iter().enumerate() {
        let sep = sep_chain(&port.key, endpoint);
        let hash = sep.trim_start_matches("PORTICO-SEP-");
        let chain = format!("endpoint-{hash}");
        let set = format!("affinity-{hash}");
        if !endpoint_chains.iter().any(|(name, _)| *name == chain) {
            endpoint_chains.push((
                chain.clone(),
                vec![
                    format!("update @{set} {{ {ip} saddr }}"),
                    dnat(port, endpoint, ctx),
                ],
            ));
            let mut body = String::new();
            let _ = write!(
                body,
                "type {}; flags dynamic,timeout; timeout {timeout}s;",
                addr_type(ctx.family)
            );
            sets.push((set.clone(), body));
        }
        sticky.push(format!("{ip} saddr @{set} goto {chain}"));
        random.push(format!("{}goto {chain}", choice(index)));
    }
    sticky.extend(random);
    sticky
}
