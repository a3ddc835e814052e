//! The whole rule set of one family: the fixed chains, the dispatch buckets, and every Service
//! port's chains. `RenderCache` keeps each port's rendered rules so that a sync after a small
//! change renders only the ports that changed.

use std::collections::BTreeMap;

use super::names;
use super::ruleset::{RuleSet, Table};
use super::service::{RenderContext, ServiceRules, render_service_port};
use crate::dataplane::{DesiredState, IpFamily, NodeContext, ServicePort, ServicePortKey};

/// A jump from a built-in chain to one of Portico's, inserted once and left in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltinJump {
    pub table: Table,
    pub chain: &'static str,
    /// Matches before `-j`, as `iptables -S` prints them.
    pub matches: &'static str,
    pub target: &'static str,
}

impl BuiltinJump {
    /// The rule spec after `-A <chain> `.
    pub fn spec(&self) -> String {
        if self.matches.is_empty() {
            format!("-j {}", self.target)
        } else {
            format!("{} -j {}", self.matches, self.target)
        }
    }
}

const NEW: &str = "-m conntrack --ctstate NEW";

/// kube-proxy's jumps: Service addresses in nat PREROUTING/OUTPUT, masquerade in POSTROUTING,
/// REJECT/DROP and the firewall for new connections in filter.
pub const BUILTIN_JUMPS: &[BuiltinJump] = &[
    BuiltinJump { table: Table::Nat, chain: "PREROUTING", matches: "", target: names::SERVICES },
    BuiltinJump { table: Table::Nat, chain: "OUTPUT", matches: "", target: names::SERVICES },
    BuiltinJump { table: Table::Nat, chain: "POSTROUTING", matches: "", target: names::POSTROUTING },
    BuiltinJump { table: Table::Filter, chain: "INPUT", matches: NEW, target: names::EXTERNAL_SERVICES },
    BuiltinJump { table: Table::Filter, chain: "INPUT", matches: "", target: names::NODEPORTS },
    BuiltinJump { table: Table::Filter, chain: "INPUT", matches: NEW, target: names::FIREWALL },
    BuiltinJump { table: Table::Filter, chain: "FORWARD", matches: NEW, target: names::SERVICES },
    BuiltinJump { table: Table::Filter, chain: "FORWARD", matches: NEW, target: names::EXTERNAL_SERVICES },
    BuiltinJump { table: Table::Filter, chain: "FORWARD", matches: NEW, target: names::FIREWALL },
    BuiltinJump { table: Table::Filter, chain: "OUTPUT", matches: NEW, target: names::SERVICES },
    BuiltinJump { table: Table::Filter, chain: "OUTPUT", matches: NEW, target: names::FIREWALL },
];

impl RenderContext {
    pub fn new(node: &NodeContext, family: IpFamily) -> Self {
        RenderContext {
            family,
            node_name: node.node_name.clone(),
            node_ips: node.node_ips_of(family),
            pod_cidrs: node.pod_cidrs_of(family),
        }
    }
}

/// Renders the rule set of `family` for `state` on `node`.
pub fn render(state: &DesiredState, node: &NodeContext, family: IpFamily) -> RuleSet {
    let ctx = RenderContext::new(node, family);
    let rendered: Vec<ServiceRules> = state.ports_of(family).map(|port| render_service_port(port, &ctx)).collect();
    assemble(&ctx, rendered.iter())
}

/// Builds the rule set from the fixed chains and the rendered Service ports (in key order).
pub fn assemble<'a>(ctx: &RenderContext, services: impl Iterator<Item = &'a ServiceRules>) -> RuleSet {
    let mut set = RuleSet::default();
    set.nat.insert(names::MARK_MASQ.into(), vec![format!("-j MARK --or-mark {}", names::MASQ_MARK)]);
    set.nat.insert(
        names::POSTROUTING.into(),
        vec![
            format!("-m mark ! --mark {0}/{0} -j RETURN", names::MASQ_MARK),
            // Cleared so a packet that is encapsulated or re-routed is not masqueraded twice.
            format!("-j MARK --xor-mark {}", names::MASQ_MARK),
            "-j MASQUERADE --random-fully".into(),
        ],
    );
    if ctx.pod_cidrs.len() > 1 {
        let mut rules: Vec<String> = ctx.pod_cidrs.iter().map(|cidr| format!("-s {cidr} -j RETURN")).collect();
        rules.push(format!("-j {}", names::MARK_MASQ));
        set.nat.insert(names::MASQ_NOT_POD.into(), rules);
    }
    for chain in [names::SERVICES, names::EXTERNAL_SERVICES, names::NODEPORTS, names::FIREWALL] {
        set.filter.insert(chain.into(), Vec::new());
    }
    // parent → bucket → match that selects the bucket.
    let mut buckets: BTreeMap<&'static str, BTreeMap<String, String>> = BTreeMap::new();
    buckets.entry(names::SERVICES).or_default();
    buckets.entry(names::NODEPORTS).or_default();
    for service in services {
        for (name, rules) in &service.nat_chains {
            set.nat.insert(name.clone(), rules.clone());
        }
        for dispatch in &service.dispatch {
            buckets.entry(dispatch.parent).or_default().entry(dispatch.bucket.clone()).or_insert_with(|| dispatch.bucket_match.clone());
            set.nat.entry(dispatch.bucket.clone()).or_default().push(dispatch.rule.clone());
        }
        for (chain, rule) in &service.filter {
            set.filter.entry((*chain).to_string()).or_default().push(rule.clone());
        }
    }
    for (parent, parent_buckets) in buckets {
        let mut rules: Vec<String> =
            parent_buckets.iter().map(|(bucket, bucket_match)| format!("{bucket_match} -j {bucket}")).collect();
        if parent == names::SERVICES {
            // Last, so that Service addresses that are also local addresses match first.
            rules.push(format!("-m addrtype --dst-type LOCAL -j {}", names::NODEPORTS));
        }
        set.nat.insert(parent.into(), rules);
    }
    set
}

/// Renders incrementally: a port whose desired state equals the one rendered last time reuses
/// its rules. The result always equals `render` of the same state.
#[derive(Debug)]
pub struct RenderCache {
    ctx: RenderContext,
    rendered: BTreeMap<ServicePortKey, (ServicePort, ServiceRules)>,
}

impl RenderCache {
    pub fn new(node: &NodeContext, family: IpFamily) -> Self {
        RenderCache { ctx: RenderContext::new(node, family), rendered: BTreeMap::new() }
    }

    pub fn family(&self) -> IpFamily {
        self.ctx.family
    }

    /// Renders `state`; `node` may differ from last time (then everything is rendered anew).
    pub fn render(&mut self, state: &DesiredState, node: &NodeContext) -> RuleSet {
        let ctx = RenderContext::new(node, self.ctx.family);
        if ctx != self.ctx {
            self.ctx = ctx;
            self.rendered.clear();
        }
        let mut next = BTreeMap::new();
        for port in state.ports_of(self.ctx.family) {
            let entry = match self.rendered.remove(&port.key) {
                Some((cached, rules)) if cached == *port => (cached, rules),
                _ => (port.clone(), render_service_port(port, &self.ctx)),
            };
            next.insert(port.key.clone(), entry);
        }
        self.rendered = next;
        assemble(&self.ctx, self.rendered.values().map(|(_, rules)| rules))
    }
}

#[cfg(test)]
mod tests;
