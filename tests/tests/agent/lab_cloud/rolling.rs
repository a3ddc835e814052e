//! The test that proves the design: a rolling update under steady load loses no request. The
//! new pod (another node) becomes ready and the load balancer takes that node in (what a
//! readiness gate or minReadySeconds waits for); the old pod turns serving-and-terminating for a
//! grace period longer than the check's unhealthy threshold × interval, during which its node
//! answers 503 on `/healthz` but keeps forwarding to it, so the load balancer drains the node
//! before the endpoint is gone; then the old pod disappears.

use portico_tests::cloud_lab::measure::run_rolling_update;
use portico_tests::cloud_lab::{CloudLab, Provider, fast_checks};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_rolling_update_under_load_loses_no_request() {
    if !portico_tests::require_root() {
        return;
    }
    let Some(mut lab) = CloudLab::start(Provider::Aws, "198.18.61.0/24", 2).await else {
        return;
    };
    let checks = fast_checks(lab.provider);
    let (failed, sent) = run_rolling_update(&mut lab, &checks, (5, 2)).await;
    lab.teardown().await;
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed during the rolling update"
    );
}
