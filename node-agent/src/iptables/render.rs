//! The whole rule set of one family: the fixed chains, the dispatch buckets, and every Service
//! port's chains, rendered from scratch (the reference `RenderCache` must always agree with).

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::names;
use super::ruleset::{RuleSet, Table};
use super::service::{LARGE_CLUSTER_ENDPOINTS, RenderContext, ServiceRules, render_service_port};
use crate::dataplane::{DesiredState, IpFamily, NodeContext};

/// A jump from a built-in chain to one of Portico's, inserted once and left in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltinJump {
    pub table: Table,
    pub chain: &'static str,
    /// Matches before the comment, as `iptables -S` prints them.
    pub matches: &'static str,
    /// kube-proxy's comment for the same jump, with Portico for Kubernetes.
    pub comment: &'static str,
    pub target: &'static str,
}

impl BuiltinJump {
    /// The rule spec after `-A <chain> `, exactly as `iptables -S` and iptables-save print it
    /// (the applier finds the jumps that exist by comparing these lines).
    pub fn spec(&self) -> String {
        let comment = names::comment(self.comment);
        if self.matches.is_empty() {
            format!("{comment} -j {}", self.target)
        } else {
            format!("{} {comment} -j {}", self.matches, self.target)
        }
    }
}

const PORTALS: &str = "portico service portals";
const EXTERNAL_PORTALS: &str = "portico externally-visible service portals";
const LB_FIREWALL: &str = "portico load balancer firewall";

const NEW: &str = "-m conntrack --ctstate NEW";

/// kube-proxy's jumps: Service addresses in nat PREROUTING/OUTPUT, masquerade in POSTROUTING,
/// REJECT/DROP and the firewall for new connections in filter.
pub const BUILTIN_JUMPS: &[BuiltinJump] = &[
    BuiltinJump {
        table: Table::Nat,
        chain: "PREROUTING",
        matches: "",
        comment: PORTALS,
        target: names::SERVICES,
    },
    BuiltinJump {
        table: Table::Nat,
        chain: "OUTPUT",
        matches: "",
        comment: PORTALS,
        target: names::SERVICES,
    },
    BuiltinJump {
        table: Table::Nat,
        chain: "POSTROUTING",
        matches: "",
        comment: "portico postrouting rules",
        target: names::POSTROUTING,
    },
    BuiltinJump {
        table: Table::Filter,
        chain: "INPUT",
        matches: NEW,
        comment: EXTERNAL_PORTALS,
        target: names::EXTERNAL_SERVICES,
    },
    BuiltinJump {
        table: Table::Filter,
        chain: "INPUT",
        matches: "",
        comment: "portico health check service ports",
        target: names::NODEPORTS,
    },
    BuiltinJump {
        table: Table::Filter,
        chain: "INPUT",
        matches: NEW,
        comment: LB_FIREWALL,
        target: names::FIREWALL,
    },
    BuiltinJump {
        table: Table::Filter,
        chain: "FORWARD",
        matches: NEW,
        comment: PORTALS,
        target: names::SERVICES,
    },
    BuiltinJump {
        table: Table::Filter,
        chain: "FORWARD",
        matches: NEW,
        comment: EXTERNAL_PORTALS,
        target: names::EXTERNAL_SERVICES,
    },
    BuiltinJump {
        table: Table::Filter,
        chain: "FORWARD",
        matches: NEW,
        comment: LB_FIREWALL,
        target: names::FIREWALL,
    },
    BuiltinJump {
        table: Table::Filter,
        chain: "OUTPUT",
        matches: NEW,
        comment: PORTALS,
        target: names::SERVICES,
    },
    BuiltinJump {
        table: Table::Filter,
        chain: "OUTPUT",
        matches: NEW,
        comment: LB_FIREWALL,
        target: names::FIREWALL,
    },
];

impl RenderContext {
    pub fn new(node: &NodeContext, family: IpFamily, state: &DesiredState) -> Self {
        let endpoints: usize = state
            .ports_of(family)
            .map(|port| port.endpoints.len())
            .sum();
        RenderContext {
            endpoint_comments: endpoints <= LARGE_CLUSTER_ENDPOINTS,
            hairpin_match: true,
            family,
            node_name: node.node_name.clone(),
            node_ips: node.node_ips_of(family),
            pod_cidrs: node.pod_cidrs_of(family),
            nodeport_ips: node.nodeport_ips.as_ref().map(|ips| {
                ips.iter()
                    .filter(|ip| IpFamily::of(ip) == family)
                    .copied()
                    .collect()
            }),
        }
    }
}

/// Renders the rule set of `family` for `state` on `node`.
pub fn render(state: &DesiredState, node: &NodeContext, family: IpFamily) -> RuleSet {
    let ctx = RenderContext::new(node, family, state);
    let mut rendered: Vec<ServiceRules> = state
        .ports_of(family)
        .map(|port| render_service_port(port, &ctx))
        .collect();
    assemble(&ctx, rendered.iter_mut())
}

/// Builds the rule set from the fixed chains and the rendered Service ports (in key order).
/// The chains' rules and the dispatch rules are moved into the set, not copied (at 10,000
/// Services a copy is ~10 MB more at the first sync's peak): what the callers keep of
/// `services` afterwards is names, buckets and filter rules.
pub fn assemble<'a>(
    ctx: &RenderContext,
    services: impl Iterator<Item = &'a mut ServiceRules>,
) -> RuleSet {
    let mut set = fixed_chains(ctx);
    let mut buckets = Buckets::new();
    for service in services {
        for (name, rules) in &mut service.nat_chains {
            set.nat.insert(name.clone(), std::mem::take(rules));
        }
        for dispatch in &mut service.dispatch {
            buckets
                .entry(dispatch.bucket.clone())
                .or_insert_with(|| (dispatch.parent, dispatch.bucket_match.clone()));
            set.nat
                .entry(dispatch.bucket.clone())
                .or_default()
                .push(std::mem::take(&mut dispatch.rule));
        }
        for (chain, rule) in &service.filter {
            set.filter
                .entry((*chain).to_string())
                .or_default()
                .push(rule.clone());
        }
    }
    for parent in [names::SERVICES, names::NODEPORTS] {
        set.nat.insert(
            parent.into(),
            parent_rules(parent, &buckets, ctx.nodeport_ips.as_deref()),
        );
    }
    set
}

/// Dispatch buckets: bucket chain → (parent chain, the match in the parent that selects it).
pub type Buckets = BTreeMap<String, (&'static str, String)>;

/// The chains that do not depend on Services: masquerade marking and the filter entry chains.
pub fn fixed_chains(ctx: &RenderContext) -> RuleSet {
    let mut set = RuleSet::default();
    set.nat.insert(
        names::MARK_MASQ.into(),
        vec![format!("-j MARK --or-mark {}", names::MASQ_MARK)],
    );
    set.nat.insert(
        names::POSTROUTING.into(),
        ctx.hairpin_match
            .then(|| hairpin_rule(ctx.family))
            .into_iter()
            .chain([
                format!("-m mark ! --mark {0}/{0} -j RETURN", names::MASQ_MARK),
                // Cleared so a packet that is encapsulated or re-routed is not masqueraded twice.
                format!("-j MARK --xor-mark {}", names::MASQ_MARK),
                format!(
                    "{} -j MASQUERADE --random-fully",
                    names::comment("portico service traffic requiring SNAT")
                ),
            ])
            .collect(),
    );
    if ctx.pod_cidrs.len() > 1 {
        let mut rules: Vec<String> = ctx
            .pod_cidrs
            .iter()
            .map(|cidr| format!("-s {cidr} -j RETURN"))
            .collect();
        rules.push(format!("-j {}", names::MARK_MASQ));
        set.nat.insert(names::MASQ_NOT_POD.into(), rules);
    }
    for chain in FILTER_CHAINS {
        set.filter.insert(chain.into(), Vec::new());
    }
    set
}

/// Marks for masquerade a connection DNATed to its own source: a pod that reached itself
/// through a Service. kube-proxy does this with `-s <endpoint IP> -j KUBE-MARK-MASQ` in every
/// endpoint's SEP chain; Portico has SEP chains only for this node's endpoints, yet a pod on
/// another node can reach itself through this node (its NodePort under the Local policy sends
/// pod traffic to the SVC chain, which DNATs to remote endpoints in place) and would then get
/// its own packet back with its own address as the source, and drop it. One rule here, after
/// DNAT, covers every endpoint at the cost of a few BPF instructions on the first packet of a
/// connection, where per-endpoint rules (or chains) would grow with the cluster: iptables has
/// no match comparing two fields, so a classic BPF program (xt_bpf) compares the source and
/// destination addresses of the IP header. `--ctstate DNAT` keeps the node's own connections to
/// itself (over `lo`, never DNATed) out. A kernel without xt_bpf gets no such rule (see
/// `Iptables::supports_hairpin_match`).
pub fn hairpin_rule(family: IpFamily) -> String {
    format!(
        "{} {} -j {}",
        hairpin_match(family),
        names::comment("portico hairpin: a pod reached itself through a Service"),
        names::MARK_MASQ
    )
}

/// The matches of `hairpin_rule`: a DNATed connection whose source equals its destination.
pub fn hairpin_match(family: IpFamily) -> String {
    // Offsets of the source and destination addresses in the IP header, in 32-bit words.
    let (source, destination, words) = match family {
        IpFamily::V4 => (12, 16, 1),
        IpFamily::V6 => (8, 24, 4),
    };
    const LOAD_WORD: u32 = 0x20; // BPF_LD | BPF_W | BPF_ABS: A = word at k
    const TAX: u32 = 0x07; // BPF_MISC | BPF_TAX: X = A
    const JUMP_IF_EQUAL_X: u32 = 0x1d; // BPF_JMP | BPF_JEQ | BPF_X
    const RETURN: u32 = 0x06; // BPF_RET | BPF_K
    let mut program: Vec<(u32, u32, u32, u32)> = Vec::new();
    for word in 0..words {
        // Words left after this one, each 4 instructions, then "match": jump past them all.
        let to_no_match = 4 * (words - word - 1) + 1;
        program.push((LOAD_WORD, 0, 0, source + 4 * word));
        program.push((TAX, 0, 0, 0));
        program.push((LOAD_WORD, 0, 0, destination + 4 * word));
        program.push((JUMP_IF_EQUAL_X, 0, to_no_match, 0));
    }
    program.push((RETURN, 0, 0, 1));
    program.push((RETURN, 0, 0, 0));
    let bytecode: Vec<String> = std::iter::once(program.len().to_string())
        .chain(
            program
                .iter()
                .map(|(code, jt, jf, k)| format!("{code} {jt} {jf} {k}")),
        )
        .collect();
    format!(
        "-m conntrack --ctstate DNAT -m bpf --bytecode \"{}\"",
        bytecode.join(",")
    )
}

/// Portico's filter chains, present even when empty so the built-in jumps always have a target.
pub const FILTER_CHAINS: [&str; 4] = [
    names::SERVICES,
    names::EXTERNAL_SERVICES,
    names::NODEPORTS,
    names::FIREWALL,
];

/// The rules of PORTICO-SERVICES or PORTICO-NODEPORTS: one jump per bucket, by bucket name.
/// NodePorts are served on every local address, or only on `nodeport_ips` when given
/// (kube-proxy's `--nodeport-addresses`).
pub fn parent_rules(
    parent: &str,
    buckets: &Buckets,
    nodeport_ips: Option<&[IpAddr]>,
) -> Vec<String> {
    let mut rules: Vec<String> = buckets
        .iter()
        .filter(|(_, (bucket_parent, _))| *bucket_parent == parent)
        .map(|(bucket, (_, bucket_match))| format!("{bucket_match} -j {bucket}"))
        .collect();
    if parent == names::SERVICES {
        // Last, so that Service addresses that are also local addresses match first.
        let comment = names::comment(
            "portico service nodeports; NOTE: this must be the last rule in this chain",
        );
        match nodeport_ips {
            None => rules.push(format!(
                "{comment} -m addrtype --dst-type LOCAL -j {}",
                names::NODEPORTS
            )),
            Some(ips) => rules
                .extend(ips.iter().map(|ip| {
                    format!("-d {} {comment} -j {}", host_address(ip), names::NODEPORTS)
                })),
        }
    }
    rules
}

/// An address as a host match (`/32` or `/128`), as iptables-save prints it.
fn host_address(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}/32"),
        IpAddr::V6(v6) => format!("{v6}/128"),
    }
}

#[cfg(test)]
pub(crate) mod tests;
