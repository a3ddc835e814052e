//! An API server outage is told, not kept quiet: the controller logs each failing watch (once at
//! first, then at most every 30 s) and `/readyz` answers 503 naming it; once the API server
//! answers again, `/readyz` is 200 and the log says the watch works again.
//!
//! The outage is a TCP proxy between the controller and the lab API server that the test cuts
//! (open connections closed, new ones refused) and restores: what a controller sees when the
//! API server restarts or the network to it fails, with the same server state afterwards.

use std::net::SocketAddr;
use std::time::Duration;

use portico_tests::cli::http_get;
use portico_tests::cuttable_proxy::CuttableProxy;
use portico_tests::lab_cluster::{LabCluster, mk_lb_service, wait_for};

fn readyz(admin: SocketAddr) -> (u16, String) {
    http_get(admin, "/readyz").unwrap_or_else(|e| (0, e.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_outage_is_logged_once_per_watch_and_fails_readyz_until_it_ends() {
    let cluster = LabCluster::start().await;
    let upstream: SocketAddr = cluster
        .server
        .url()
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    let proxy = CuttableProxy::start("127.0.0.1".parse().unwrap(), upstream).await;
    let kubeconfig = cluster.dir.path().join("kubeconfig-via-proxy");
    std::fs::write(
        &kubeconfig,
        cluster
            .server
            .kubeconfig_for(&format!("https://{}", proxy.addr)),
    )
    .unwrap();
    let controller = cluster.spawn_controller_with("controller", &kubeconfig, &[]);
    cluster.create_pool("lab", &["198.19.0.32/28"], true).await;
    cluster
        .create_service("default", &mk_lb_service("echo", 80, &[]))
        .await;
    cluster.wait_for_ingress("default", "echo").await;
    // Ready once caught up (the initial list reconciled), which may come just after the status.
    wait_for(
        "/readyz 200 before the outage",
        Duration::from_secs(30),
        || async { (readyz(controller.admin).0 == 200).then_some(()) },
    )
    .await;

    proxy.cut();
    // Each watch notices the cut on its own next request: wait until the two named here have
    // (the first 503 may name only one, e.g. the Namespace watch).
    wait_for(
        "/readyz to answer 503 naming the failing AddressPool and Service watches",
        Duration::from_secs(30),
        || async {
            let (status, body) = readyz(controller.admin);
            (status == 503
                && ["AddressPool", "Service"]
                    .iter()
                    .all(|kind| body.contains(&format!("watch of {kind} failing"))))
            .then_some(())
        },
    )
    .await;
    wait_for(
        "a warning naming the failing Service watch",
        Duration::from_secs(30),
        || async {
            controller
                .logs()
                .contains("the watch of Service is failing")
                .then_some(())
        },
    )
    .await;
    // Several retries fail within these seconds (the backoff starts under a second); the log
    // still says it once per watch, as the next line is due only 30 s after the first.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let logs = controller.logs();
    for kind in ["AddressPool", "Namespace", "Service"] {
        let lines = logs
            .matches(&format!("the watch of {kind} is failing"))
            .count();
        assert_eq!(lines, 1, "one warning for the {kind} watch so far:\n{logs}");
    }

    proxy.restore();
    wait_for(
        "/readyz to answer 200 after the outage",
        Duration::from_secs(60),
        || async { (readyz(controller.admin).0 == 200).then_some(()) },
    )
    .await;
    let logs = controller.logs();
    assert!(logs.contains("the watch of Service works again"), "{logs}");
    // And it works: a Service created after the outage gets its address.
    cluster
        .create_service("default", &mk_lb_service("after", 80, &[]))
        .await;
    cluster.wait_for_ingress("default", "after").await;
}
