//! The shared per-cluster health check (`k8s-<cluster>-node`, 10256 `/healthz`) that the target
//! pool of every `externalTrafficPolicy: Cluster` Service uses: it stays while any pool refers
//! to it and goes with the last one, as cloud-provider-gcp's cleanup does (Compute refuses to
//! delete a check a pool uses, and the fake keeps that rule).

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams};
use portico_tests::fake_compute::FakeCompute;
use portico_tests::lab_cluster::{LabCluster, mk_lb_service, wait_for};

use crate::gcp::{add_nodes, lb_name, pool_check, spawn_gcp_controller, wait_fake};

const SHARED: &str = "k8s-lab-node";

/// Deletes the Service and waits until it is gone from the API: the controller removes its
/// finalizer only after every delete of the load balancer was made.
async fn delete_and_wait(services: &Api<Service>, name: &str) {
    services
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        &format!("{name} gone (finalizer removed)"),
        Duration::from_secs(60),
        || async {
            services
                .get_opt(name)
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
}

/// The DELETE requests the fake saw for the shared check.
fn shared_check_deletes(fake: &FakeCompute) -> usize {
    let path = format!("/httpHealthChecks/{SHARED}");
    fake.calls()
        .iter()
        .filter(|c| c.method == "DELETE" && c.path.ends_with(&path))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_check_stays_while_a_pool_uses_it_and_goes_with_the_last_service() {
    let fake = FakeCompute::start().await;
    let cluster = LabCluster::start().await;
    add_nodes(&cluster, &["node-0"]).await;
    let _controller = spawn_gcp_controller(&cluster, &fake, "controller");
    let mut names = Vec::new();
    for service in ["first", "second"] {
        let created = cluster
            .create_service("default", &mk_lb_service(service, 80, &[]))
            .await;
        names.push(lb_name(created.metadata.uid.as_deref().unwrap()));
    }
    let (first, second) = (names[0].clone(), names[1].clone());
    wait_fake("both pools on the shared check", || {
        [&first, &second]
            .iter()
            .all(|pool| pool_check(&fake, pool).as_deref() == Some(SHARED))
    })
    .await;
    assert_eq!(shared_check_deletes(&fake), 0);

    // The first Service goes: its delete of the shared check is refused, the second's pool
    // still refers to it.
    let services = cluster.services("default");
    delete_and_wait(&services, "first").await;
    assert!(fake.get("addresses", &first).is_none());
    assert!(fake.get("targetPools", &first).is_none());
    assert!(shared_check_deletes(&fake) >= 1, "{:?}", fake.calls());
    assert!(
        fake.get("httpHealthChecks", SHARED).is_some(),
        "the shared check was deleted while {second}'s pool uses it"
    );
    assert_eq!(pool_check(&fake, &second).as_deref(), Some(SHARED));

    // The last Service that uses it goes: so does the check, and nothing is left.
    delete_and_wait(&services, "second").await;
    assert!(fake.get("httpHealthChecks", SHARED).is_none());
    assert_eq!(fake.count(), 0, "{:?}", fake.list("firewalls"));
}
