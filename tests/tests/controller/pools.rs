//! What the controller tells about AddressPools themselves: overlapping pools are warned about
//! once per change.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use portico_api::AddressPool;
use portico_api::keys::reason;
use portico_tests::lab_cluster::{LabCluster, mk_lb_service, wait_for};

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
