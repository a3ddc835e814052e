//! Incremental rendering: the rule set is kept between syncs and patched for the Service ports
//! whose desired state changed, and the chains whose rules changed are recorded, so a partial
//! sync costs what the change costs rather than what the cluster costs.
//!
//! ```text
//!   DesiredState ─▶ compare each port with the cached one ─▶ re-render changed ports
//!        ─▶ replace their chains, rebuild the buckets they left or joined, the parents, filter
//!        ─▶ RuleSet (equal to render() of the same state) + the changed chain names
//! ```

use std::collections::{BTreeMap, BTreeSet};

use super::names;
use super::render::{Buckets, FILTER_CHAINS, assemble, parent_rules};
use super::ruleset::{ChainNames, RuleSet, Table};
use super::service::{RenderContext, ServiceRules, render_service_port};
use crate::dataplane::{DesiredState, IpFamily, NodeContext, ServicePort, ServicePortKey};

/// What changed since the last `take_changes`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Everything was rendered anew (first render, or the node's addresses or pod CIDRs
    /// changed): `chains` then holds every chain before and after.
    pub rebuilt: bool,
    /// Chains whose rules changed, appeared or went away.
    pub chains: ChainNames,
}

/// Renders a family's rule set incrementally.
#[derive(Debug)]
pub struct RenderCache {
    ctx: RenderContext,
    rendered: BTreeMap<ServicePortKey, (ServicePort, ServiceRules)>,
    set: RuleSet,
    buckets: Buckets,
    /// bucket → the ports with a rule in it.
    members: BTreeMap<String, BTreeSet<ServicePortKey>>,
    initialized: bool,
    changes: Changes,
    hairpin_match: bool,
}

impl RenderCache {
    pub fn new(node: &NodeContext, family: IpFamily) -> Self {
        RenderCache {
            ctx: RenderContext::new(node, family, &DesiredState::default()),
            rendered: BTreeMap::new(),
            set: RuleSet::default(),
            buckets: Buckets::new(),
            members: BTreeMap::new(),
            initialized: false,
            changes: Changes::default(),
            hairpin_match: true,
        }
    }

    pub fn family(&self) -> IpFamily {
        self.ctx.family
    }

    /// The rule set of the last render.
    pub fn rule_set(&self) -> &RuleSet {
        &self.set
    }

    /// The changes accumulated since the last call.
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    /// Whether the kernel can load the hairpin rule's match (`RenderContext::hairpin_match`);
    /// the next render takes it in.
    pub fn set_hairpin_match(&mut self, supported: bool) {
        self.hairpin_match = supported;
    }

    /// Renders `state` for `node`; equal to `render::render(state, node, family)`.
    pub fn render(&mut self, state: &DesiredState, node: &NodeContext) -> &RuleSet {
        // A different context (node addresses, pod CIDRs, crossing the large-cluster threshold)
        // changes rules of every port: render everything anew.
        let mut ctx = RenderContext::new(node, self.ctx.family, state);
        ctx.hairpin_match = self.hairpin_match;
        if !self.initialized || ctx != self.ctx {
            self.ctx = ctx;
            self.rebuild(state);
            return &self.set;
        }
        // Both maps are sorted by key: walk them side by side, touching only what changed.
        let mut changed: Vec<(ServicePortKey, Option<ServiceRules>, bool)> = Vec::new();
        let mut cached = self.rendered.iter().peekable();
        let mut removed: Vec<ServicePortKey> = Vec::new();
        let mut updated: Vec<&ServicePort> = Vec::new();
        for port in state.ports_of(self.ctx.family) {
            while let Some((key, _)) = cached.next_if(|(key, _)| **key < port.key) {
                removed.push(key.clone());
            }
            match cached.next_if(|(key, _)| **key == port.key) {
                Some((_, (cached_port, _))) if cached_port == port => {}
                _ => updated.push(port),
            }
        }
        removed.extend(cached.map(|(key, _)| key.clone()));
        for key in removed {
            if let Some((_, rules)) = self.rendered.remove(&key) {
                changed.push((key, Some(rules), false));
            }
        }
        for port in updated {
            let rules = render_service_port(port, &self.ctx);
            let old = self
                .rendered
                .insert(port.key.clone(), (port.clone(), rules));
            changed.push((port.key.clone(), old.map(|(_, rules)| rules), true));
        }
        if !changed.is_empty() {
            self.patch(&changed);
        }
        &self.set
    }

    fn rebuild(&mut self, state: &DesiredState) {
        let mut before = self.set.chain_names();
        self.rendered = state
            .ports_of(self.ctx.family)
            .map(|port| {
                (
                    port.key.clone(),
                    (port.clone(), render_service_port(port, &self.ctx)),
                )
            })
            .collect();
        self.set = assemble(&self.ctx, self.rendered.values().map(|(_, rules)| rules));
        for (_, rules) in self.rendered.values_mut() {
            drop_chain_rules(rules);
        }
        self.buckets.clear();
        self.members.clear();
        for (key, (_, rules)) in &self.rendered {
            for dispatch in &rules.dispatch {
                self.buckets
                    .entry(dispatch.bucket.clone())
                    .or_insert_with(|| (dispatch.parent, dispatch.bucket_match.clone()));
                self.members
                    .entry(dispatch.bucket.clone())
                    .or_default()
                    .insert(key.clone());
            }
        }
        let after = self.set.chain_names();
        for table in Table::ALL {
            before.of_mut(table).extend(after.of(table).iter().cloned());
            self.changes
                .chains
                .of_mut(table)
                .extend(before.of(table).iter().cloned());
        }
        self.changes.rebuilt = true;
        self.initialized = true;
    }

    fn patch(&mut self, changed: &[(ServicePortKey, Option<ServiceRules>, bool)]) {
        let mut gone_chains: BTreeSet<String> = BTreeSet::new();
        let mut dirty_buckets: BTreeSet<String> = BTreeSet::new();
        for (key, old, _) in changed {
            let Some(old) = old else { continue };
            gone_chains.extend(old.nat_chains.iter().map(|(name, _)| name.clone()));
            for dispatch in &old.dispatch {
                if let Some(members) = self.members.get_mut(&dispatch.bucket) {
                    members.remove(key);
                }
                dirty_buckets.insert(dispatch.bucket.clone());
            }
        }
        let mut new_chains: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, _, present) in changed {
            if !present {
                continue;
            }
            let rendered = &mut self.rendered.get_mut(key).expect("just rendered").1;
            for (name, chain_rules) in &mut rendered.nat_chains {
                new_chains.insert(name.clone(), std::mem::take(chain_rules));
            }
            let rules = &self.rendered[key].1;
            for dispatch in &rules.dispatch {
                self.buckets
                    .entry(dispatch.bucket.clone())
                    .or_insert_with(|| (dispatch.parent, dispatch.bucket_match.clone()));
                self.members
                    .entry(dispatch.bucket.clone())
                    .or_default()
                    .insert(key.clone());
                dirty_buckets.insert(dispatch.bucket.clone());
            }
        }
        for name in gone_chains
            .iter()
            .filter(|name| !new_chains.contains_key(*name))
        {
            self.set_chain(Table::Nat, name, None);
        }
        for (name, rules) in new_chains {
            self.set_chain(Table::Nat, &name, Some(rules));
        }
        for bucket in dirty_buckets {
            let members = self.members.get(&bucket).cloned().unwrap_or_default();
            let rules: Vec<String> = members
                .iter()
                .flat_map(|key| self.rendered[key].1.dispatch.iter())
                .filter(|dispatch| dispatch.bucket == bucket)
                .map(|dispatch| dispatch.rule.clone())
                .collect();
            if rules.is_empty() {
                self.members.remove(&bucket);
                self.buckets.remove(&bucket);
                self.set_chain(Table::Nat, &bucket, None);
            } else {
                self.set_chain(Table::Nat, &bucket, Some(rules));
            }
        }
        for parent in [names::SERVICES, names::NODEPORTS] {
            let rules = parent_rules(parent, &self.buckets, self.ctx.nodeport_ips.as_deref());
            self.set_chain(Table::Nat, parent, Some(rules));
        }
        // The filter chains hold only Services without (local) endpoints, source-range drops
        // and health check ports: few rules, cheaper to rebuild than to index.
        let mut filter: BTreeMap<&str, Vec<String>> = FILTER_CHAINS
            .iter()
            .map(|chain| (*chain, Vec::new()))
            .collect();
        for (_, rules) in self.rendered.values() {
            for (chain, rule) in &rules.filter {
                filter.entry(chain).or_default().push(rule.clone());
            }
        }
        for (chain, rules) in filter {
            self.set_chain(Table::Filter, chain, Some(rules));
        }
    }

    /// Replaces (or with `None` removes) a chain, recording it when its rules differ.
    fn set_chain(&mut self, table: Table, name: &str, rules: Option<Vec<String>>) {
        let chains = self.set.chains_mut(table);
        let unchanged = chains.get(name) == rules.as_ref();
        if unchanged {
            return;
        }
        match rules {
            Some(rules) => {
                chains.insert(name.to_string(), rules);
            }
            None => {
                chains.remove(name);
            }
        }
        self.changes.chains.of_mut(table).insert(name.to_string());
    }
}

/// The rule set holds every chain's rules; the per-port entry keeps only the chain names (to
/// know what a port leaves behind), so the rules are not held twice.
fn drop_chain_rules(rules: &mut ServiceRules) {
    for (_, chain_rules) in &mut rules.nat_chains {
        *chain_rules = Vec::new();
    }
}
