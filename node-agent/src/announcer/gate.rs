//! The takeover gate: this node starts announcing a VIP only once its dataplane has synced the
//! state the announcer's plan came from, so that it never attracts a VIP's traffic with rules
//! older than what it decided on (the Service's endpoints just changed, and the proxier, which
//! batches changes for up to `--min-sync-period`, has not written them yet).
//!
//! ```text
//!   each pass: per VIP, the rule-relevant inputs (its Services' and their slices' views)
//!     changed since the last pass, or first seen ─▶ required = the stores' generation now
//!   owned by this node ─▶ already announced: keep announcing (never retract for the gate)
//!                      ─▶ else announce when the proxier's synced generation >= required
//! ```
//!
//! Only a change of the VIP's own inputs raises what it waits for: a runner-up whose rules for
//! the VIP have long been in place takes it over at once after a crash or a link loss, however
//! busy the rest of the cluster is. `--proxy-mode off` leaves the rules to another proxy: the
//! gate is open.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use kube::runtime::reflector::{ObjectRef, Store};

use super::plan::VipPlan;
use crate::view::{ServiceView, SliceView};

/// How far the dataplane has got, as the gate reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synced {
    /// `--proxy-mode off`: the rules are another proxy's; nothing to wait for.
    NotGated,
    /// The stores' generation the proxier's last successful sync covered; None before its first.
    Upto(Option<u64>),
}

impl Synced {
    fn covers(self, required: u64) -> bool {
        match self {
            Synced::NotGated => true,
            Synced::Upto(synced) => synced.is_some_and(|synced| synced >= required),
        }
    }
}

/// One VIP as the gate sees it on a pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vip<I> {
    pub ip: IpAddr,
    /// What the dataplane's rules for the VIP are made of (compared with the last pass).
    pub inputs: I,
    /// The plan makes this node its owner.
    pub owned: bool,
}

/// The gate's answer for a pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// The owned VIPs to announce.
    pub announce: BTreeSet<IpAddr>,
    /// Owned VIPs held back, with the generation the dataplane must reach first.
    pub held: BTreeMap<IpAddr, u64>,
}

impl Decision {
    /// `owned` (VIPs per interface) less the VIPs held back; interfaces left without one go.
    pub fn announced(
        &self,
        mut owned: BTreeMap<String, BTreeSet<IpAddr>>,
    ) -> BTreeMap<String, BTreeSet<IpAddr>> {
        for vips in owned.values_mut() {
            vips.retain(|vip| self.announce.contains(vip));
        }
        owned.retain(|_, vips| !vips.is_empty());
        owned
    }
}

struct Tracked<I> {
    inputs: I,
    /// The stores' generation when `inputs` were last seen to change.
    required: u64,
    announced: bool,
}

/// What the gate remembers between passes: every VIP of the plan, owned or not (a runner-up
/// must know how long its rules have been right before it ever owns the VIP).
pub struct Gate<I> {
    vips: BTreeMap<IpAddr, Tracked<I>>,
}

impl<I> Default for Gate<I> {
    fn default() -> Self {
        Gate {
            vips: BTreeMap::new(),
        }
    }
}

impl<I: PartialEq> Gate<I> {
    /// One pass: `vips` read from the stores, then `seen` (`Generation::seen`), and what the
    /// dataplane has synced. VIPs no longer in `vips` are forgotten.
    pub fn update(&mut self, vips: Vec<Vip<I>>, seen: u64, synced: Synced) -> Decision {
        let mut previous = std::mem::take(&mut self.vips);
        let mut decision = Decision::default();
        for vip in vips {
            let mut tracked = match previous.remove(&vip.ip) {
                Some(tracked) if tracked.inputs == vip.inputs => tracked,
                Some(tracked) => Tracked {
                    inputs: vip.inputs,
                    required: seen,
                    announced: tracked.announced,
                },
                None => Tracked {
                    inputs: vip.inputs,
                    required: seen,
                    announced: false,
                },
            };
            tracked.announced = vip.owned && (tracked.announced || synced.covers(tracked.required));
            if tracked.announced {
                decision.announce.insert(vip.ip);
            } else if vip.owned {
                decision.held.insert(vip.ip, tracked.required);
            }
            self.vips.insert(vip.ip, tracked);
        }
        decision
    }
}

/// The views the dataplane renders a VIP's rules from: its Services' and their slices'.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipInputs {
    services: Vec<Option<Arc<ServiceView>>>,
    slices: Vec<Arc<SliceView>>,
}

/// Each plan's VIP with its inputs, and whether `me` owns it. One pass over the slices.
pub fn vips_of(
    plans: &[VipPlan],
    me: &str,
    services: &Store<ServiceView>,
    slices: &[Arc<SliceView>],
) -> Vec<Vip<VipInputs>> {
    let wanted: BTreeSet<(&str, &str)> = plans
        .iter()
        .flat_map(|plan| &plan.services)
        .map(|key| (key.namespace.as_str(), key.name.as_str()))
        .collect();
    let mut by_service: HashMap<(&str, &str), Vec<Arc<SliceView>>> = HashMap::new();
    for slice in slices {
        let Some(service) = slice.service.as_deref() else {
            continue;
        };
        if let Some(key) = wanted.get(&(&*slice.namespace, service)) {
            by_service.entry(*key).or_default().push(slice.clone());
        }
    }
    plans
        .iter()
        .map(|plan| {
            let mut inputs = VipInputs {
                services: Vec::new(),
                slices: Vec::new(),
            };
            for key in &plan.services {
                let reference = ObjectRef::new(&key.name).within(&key.namespace);
                inputs.services.push(services.get(&reference));
                let mut owned = by_service
                    .get(&(key.namespace.as_str(), key.name.as_str()))
                    .cloned()
                    .unwrap_or_default();
                owned.sort_by(|a, b| a.name.cmp(&b.name));
                inputs.slices.extend(owned);
            }
            Vip {
                ip: plan.ip,
                inputs,
                owned: plan.owner() == Some(me),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
