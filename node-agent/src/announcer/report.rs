//! What the announcer tells people: a log line for every ownership change with its reason, a
//! `NodeAnnouncing` Event on the Services from the node that takes a VIP over, and a
//! `NotAnnounced` Warning when no `L2Announcement` covers a VIP's pool; and
//! `portico_agent_l2_ownership_changes_total{reason}` counts every change this node saw.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::Store;
use portico_api::keys::reason::{NODE_ANNOUNCING, NOT_ANNOUNCED};

use super::plan::{Outcome, VipPlan};
use crate::metrics::{AnnouncerMetrics, OwnershipLabels};

/// What the report needs besides the plans.
pub struct Reporting<'a> {
    pub me: &'a str,
    /// Whether this node writes the Warnings (one node does, not every node).
    pub reporter: bool,
    /// The nodes the membership holds alive (a previous owner missing from it left).
    pub alive: &'a BTreeSet<String>,
    pub recorder: &'a Recorder,
    pub services: &'a Store<Service>,
    pub metrics: &'a AnnouncerMetrics,
}

/// Why a VIP's owner changed, as the metric's `reason` label.
pub fn change_reason(
    outcome: &Outcome,
    from: Option<&str>,
    alive: &BTreeSet<String>,
) -> &'static str {
    match (outcome, from) {
        (Outcome::NotCovered, _) => "not_covered",
        (Outcome::NoEligibleNode, _) => "no_eligible_node",
        (Outcome::Owner { .. }, None) => "first_owner",
        (Outcome::Owner { .. }, Some(previous)) if !alive.contains(previous) => "owner_left",
        (Outcome::Owner { .. }, Some(_)) => "eligibility",
    }
}

/// A log line for every ownership change, with its reason, and an Event on the Services from
/// the node that takes a VIP over; a Warning for a VIP no `L2Announcement` covers.
pub async fn report_changes(
    plans: &[VipPlan],
    owners: &mut BTreeMap<IpAddr, Option<String>>,
    uncovered: &mut BTreeSet<IpAddr>,
    ctx: &Reporting<'_>,
) {
    let (me, reporter, recorder, services) = (ctx.me, ctx.reporter, ctx.recorder, ctx.services);
    let current: BTreeSet<IpAddr> = plans.iter().map(|p| p.ip).collect();
    owners.retain(|ip, _| current.contains(ip));
    uncovered.retain(|ip| current.contains(ip));
    for vip in plans {
        let owner = vip.owner().map(str::to_owned);
        let previous = owners.insert(vip.ip, owner.clone());
        if previous.as_ref() == Some(&owner) {
            continue;
        }
        let from = previous.flatten();
        let label = change_reason(&vip.outcome, from.as_deref(), ctx.alive);
        ctx.metrics
            .ownership_changes
            .get_or_create(&OwnershipLabels { reason: label })
            .inc();
        let reason = match label {
            "not_covered" => "no L2Announcement covers the pool",
            "no_eligible_node" => "no eligible node is alive",
            "first_owner" => "first owner",
            "owner_left" => "the owner left the membership (stopped or unreachable)",
            _ => "eligibility changed (node selection, readiness, local endpoints or preference)",
        };
        tracing::info!(vip = %vip.ip, pool = %vip.pool, from = ?from, to = ?owner, reason, "VIP owner");
        let note = match &vip.outcome {
            Outcome::Owner { node, .. } if node == me => Some((
                EventType::Normal,
                NODE_ANNOUNCING,
                format!("node {me} announces {} ({reason})", vip.ip),
            )),
            Outcome::NotCovered if uncovered.insert(vip.ip) && reporter => Some((
                EventType::Warning,
                NOT_ANNOUNCED,
                format!(
                    "{} is in AddressPool {} but no L2Announcement covers that pool: nobody answers ARP/NDP for it",
                    vip.ip, vip.pool
                ),
            )),
            _ => None,
        };
        let Some((type_, reason, note)) = note else {
            continue;
        };
        for key in &vip.services {
            let service = services.state().into_iter().find(|s| {
                s.metadata.namespace.as_deref() == Some(&key.namespace)
                    && s.metadata.name.as_deref() == Some(&key.name)
            });
            let Some(service) = service else { continue };
            let event = Event {
                type_,
                reason: reason.into(),
                note: Some(note.clone()),
                action: "Announce".into(),
                secondary: None,
            };
            if let Err(e) = recorder.publish(&event, &service.object_ref(&())).await {
                tracing::warn!(error = %e, "could not publish an Event");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_names_why_the_owner_moved() {
        let alive = BTreeSet::from(["node-b".to_string()]);
        let owner = Outcome::Owner {
            node: "node-b".into(),
            interfaces: Default::default(),
        };
        assert_eq!(change_reason(&owner, None, &alive), "first_owner");
        assert_eq!(change_reason(&owner, Some("node-a"), &alive), "owner_left");
        let alive = BTreeSet::from(["node-a".to_string(), "node-b".to_string()]);
        assert_eq!(change_reason(&owner, Some("node-a"), &alive), "eligibility");
        assert_eq!(
            change_reason(&Outcome::NotCovered, Some("node-a"), &alive),
            "not_covered"
        );
        assert_eq!(
            change_reason(&Outcome::NoEligibleNode, None, &alive),
            "no_eligible_node"
        );
    }
}
