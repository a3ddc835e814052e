//! What the announcer tells people: a log line for every ownership change with its reason, a
//! `NodeAnnouncing` Event on the Services from the node that takes a VIP over, and a
//! `NotAnnounced` Warning when no `L2Announcement` covers a VIP's pool.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::Store;
use portico_api::keys::reason::{NODE_ANNOUNCING, NOT_ANNOUNCED};

use super::plan::{Outcome, VipPlan};

/// A log line for every ownership change, with its reason, and an Event on the Services from
/// the node that takes a VIP over; a Warning for a VIP no `L2Announcement` covers.
pub async fn report_changes(
    plans: &[VipPlan],
    owners: &mut BTreeMap<IpAddr, Option<String>>,
    uncovered: &mut BTreeSet<IpAddr>,
    me: &str,
    reporter: bool,
    recorder: &Recorder,
    services: &Store<Service>,
) {
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
        let reason = match (&vip.outcome, &from) {
            (Outcome::NotCovered, _) => "no L2Announcement covers the pool",
            (Outcome::NoEligibleNode, _) => "no eligible node is alive",
            (Outcome::Owner { .. }, None) => "first owner",
            (Outcome::Owner { .. }, Some(_)) => "the owner changed (membership or eligibility)",
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
