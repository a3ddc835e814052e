//! A policy chain's rules towards its endpoints: ClientIP affinity checks, then one rule per
//! endpoint with kube-proxy's `statistic` probabilities, each a jump to the endpoint's SEP
//! chain (this node's endpoints: hairpin mark, DNAT) or a DNAT in place (other nodes').

use super::{RenderContext, host};
use crate::dataplane::{Endpoint, ServicePort};
use crate::iptables::names;

/// An endpoint gets a SEP chain when it may be the very pod that sent the packet.
fn may_hairpin(endpoint: &Endpoint, node_name: &str) -> bool {
    endpoint
        .node_name
        .as_deref()
        .is_none_or(|node| node == node_name)
}

/// The affinity and statistic rules of a policy chain; SEP chains it needs are appended to
/// `sep_chains` once each (SVC and SVL share them).
pub(super) fn load_balance(
    port: &ServicePort,
    endpoints: &[&Endpoint],
    ctx: &RenderContext,
    port_name: &str,
    sep_chains: &mut Vec<(String, Vec<String>)>,
) -> Vec<String> {
    let proto = port.key.protocol.as_str();
    let mut targets = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        let address = endpoint.address();
        let hairpin = may_hairpin(endpoint, &ctx.node_name);
        // The SEP name also names the affinity list; hashing is skipped when neither needs it.
        let sep = if hairpin || port.affinity_timeout_seconds.is_some() {
            names::sep_chain(&port.key, endpoint)
        } else {
            String::new()
        };
        let set_affinity = port
            .affinity_timeout_seconds
            .map(|_| format!("-m recent --name {sep} --set "))
            .unwrap_or_default();
        // Rules read `{head}{matches}{tail}`: the statistic and affinity matches go between
        // `-p`/comment and `-m <proto>`, where iptables-save prints them.
        let to_endpoint = if ctx.endpoint_comments {
            format!("{} ", names::comment(&format!("{port_name} -> {address}")))
        } else {
            String::new()
        };
        let dnat_tail = format!("-m {proto} -j DNAT --to-destination {address}");
        if hairpin {
            if !sep_chains.iter().any(|(name, _)| *name == sep) {
                let named = if ctx.endpoint_comments {
                    format!("{} ", names::comment(port_name))
                } else {
                    String::new()
                };
                let rules = vec![
                    format!("-s {} {named}-j {}", host(&endpoint.ip), names::MARK_MASQ),
                    format!("-p {proto} {named}{set_affinity}{dnat_tail}"),
                ];
                sep_chains.push((sep.clone(), rules));
            }
            targets.push(Target {
                recent_name: sep.clone(),
                head: to_endpoint,
                set_affinity: String::new(),
                tail: format!("-j {sep}"),
            });
        } else {
            targets.push(Target {
                recent_name: sep,
                head: format!("-p {proto} {to_endpoint}"),
                set_affinity,
                tail: dnat_tail,
            });
        }
    }
    let mut rules = Vec::new();
    if let Some(timeout) = port.affinity_timeout_seconds {
        for target in &targets {
            rules.push(format!(
                "{}-m recent --name {} --rcheck --seconds {timeout} --reap {}",
                target.head, target.recent_name, target.tail
            ));
        }
    }
    let count = targets.len();
    for (index, target) in targets.iter().enumerate() {
        let statistic = if index + 1 < count {
            format!(
                "-m statistic --mode random --probability {:.10} ",
                1.0 / (count - index) as f64
            )
        } else {
            String::new()
        };
        rules.push(format!(
            "{}{statistic}{}{}",
            target.head, target.set_affinity, target.tail
        ));
    }
    rules
}

/// One endpoint's rule in a policy chain: a jump to its SEP chain or a DNAT in place.
struct Target {
    /// The `-m recent` list of the endpoint (its SEP chain's name).
    recent_name: String,
    /// `-p` (DNAT in place only) and the comment (unless a large cluster's), each followed by
    /// a space.
    head: String,
    /// `-m recent --set` for DNAT in place with affinity (a SEP chain sets it itself).
    set_affinity: String,
    tail: String,
}
