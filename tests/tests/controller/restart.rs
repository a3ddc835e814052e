//! A restart keeps every IP: addresses are restored from the Services' status before anything
//! new is assigned, so a Service created while the controller was down cannot take one.

use portico_tests::lab_cluster::{LabCluster, mk_lb_service};

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
