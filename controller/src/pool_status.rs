//! `AddressPool.status`: assigned and available counts per family and the `Valid` and
//! `Overlapping` conditions. Worked out from the allocator (pure), written only on a difference,
//! and an invalid pool (naming the bad field) or an overlapping one (naming the other pools) gets a
//! Warning Event when it becomes so.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::core::error_boundary::InvalidObject;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use portico_api::keys::{CONTROLLER_FIELD_MANAGER, reason};
use portico_api::{AddressPool, AddressPoolStatus, ValidationErrors};

use crate::ipam::PoolStats;
use crate::metrics::PoolLabels;
use crate::reconcile::{Context, lock};

/// How often the writer looks for changed counts.
const WRITE_PERIOD: Duration = Duration::from_secs(1);

/// What the allocator knows of one pool.
pub struct PoolFacts<'a> {
    pub stats: Option<PoolStats>,
    pub invalid: Option<&'a ValidationErrors>,
    pub overlaps_with: Vec<String>,
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    previous: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    // The transition time moves only when the status flips, as the API conventions ask.
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// The status the pool should have.
pub fn desired_pool_status(
    pool: &AddressPool,
    facts: &PoolFacts<'_>,
    now: Timestamp,
) -> AddressPoolStatus {
    let previous = pool
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let generation = pool.metadata.generation;
    let mut status = AddressPoolStatus::default();
    if let Some(stats) = facts.stats {
        stats.write_to(&mut status);
    }
    let valid = match facts.invalid {
        None => condition(
            "Valid",
            true,
            "Valid",
            "every address entry parses".into(),
            previous,
            generation,
            now,
        ),
        Some(errors) => condition(
            "Valid",
            false,
            "InvalidSpec",
            errors.to_string(),
            previous,
            generation,
            now,
        ),
    };
    let overlapping = if facts.overlaps_with.is_empty() {
        condition(
            "Overlapping",
            false,
            "NoOverlap",
            "no other pool shares addresses".into(),
            previous,
            generation,
            now,
        )
    } else {
        condition(
            "Overlapping",
            true,
            "SharesAddresses",
            format!(
                "shares addresses with {}; each address is still given out once",
                facts.overlaps_with.join(", ")
            ),
            previous,
            generation,
            now,
        )
    };
    // `Overlapping` True is the unusual case, so it is reported as a condition of its own.
    status.conditions = vec![valid, overlapping];
    status
}

/// Whether two statuses differ in what they say (ignoring nothing: times are preserved above).
fn differs(current: Option<&AddressPoolStatus>, desired: &AddressPoolStatus) -> bool {
    current != Some(desired)
}

fn find<'a>(status: Option<&'a AddressPoolStatus>, type_: &str) -> Option<&'a Condition> {
    status?.conditions.iter().find(|c| c.type_ == type_)
}

/// The Warning Events a status change deserves: one when the pool becomes invalid and one when
/// it starts overlapping another pool (or overlaps different pools). Compared with the status
/// the pool had, so each change is reported once, not on every write, nor again after a restart.
pub fn pool_events(
    previous: Option<&AddressPoolStatus>,
    desired: &AddressPoolStatus,
) -> Vec<Event> {
    let warning = |reason: &str, action: &str, note: String| Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    let mut events = Vec::new();
    let was_valid = find(previous, "Valid").is_none_or(|c| c.status == "True");
    if let Some(valid) = find(Some(desired), "Valid")
        && valid.status == "False"
        && was_valid
    {
        events.push(warning(
            reason::INVALID_ADDRESS_POOL,
            "Validate",
            format!(
                "addresses of this pool are not handed out: {}",
                valid.message
            ),
        ));
    }
    if let Some(overlapping) = find(Some(desired), "Overlapping")
        && overlapping.status == "True"
        && find(previous, "Overlapping")
            .is_none_or(|c| c.status != "True" || c.message != overlapping.message)
    {
        events.push(warning(
            reason::OVERLAPPING_ADDRESS_POOL,
            "Validate",
            format!("this pool {}", overlapping.message),
        ));
    }
    events
}

/// Writes pool statuses and metrics whenever allocations or pools changed, until dropped.
pub async fn run_writer(ctx: Arc<Context>) {
    let mut ticker = tokio::time::interval(WRITE_PERIOD);
    loop {
        ticker.tick().await;
        if !ctx.ipam.pools_dirty.swap(false, Ordering::Relaxed) {
            continue;
        }
        if let Err(e) = write_all(&ctx).await {
            tracing::warn!(error = %e, "could not write AddressPool status; retrying");
            ctx.ipam.pools_dirty.store(true, Ordering::Relaxed);
        }
    }
}

async fn write_all(ctx: &Context) -> Result<(), kube::Error> {
    let (stats, invalid, overlaps) = {
        let allocator = ctx.ipam.allocator.lock().unwrap_or_else(|p| p.into_inner());
        let invalid: Vec<(String, ValidationErrors)> = allocator
            .invalid_pools()
            .map(|(name, errors)| (name.to_owned(), errors.clone()))
            .collect();
        (allocator.stats(), invalid, allocator.overlapping_pools())
    };
    let api: Api<AddressPool> = Api::all(ctx.client.clone());
    let mut readable = Vec::new();
    let mut unreadable = Vec::new();
    for guarded in ctx.ipam.pools.state() {
        match &guarded.0 {
            Ok(pool) => readable.push(pool.clone()),
            Err(invalid) => unreadable.push(invalid.clone()),
        }
    }
    report_unreadable(ctx, &unreadable).await;
    for pool in readable {
        let name = pool.name_any();
        let invalid_errors = invalid.iter().find(|(n, _)| *n == name).map(|(_, e)| e);
        let overlaps_with: Vec<String> = overlaps
            .iter()
            .filter_map(|(a, b)| {
                if *a == name {
                    Some(b.clone())
                } else if *b == name {
                    Some(a.clone())
                } else {
                    None
                }
            })
            .collect();
        let facts = PoolFacts {
            stats: stats.get(&name).copied(),
            invalid: invalid_errors,
            overlaps_with,
        };
        let desired = desired_pool_status(&pool, &facts, Timestamp::now());
        record_metrics(ctx, &name, &desired);
        if !differs(pool.status.as_ref(), &desired) {
            continue;
        }
        let events = pool_events(pool.status.as_ref(), &desired);
        let body = serde_json::json!({
            "apiVersion": "portico.dev/v1alpha1",
            "kind": "AddressPool",
            "status": desired,
        });
        api.patch_status(
            &name,
            &PatchParams::apply(CONTROLLER_FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
        for event in events {
            if let Err(e) = ctx.recorder.publish(&event, &pool.object_ref(&())).await {
                tracing::warn!(error = %e, pool = %name, "could not publish an Event");
            }
        }
    }
    Ok(())
}

/// Logs and raises a Warning Event, once per resourceVersion, for each pool the controller cannot
/// read (written before a schema change, or holding what the schema allows but Portico cannot
/// use); the other pools go on being served.
async fn report_unreadable(ctx: &Context, unreadable: &[InvalidObject]) {
    let mut due = Vec::new();
    {
        let mut reported = lock(&ctx.ipam.unreadable_pools);
        reported.retain(|name, _| {
            unreadable
                .iter()
                .any(|p| p.metadata.name.as_ref() == Some(name))
        });
        for invalid in unreadable {
            let name = invalid.metadata.name.clone().unwrap_or_default();
            let version = invalid
                .metadata
                .resource_version
                .clone()
                .unwrap_or_default();
            if reported.get(&name) != Some(&version) {
                reported.insert(name, version);
                due.push(invalid);
            }
        }
    }
    for invalid in due {
        let name = invalid.metadata.name.clone().unwrap_or_default();
        tracing::warn!(pool = %name, error = %invalid.error, "cannot read AddressPool; its addresses are not handed out");
        let reference = ObjectReference {
            api_version: Some(AddressPool::api_version(&()).into_owned()),
            kind: Some(AddressPool::kind(&()).into_owned()),
            name: Some(name),
            uid: invalid.metadata.uid.clone(),
            resource_version: invalid.metadata.resource_version.clone(),
            ..Default::default()
        };
        let event = Event {
            type_: EventType::Warning,
            reason: reason::INVALID_ADDRESS_POOL.into(),
            note: Some(format!(
                "cannot read this AddressPool ({}); its addresses are not handed out until it is fixed",
                invalid.error
            )),
            action: "Validate".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(error = %e, "could not publish an Event");
        }
    }
}

fn record_metrics(ctx: &Context, pool: &str, status: &AddressPoolStatus) {
    for (family, state, value) in [
        ("IPv4", "assigned", status.assigned_ipv4),
        ("IPv4", "available", status.available_ipv4),
        ("IPv6", "assigned", status.assigned_ipv6),
        ("IPv6", "available", status.available_ipv6),
    ] {
        ctx.metrics
            .pool_addresses
            .get_or_create(&PoolLabels {
                pool: pool.to_owned(),
                family,
                state,
            })
            .set(value);
    }
}

#[cfg(test)]
mod tests {
    use portico_api::AddressPoolSpec;

    use super::*;

    fn mk_pool(status: Option<AddressPoolStatus>) -> AddressPool {
        let mut pool = AddressPool::new(
            "lab",
            AddressPoolSpec {
                addresses: vec!["198.19.0.0/24".into()],
                auto_assign: true,
                avoid_buggy_ips: false,
                service_allocation: None,
            },
        );
        pool.status = status;
        pool
    }

    fn facts(invalid: Option<&ValidationErrors>) -> PoolFacts<'_> {
        PoolFacts {
            stats: Some(PoolStats {
                assigned_ipv4: 2,
                available_ipv4: 254,
                ..Default::default()
            }),
            invalid,
            overlaps_with: vec![],
        }
    }

    #[test]
    fn counts_and_conditions_are_reported_and_stable_between_writes() {
        let earlier = Timestamp::from_second(1_700_000_000).unwrap();
        let first = desired_pool_status(&mk_pool(None), &facts(None), earlier);
        assert_eq!((first.assigned_ipv4, first.available_ipv4), (2, 254));
        assert_eq!(first.conditions[0].type_, "Valid");
        assert_eq!(first.conditions[0].status, "True");
        let later = desired_pool_status(
            &mk_pool(Some(first.clone())),
            &facts(None),
            Timestamp::now(),
        );
        assert!(!differs(Some(&first), &later), "nothing changed: no write");
    }

    #[test]
    fn an_invalid_pool_says_which_field_and_the_transition_time_moves() {
        let earlier = Timestamp::from_second(1_700_000_000).unwrap();
        let valid = desired_pool_status(&mk_pool(None), &facts(None), earlier);
        let mut errors = ValidationErrors::default();
        errors.push("spec.addresses[0]", "\"10.0.0.5/24\" has host bits set");
        let now = Timestamp::now();
        let invalid = desired_pool_status(&mk_pool(Some(valid)), &facts(Some(&errors)), now);
        let condition = &invalid.conditions[0];
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("False", "InvalidSpec")
        );
        assert!(condition.message.contains("spec.addresses[0]"));
        assert_eq!(condition.last_transition_time, Time(now));
    }

    fn overlapping(with: &[&str]) -> PoolFacts<'static> {
        PoolFacts {
            overlaps_with: with.iter().map(|s| s.to_string()).collect(),
            ..facts(None)
        }
    }

    #[test]
    fn an_overlap_is_reported_once_per_change() {
        let now = Timestamp::now();
        let alone = desired_pool_status(&mk_pool(None), &facts(None), now);
        let first = desired_pool_status(&mk_pool(None), &overlapping(&["other"]), now);
        let events = pool_events(Some(&alone), &first);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, reason::OVERLAPPING_ADDRESS_POOL);
        assert_eq!(events[0].type_, EventType::Warning);
        assert!(
            events[0].note.as_deref().unwrap().contains("other"),
            "{:?}",
            events[0].note
        );
        assert_eq!(
            pool_events(None, &first).len(),
            1,
            "a new pool that overlaps"
        );

        // Counts move (another Service got an address): the overlap is old news.
        let mut counts_moved =
            desired_pool_status(&mk_pool(Some(first.clone())), &overlapping(&["other"]), now);
        counts_moved.assigned_ipv4 += 1;
        assert!(pool_events(Some(&first), &counts_moved).is_empty());

        let more = desired_pool_status(
            &mk_pool(Some(first.clone())),
            &overlapping(&["other", "third"]),
            now,
        );
        assert_eq!(pool_events(Some(&first), &more).len(), 1, "a new partner");
        assert!(pool_events(Some(&first), &alone).is_empty(), "overlap gone");
    }

    #[test]
    fn an_invalid_pool_is_reported_when_it_becomes_invalid() {
        let now = Timestamp::now();
        let mut errors = ValidationErrors::default();
        errors.push("spec.addresses[0]", "\"10.0.0.5/24\" has host bits set");
        let valid = desired_pool_status(&mk_pool(None), &facts(None), now);
        let invalid = desired_pool_status(&mk_pool(None), &facts(Some(&errors)), now);
        let events = pool_events(Some(&valid), &invalid);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, reason::INVALID_ADDRESS_POOL);
        assert!(
            events[0]
                .note
                .as_deref()
                .unwrap()
                .contains("spec.addresses[0]")
        );
        assert!(pool_events(Some(&invalid), &invalid).is_empty());
    }
}
