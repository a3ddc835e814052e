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
use crate::dataplane::fingerprint::Fingerprints;
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

/// What one Service port left in the rule set: the fingerprint of the port as rendered (to see
/// whether it changed), its chains' names and the bucket of each of its dispatch rules. The rules
/// themselves are held once, in the rule set: a changed port's old dispatch rules are found there
/// by position.
#[derive(Debug)]
struct Entry {
    fingerprint: u128,
    nat_chains: Vec<String>,
    /// In the order of the port's dispatch rules (a port may have several in one bucket).
    dispatch_buckets: Vec<String>,
    filter: Vec<(&'static str, String)>,
}

impl Entry {
    fn new(fingerprint: u128, rules: ServiceRules) -> Self {
        Entry {
            fingerprint,
            nat_chains: rules.nat_chains.into_iter().map(|(name, _)| name).collect(),
            dispatch_buckets: rules.dispatch.into_iter().map(|d| d.bucket).collect(),
            filter: rules.filter,
        }
    }

    fn rules_in(&self, bucket: &str) -> usize {
        self.dispatch_buckets
            .iter()
            .filter(|b| *b == bucket)
            .count()
    }
}

/// A port whose rules changed: what it left before (None: it is new) and its new rules (None:
/// it is gone).
type Changed = (ServicePortKey, Option<Entry>, Option<(u128, ServiceRules)>);

/// Renders a family's rule set incrementally.
#[derive(Debug)]
pub struct RenderCache {
    ctx: RenderContext,
    rendered: BTreeMap<ServicePortKey, Entry>,
    set: RuleSet,
    buckets: Buckets,
    /// bucket → the ports with a rule in it (its rules are in this order).
    members: BTreeMap<String, BTreeSet<ServicePortKey>>,
    initialized: bool,
    changes: Changes,
    hairpin_match: bool,
    fingerprints: Fingerprints,
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
            fingerprints: Fingerprints::default(),
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
        let mut cached = self.rendered.iter().peekable();
        let mut removed: Vec<ServicePortKey> = Vec::new();
        let mut updated: Vec<(&ServicePort, u128)> = Vec::new();
        for port in state.ports_of(self.ctx.family) {
            while let Some((key, _)) = cached.next_if(|(key, _)| **key < port.key) {
                removed.push(key.clone());
            }
            let fingerprint = self.fingerprints.of(port);
            match cached.next_if(|(key, _)| **key == port.key) {
                Some((_, entry)) if entry.fingerprint == fingerprint => {}
                _ => updated.push((port, fingerprint)),
            }
        }
        removed.extend(cached.map(|(key, _)| key.clone()));
        let mut changed: Vec<Changed> = Vec::new();
        for key in removed {
            if let Some(old) = self.rendered.remove(&key) {
                changed.push((key, Some(old), None));
            }
        }
        for (port, fingerprint) in updated {
            let rules = render_service_port(port, &self.ctx);
            let old = self.rendered.remove(&port.key);
            changed.push((port.key.clone(), old, Some((fingerprint, rules))));
        }
        if !changed.is_empty() {
            self.patch(changed);
        }
        &self.set
    }

    fn rebuild(&mut self, state: &DesiredState) {
        let mut before = self.set.chain_names();
        let mut rendered: Vec<(&ServicePort, ServiceRules)> = state
            .ports_of(self.ctx.family)
            .map(|port| (port, render_service_port(port, &self.ctx)))
            .collect();
        self.set = assemble(&self.ctx, rendered.iter_mut().map(|(_, rules)| rules));
        self.buckets.clear();
        self.members.clear();
        for (port, rules) in &rendered {
            for dispatch in &rules.dispatch {
                self.buckets
                    .entry(dispatch.bucket.clone())
                    .or_insert_with(|| (dispatch.parent, dispatch.bucket_match.clone()));
                self.members
                    .entry(dispatch.bucket.clone())
                    .or_default()
                    .insert(port.key.clone());
            }
        }
        self.rendered = rendered
            .into_iter()
            .map(|(port, rules)| {
                let fingerprint = self.fingerprints.of(port);
                (port.key.clone(), Entry::new(fingerprint, rules))
            })
            .collect();
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

    fn patch(&mut self, mut changed: Vec<Changed>) {
        let mut gone_chains: BTreeSet<String> = BTreeSet::new();
        let mut dirty_buckets: BTreeSet<String> = BTreeSet::new();
        for (_, old, new) in &changed {
            if let Some(old) = old {
                gone_chains.extend(old.nat_chains.iter().cloned());
                dirty_buckets.extend(old.dispatch_buckets.iter().cloned());
            }
            if let Some((_, rules)) = new {
                dirty_buckets.extend(rules.dispatch.iter().map(|d| d.bucket.clone()));
            }
        }
        // Each dirty bucket anew: unchanged members keep their rules (taken from the chain by
        // position, the members being in key order), changed ones bring their new rules.
        let changed_keys: BTreeMap<&ServicePortKey, usize> = (changed.iter().enumerate())
            .map(|(i, (key, _, _))| (key, i))
            .collect();
        let mut bucket_rules: Vec<(String, Vec<String>)> = Vec::new();
        for bucket in &dirty_buckets {
            let old_chain = self.set.nat.get(bucket).map(Vec::as_slice).unwrap_or(&[]);
            let mut offset = 0;
            let mut kept: BTreeMap<&ServicePortKey, &[String]> = BTreeMap::new();
            for key in self.members.get(bucket).into_iter().flatten() {
                let count = match changed_keys.get(key) {
                    Some(i) => changed[*i].1.as_ref().map_or(0, |old| old.rules_in(bucket)),
                    None => self.rendered[key].rules_in(bucket),
                };
                let end = (offset + count).min(old_chain.len());
                if !changed_keys.contains_key(key) {
                    kept.insert(key, &old_chain[offset..end]);
                }
                offset = end;
            }
            let mut new_rules: BTreeMap<&ServicePortKey, Vec<String>> = kept
                .into_iter()
                .map(|(key, rules)| (key, rules.to_vec()))
                .collect();
            for (key, _, new) in &changed {
                let Some((_, rules)) = new else { continue };
                let in_bucket: Vec<String> = (rules.dispatch.iter())
                    .filter(|d| d.bucket == *bucket)
                    .map(|d| d.rule.clone())
                    .collect();
                if !in_bucket.is_empty() {
                    new_rules.insert(key, in_bucket);
                }
            }
            bucket_rules.push((bucket.clone(), new_rules.into_values().flatten().collect()));
        }
        // Membership follows the new rules.
        for (key, old, new) in &changed {
            for bucket in old.iter().flat_map(|old| old.dispatch_buckets.iter()) {
                if let Some(members) = self.members.get_mut(bucket) {
                    members.remove(key);
                }
            }
            for dispatch in new.iter().flat_map(|(_, rules)| rules.dispatch.iter()) {
                self.buckets
                    .entry(dispatch.bucket.clone())
                    .or_insert_with(|| (dispatch.parent, dispatch.bucket_match.clone()));
                self.members
                    .entry(dispatch.bucket.clone())
                    .or_default()
                    .insert(key.clone());
            }
        }
        let mut new_chains: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, _, new) in changed.iter_mut() {
            let Some((fingerprint, mut rules)) = new.take() else {
                continue;
            };
            for (name, chain_rules) in &mut rules.nat_chains {
                new_chains.insert(name.clone(), std::mem::take(chain_rules));
            }
            self.rendered
                .insert(key.clone(), Entry::new(fingerprint, rules));
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
        for (bucket, rules) in bucket_rules {
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
        for entry in self.rendered.values() {
            for (chain, rule) in &entry.filter {
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

#[cfg(test)]
mod tests;
