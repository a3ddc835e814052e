//! The `portico.dev/L2Announced` condition on each Service with a VIP in an `AddressPool`: which
//! node announces each of its VIPs, on which interface, and since when (`lastTransitionTime`),
//! so that `kubectl get svc -o wide` / `kubectl describe svc` answer "who has my IP?".
//!
//! ```text
//!   plans (the same on every node) ─▶ writer_of(service): the owner of its first announced
//!   VIP, else the reporter (first alive node) ─▶ desired_condition (pure) ─▶ compare with the
//!   Service in the store ─▶ server-side apply of that one condition (field manager
//!   `portico-agent`), only on a difference
//! ```
//!
//! Why a condition on the Service rather than a status object per VIP: the user already lists
//! Services, conditions are a map list keyed by `type` (so the agent's apply owns its entry and
//! never touches the controller's fields), and nothing new needs a CRD, RBAC for it, or garbage
//! collection. The owner writes, because only the owner knows which interface the
//! "default interface" is on its node; every agent applies with the same field manager, so the
//! new owner's apply simply replaces the old owner's entry.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use portico_api::ServiceKey;
use portico_api::keys::AGENT_FIELD_MANAGER;
use portico_api::keys::reason::{NODE_ANNOUNCING, NOT_ANNOUNCED};
use serde_json::json;

use super::plan::{Interfaces, Outcome, VipPlan};

/// The condition type the agent owns on Services.
pub const L2_ANNOUNCED: &str = "portico.dev/L2Announced";
/// Reason when the VIP's pool is covered but no node may announce it now.
pub const NO_ELIGIBLE_NODE: &str = "NoEligibleNode";

/// Who this node is, for working out conditions.
pub struct Writer<'a> {
    pub me: &'a str,
    /// Whether this node writes for Services whose VIPs nobody owns (the first alive node).
    pub reporter: bool,
    /// The interface holding this node's address (where "the default interface" is).
    pub default_interface: Option<&'a str>,
}

/// The plans of each Service's VIPs, sorted by address.
pub fn plans_by_service(plans: &[VipPlan]) -> BTreeMap<ServiceKey, Vec<&VipPlan>> {
    let mut by_service: BTreeMap<ServiceKey, Vec<&VipPlan>> = BTreeMap::new();
    for vip in plans {
        for key in &vip.services {
            by_service.entry(key.clone()).or_default().push(vip);
        }
    }
    by_service
}

/// Whether this node writes the condition for a Service whose VIPs have these plans: the owner
/// of its first owned VIP, else (nobody owns any) the reporter. Exactly one node, since every
/// node computes the same plans.
pub fn writes(vips: &[&VipPlan], writer: &Writer) -> bool {
    match vips.iter().find_map(|vip| vip.owner()) {
        Some(owner) => owner == writer.me,
        None => writer.reporter,
    }
}

fn where_announced(node: &str, interfaces: &Interfaces, writer: &Writer) -> String {
    let mut names: Vec<String> = interfaces.named.iter().cloned().collect();
    if interfaces.default {
        names.insert(
            0,
            match (node == writer.me, writer.default_interface) {
                (true, Some(name)) => name.to_owned(),
                (true, None) => "no interface (none holds this node's address)".to_owned(),
                (false, _) => "the interface holding its address".to_owned(),
            },
        );
    }
    format!("by node {node} on {}", names.join(", "))
}

/// The condition the Service should carry. `previous` is its current one: its
/// `lastTransitionTime` is kept while the condition says the same (same status and message,
/// that is the same owners and interfaces), so the time says since when the VIP is announced
/// where it is.
pub fn desired_condition(
    vips: &[&VipPlan],
    writer: &Writer,
    previous: Option<&Condition>,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let mut parts = Vec::new();
    let mut reason = NODE_ANNOUNCING;
    for vip in vips {
        let part = match &vip.outcome {
            Outcome::Owner { node, interfaces } => where_announced(node, interfaces, writer),
            Outcome::NotCovered => {
                reason = NOT_ANNOUNCED;
                format!(
                    "not announced: no L2Announcement covers AddressPool {}",
                    vip.pool
                )
            }
            Outcome::NoEligibleNode => {
                if reason == NODE_ANNOUNCING {
                    reason = NO_ELIGIBLE_NODE;
                }
                "not announced: no eligible node is alive (selected, ready, with a local endpoint under Local)".to_owned()
            }
        };
        parts.push(format!("{} {part}", vip.ip));
    }
    let status = if reason == NODE_ANNOUNCING {
        "True"
    } else {
        "False"
    };
    let message = parts.join("; ");
    let since = previous
        .filter(|p| p.status == status && p.message == message)
        .map(|p| p.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: L2_ANNOUNCED.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time: since,
        observed_generation: generation,
    }
}

/// The Service's current `L2Announced` condition.
pub fn current_condition(service: &Service) -> Option<&Condition> {
    service
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == L2_ANNOUNCED)
}

/// Works out the condition of every Service this node writes for and applies the ones that
/// differ. Also clears the condition from Services that no longer have a VIP to announce
/// (written by the reporter). False when a write failed (retried at the next pass).
pub async fn write_conditions(
    plans: &[VipPlan],
    writer: &Writer<'_>,
    services: &[Arc<Service>],
    client: &kube::Client,
) -> bool {
    let by_service = plans_by_service(plans);
    let mut ok = true;
    for service in services {
        let key = ServiceKey::new(
            service.metadata.namespace.clone().unwrap_or_default(),
            service.metadata.name.clone().unwrap_or_default(),
        );
        let current = current_condition(service);
        let desired = match by_service.get(&key) {
            Some(vips) if writes(vips, writer) => Some(desired_condition(
                vips,
                writer,
                current,
                service.metadata.generation,
                Timestamp::now(),
            )),
            Some(_) => continue,
            // A condition left from when the Service had a VIP: the reporter removes it.
            None if current.is_some() && writer.reporter => None,
            None => continue,
        };
        if desired.as_ref() == current {
            continue;
        }
        if let Err(e) = apply(client, &key, desired.as_ref()).await {
            tracing::warn!(namespace = %key.namespace, name = %key.name, error = %e,
                "could not write the {L2_ANNOUNCED} condition; retrying");
            ok = false;
        }
    }
    ok
}

/// Server-side apply of the one condition the agent owns (none: the agent's entry is removed).
async fn apply(
    client: &kube::Client,
    key: &ServiceKey,
    condition: Option<&Condition>,
) -> kube::Result<()> {
    let api: Api<Service> = Api::namespaced(client.clone(), &key.namespace);
    let conditions: Vec<&Condition> = condition.into_iter().collect();
    let body = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": key.name, "namespace": key.namespace},
        "status": {"conditions": conditions},
    });
    // Forced: the entry is the agent's alone; another node that owned it before hands it over.
    let params = PatchParams::apply(AGENT_FIELD_MANAGER).force();
    api.patch_status(&key.name, &params, &Patch::Apply(body))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests;
