//! What the controller tells about AddressPools themselves: overlapping pools are warned about
//! once per change, and a pool it cannot read is reported without stalling the others.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use portico_api::AddressPool;
use portico_api::keys::reason;
use portico_tests::lab_cluster::{LabCluster, Process, mk_lb_service, wait_for};

/// Events (events.k8s.io/v1) with `reason` about a cluster-scoped object (they live in `default`).
async fn events_about(cluster: &LabCluster, name: &str, reason: &str) -> Vec<Event> {
    Api::<Event>::namespaced(cluster.client.clone(), "default")
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                && e.reason.as_deref() == Some(reason)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_pools_get_one_warning_event_each() {
    let cluster = LabCluster::start().await;
    let controller = cluster.spawn_controller("controller", &[]);
    cluster.create_pool("wide", &["198.19.5.0/24"], true).await;
    cluster
        .create_pool("narrow", &["198.19.5.16/28"], true)
        .await;

    for (pool, other) in [("wide", "narrow"), ("narrow", "wide")] {
        let note = cluster
            .wait_for_warning(
                "default",
                pool,
                reason::OVERLAPPING_ADDRESS_POOL,
                &["shares addresses with", other],
            )
            .await;
        assert!(note.contains(other), "{note}");
    }

    // Allocations change the pools' counts, so their status is written again (a status write
    // is observable as the count moving); the overlap has not changed and is not reported again.
    for i in 0..3 {
        let name = format!("svc-{i}");
        cluster
            .create_service("default", &mk_lb_service(&name, 80, &[]))
            .await;
        cluster.wait_for_ingress("default", &name).await;
    }
    let pools: Api<AddressPool> = Api::all(cluster.client.clone());
    wait_for(
        "the pools' status to count 3 addresses",
        Duration::from_secs(10),
        || async {
            let mut assigned = 0;
            for pool in ["wide", "narrow"] {
                assigned += pools.get(pool).await.ok()?.status?.assigned_ipv4;
            }
            // An address counts in every pool that contains it.
            (assigned >= 3).then_some(())
        },
    )
    .await;
    for pool in ["wide", "narrow"] {
        let events = events_about(&cluster, pool, reason::OVERLAPPING_ADDRESS_POOL).await;
        assert_eq!(events.len(), 1, "{pool}: {events:?}");
        assert!(
            events[0].series.is_none(),
            "{pool}: published once, not repeated: {events:?}\n{}",
            controller.logs()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_pool_is_reported_and_the_others_still_serve() {
    let cluster = LabCluster::start().await;
    // The schema accepts any integer here (as a real API server does for format int32), but
    // the type holds an i32: a pool written by hand, or before a schema change.
    let resource = ApiResource::erase::<AddressPool>(&());
    let raw: Api<DynamicObject> = Api::all_with(cluster.client.clone(), &resource);
    let unreadable: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "AddressPool",
        "metadata": { "name": "unreadable" },
        "spec": {
            "addresses": ["198.19.6.0/24"],
            "serviceAllocation": { "priority": 3_000_000_000_i64 }
        }
    }))
    .unwrap();
    raw.create(&PostParams::default(), &unreadable)
        .await
        .expect("the schema accepts it");
    let typed: Api<AddressPool> = Api::all(cluster.client.clone());
    assert!(
        typed.list(&ListParams::default()).await.is_err(),
        "the typed list fails on it, as the controller's plain watch did"
    );
    cluster.create_pool("good", &["198.19.7.0/30"], true).await;

    let controller = cluster.spawn_controller("controller", &[]);
    cluster
        .create_service("default", &mk_lb_service("echo", 80, &[]))
        .await;
    let ips = cluster.wait_for_ingress("default", "echo").await;
    assert!(ips[0].starts_with("198.19.7."), "{ips:?}");
    let note = cluster
        .wait_for_warning(
            "default",
            "unreadable",
            reason::INVALID_ADDRESS_POOL,
            &["cannot read this AddressPool"],
        )
        .await;
    assert!(note.contains("priority") || note.contains("i32"), "{note}");
    assert!(
        controller.logs().contains("cannot read AddressPool"),
        "{}",
        controller.logs()
    );
}

/// Service reconciles so far, whatever their result.
fn reconciles(controller: &Process) -> f64 {
    ["success", "error"]
        .iter()
        .filter_map(|result| {
            controller.metric(&format!(
                "portico_controller_reconciles_total{{result=\"{result}\"}}"
            ))
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_status_writes_do_not_reconcile_services() {
    const HOLDERS: usize = 20;
    let cluster = LabCluster::start().await;
    let controller = cluster.spawn_controller("controller", &[]);
    cluster.create_pool("lab", &["198.19.9.0/24"], true).await;
    for i in 0..HOLDERS {
        cluster
            .create_service("default", &mk_lb_service(&format!("svc-{i}"), 80, &[]))
            .await;
    }
    for i in 0..HOLDERS {
        cluster
            .wait_for_ingress("default", &format!("svc-{i}"))
            .await;
    }
    let pools: Api<AddressPool> = Api::all(cluster.client.clone());
    wait_for(
        "the pool's status to count every address",
        Duration::from_secs(10),
        || async {
            (pools.get("lab").await.ok()?.status?.assigned_ipv4 == HOLDERS as i64).then_some(())
        },
    )
    .await;
    let before = reconciles(&controller);

    // Someone else's status write: the controller puts its counts back (its own status write).
    let wrong = serde_json::json!({ "status": { "assignedIPv4": 999 } });
    pools
        .patch_status("lab", &PatchParams::default(), &Patch::Merge(&wrong))
        .await
        .unwrap();
    wait_for(
        "the controller to correct the pool's status",
        Duration::from_secs(10),
        || async {
            (pools.get("lab").await.ok()?.status?.assigned_ipv4 == HOLDERS as i64).then_some(())
        },
    )
    .await;
    // A new Service changes the counts once more (another write of Portico's own), and is the
    // last thing to happen, so its address means the controller saw the writes before it.
    cluster
        .create_service("default", &mk_lb_service("probe", 80, &[]))
        .await;
    cluster.wait_for_ingress("default", "probe").await;
    wait_for(
        "the pool's status to count the probe",
        Duration::from_secs(10),
        || async {
            (pools.get("lab").await.ok()?.status?.assigned_ipv4 == HOLDERS as i64 + 1).then_some(())
        },
    )
    .await;
    let caused = reconciles(&controller) - before;
    // The probe takes two or three (created, then its own writes seen); requeuing on the pool's
    // status writes would reconcile all the others, at least once per write.
    assert!(
        caused < HOLDERS as f64,
        "only the probe is reconciled, not the {HOLDERS} Services the pool's status counts: \
         {caused} reconciles\n{}",
        controller.logs()
    );
}
