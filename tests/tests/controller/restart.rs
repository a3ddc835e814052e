//! A restart keeps every IP: addresses are restored from the Services' status before anything
//! new is assigned, so a Service created while the controller was down cannot take one. And the
//! restarted controller says it is ready only once it has caught up.

use std::time::Duration;

use portico_tests::cli::http_get;
use portico_tests::lab_cluster::{LabCluster, ingress_ips, mk_lb_service};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_every_ip_and_new_services_do_not_take_them() {
    let cluster = LabCluster::start().await;
    cluster.create_pool("lab", &["198.19.0.32/28"], true).await;
    let mut controller = cluster.spawn_controller("first-run", &[]);
    let mut before = Vec::new();
    for i in 0..6 {
        let name = format!("svc-{i}");
        cluster
            .create_service("default", &mk_lb_service(&name, 80, &[]))
            .await;
        before.push(cluster.wait_for_ingress("default", &name).await);
    }
    controller.kill();

    // Created while no controller runs: after the restart it must get a fresh address.
    cluster
        .create_service("default", &mk_lb_service("newcomer", 80, &[]))
        .await;
    let _restarted = cluster.spawn_controller("second-run", &[]);
    let newcomer = cluster.wait_for_ingress("default", "newcomer").await;
    for (i, ips) in before.iter().enumerate() {
        let now = portico_tests::lab_cluster::ingress_ips(
            &cluster
                .services("default")
                .get(&format!("svc-{i}"))
                .await
                .unwrap(),
        );
        assert_eq!(&now, ips, "svc-{i} kept its address");
        assert_ne!(
            &newcomer, ips,
            "the newcomer did not take svc-{i}'s address"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_only_once_every_existing_service_was_reconciled() {
    const NEWCOMERS: usize = 40;
    let cluster = LabCluster::start().await;
    cluster.create_pool("lab", &["198.19.10.0/24"], true).await;
    let mut controller = cluster.spawn_controller("first-run", &[]);
    cluster
        .create_service("default", &mk_lb_service("old", 80, &[]))
        .await;
    cluster.wait_for_ingress("default", "old").await;
    controller.kill();
    for i in 0..NEWCOMERS {
        cluster
            .create_service("default", &mk_lb_service(&format!("new-{i}"), 80, &[]))
            .await;
    }

    let restarted = cluster.spawn_controller("second-run", &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while http_get(restarted.admin, "/readyz").map_or(true, |(status, _)| status != 200) {
        assert!(
            std::time::Instant::now() < deadline,
            "never ready:\n{}",
            restarted.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Ready means caught up: every Service that existed at start has been reconciled, so each
    // newcomer already has its address (the status is written inside its reconcile).
    let services = cluster.services("default");
    for i in 0..NEWCOMERS {
        let name = format!("new-{i}");
        let ips = ingress_ips(&services.get(&name).await.unwrap());
        assert!(
            !ips.is_empty(),
            "{name} has no address yet, but /readyz said 200"
        );
    }
}
