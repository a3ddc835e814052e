//! Two replicas: one leads and writes, the other waits and takes over when the leader dies.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use portico_tests::lab_cluster::{LabCluster, mk_lb_service, wait_for};

const FAST_LEASE: [&str; 4] = [
    "--leader-elect",
    "--leader-elect-lease-duration=3s",
    "--leader-elect-renew-deadline=2s",
    "--leader-elect-retry-period=250ms",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_replica_takes_over_when_the_leader_dies() {
    let cluster = LabCluster::start().await;
    cluster.create_pool("lab", &["198.19.0.48/28"], true).await;
    let mut a = cluster.spawn_controller(
        "replica-a",
        &[&FAST_LEASE[..], &["--leader-elect-identity=replica-a"]].concat(),
    );
    let leases: kube::Api<Lease> = kube::Api::namespaced(cluster.client.clone(), "portico-system");
    let holder = |leases: kube::Api<Lease>| async move {
        leases
            .get("portico-controller")
            .await
            .ok()?
            .spec?
            .holder_identity
    };
    wait_for("replica-a to lead", Duration::from_secs(10), || async {
        (holder(leases.clone()).await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let mut b = cluster.spawn_controller(
        "replica-b",
        &[&FAST_LEASE[..], &["--leader-elect-identity=replica-b"]].concat(),
    );

    cluster
        .create_service("default", &mk_lb_service("before", 80, &[]))
        .await;
    let before = cluster.wait_for_ingress("default", "before").await;
    wait_for(
        "metrics from both replicas",
        Duration::from_secs(10),
        || async {
            (a.metric("portico_controller_leader") == Some(1.0)
                && b.metric("portico_controller_leader") == Some(0.0))
            .then_some(())
        },
    )
    .await;
    assert!(
        !b.logs().contains("leading; starting the controller"),
        "the standby does nothing:\n{}",
        b.logs()
    );

    a.kill();
    wait_for(
        "replica-b to take over",
        Duration::from_secs(15),
        || async { (holder(leases.clone()).await.as_deref() == Some("replica-b")).then_some(()) },
    )
    .await;
    cluster
        .create_service("default", &mk_lb_service("after", 80, &[]))
        .await;
    let after = cluster.wait_for_ingress("default", "after").await;
    assert_ne!(before, after);
    let kept = portico_tests::lab_cluster::ingress_ips(
        &cluster.services("default").get("before").await.unwrap(),
    );
    assert_eq!(
        kept, before,
        "the new leader kept the old leader's allocation"
    );
    assert_eq!(b.metric("portico_controller_leader"), Some(1.0));
    assert!(b.terminate(), "the leader stops cleanly on SIGTERM");
}
