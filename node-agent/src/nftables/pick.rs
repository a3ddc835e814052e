//! The endpoint maps and the shared pick chains that DNAT through them (why: `service.rs`'s
//! module doc). A policy chain with up to 16 endpoints and no affinity ends in `goto
//! pick-cluster-endpoint` (or `pick-local-endpoint`); each of its n endpoints has one element
//! per destination that reaches the chain, under bucket T(n) + i.
//!
//! ```text
//!   pick-cluster-endpoint: for n in 1..=16
//!       dnat to ip daddr . meta l4proto . th dport . numgen random mod n offset T(n) map @cluster-ip-endpoints
//!     then for n in 1..=16
//!       dnat to meta l4proto . th dport . numgen random mod n offset T(n) map @cluster-port-endpoints
//! ```

use std::net::IpAddr;

use super::names;
use super::service::{Element, family_word};
use crate::dataplane::{Endpoint, IpFamily, ServicePort};

/// Endpoint lists up to this long are chosen through the endpoint maps (one pick rule per
/// length and key kind, so the pick chains stay short); longer ones keep a rule per endpoint.
pub const MAPPED_ENDPOINTS_MAX: usize = 16;

/// The first bucket of a list of `count` endpoints, T(count) = count(count-1)/2: lists of each
/// length own disjoint buckets (1: 0; 2: 1-2; 3: 3-5; ...), so one map serves every length.
pub fn bucket_offset(count: usize) -> usize {
    count * count.saturating_sub(1) / 2
}

/// The addresses (address . protocol . port keys) and node port (protocol . port key) whose
/// packets reach a policy chain.
#[derive(Default)]
pub struct Entries {
    pub addrs: Vec<IpAddr>,
    pub node_port: Option<u16>,
}

/// A pick chain and its two endpoint maps.
#[derive(Clone, Copy)]
pub struct Pick {
    pub chain: &'static str,
    pub ip_map: &'static str,
    pub port_map: &'static str,
}

impl Pick {
    pub const CLUSTER: Pick = Pick {
        chain: names::PICK_CLUSTER,
        ip_map: names::CLUSTER_IP_ENDPOINTS,
        port_map: names::CLUSTER_PORT_ENDPOINTS,
    };
    pub const LOCAL: Pick = Pick {
        chain: names::PICK_LOCAL,
        ip_map: names::LOCAL_IP_ENDPOINTS,
        port_map: names::LOCAL_PORT_ENDPOINTS,
    };
}

/// One element per (entry, endpoint): the entry's key and the endpoint's bucket → its address
/// and port.
pub fn mapped_elements(
    port: &ServicePort,
    endpoints: &[&Endpoint],
    pick: Pick,
    entries: &Entries,
    elements: &mut Vec<Element>,
) {
    let proto = port.key.protocol.as_str();
    let offset = bucket_offset(endpoints.len());
    for (index, endpoint) in endpoints.iter().enumerate() {
        let bucket = offset + index;
        let target = format!("{} . {}", endpoint.ip, endpoint.port);
        for addr in &entries.addrs {
            elements.push((
                pick.ip_map,
                format!("{addr} . {proto} . {} . {bucket}", port.port),
                target.clone(),
            ));
        }
        if let Some(node_port) = entries.node_port {
            elements.push((
                pick.port_map,
                format!("{proto} . {node_port} . {bucket}"),
                target,
            ));
        }
    }
}

/// The rules of a pick chain: per list length, the lookup by address . protocol . port, then
/// (for node ports) by protocol . port. A lookup that finds nothing ends its rule, so exactly
/// the rule of the Service's length and key kind DNATs.
pub fn pick_rules(pick: Pick, family: IpFamily) -> Vec<String> {
    let ip = family_word(family);
    let mut rules = Vec::new();
    for (key, map) in [
        (format!("{ip} daddr . meta l4proto . th dport"), pick.ip_map),
        ("meta l4proto . th dport".to_string(), pick.port_map),
    ] {
        for count in 1..=MAPPED_ENDPOINTS_MAX {
            rules.push(format!(
                "dnat {ip} to {key} . numgen random mod {count} offset {} map @{map}",
                bucket_offset(count)
            ));
        }
    }
    rules
}
