//! The `portico.dev/LoadBalancerReady` condition on bare metal: Ready with the address, and a
//! reason a person can act on while a Service waits (the pool is full).

use kube::api::DeleteParams;
use portico_tests::lab_cluster::{LabCluster, mk_lb_service};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_is_a_pool_exhausted_condition_until_an_address_frees() {
    let cluster = LabCluster::start().await;
    let _controller = cluster.spawn_controller("controller", &[]);
    cluster.create_pool("one", &["198.19.0.7/32"], true).await;
    cluster
        .create_service("default", &mk_lb_service("first", 80, &[]))
        .await;
    let (status, message) = cluster
        .wait_for_condition("default", "first", "Ready")
        .await;
    assert_eq!(status, "True");
    assert!(message.contains("198.19.0.7"), "{message}");

    cluster
        .create_service("default", &mk_lb_service("second", 80, &[]))
        .await;
    let (status, message) = cluster
        .wait_for_condition("default", "second", "PoolExhausted")
        .await;
    assert_eq!(status, "False");
    assert!(message.contains("one"), "names the pool: {message}");

    cluster
        .services("default")
        .delete("first", &DeleteParams::default())
        .await
        .unwrap();
    let (status, message) = cluster
        .wait_for_condition("default", "second", "Ready")
        .await;
    assert_eq!(status, "True");
    assert!(message.contains("198.19.0.7"), "{message}");
}
