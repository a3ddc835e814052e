//! The figures the lab cloud measures, for the tests and the `lab_cloud` bench: how a Local
//! Service's load balancer follows an endpoint move, and a rolling update under steady load.
//!
//! The rolling update: the new pod (another node) becomes ready and the load balancer takes
//! that node in (what a readiness gate or minReadySeconds waits for); the old pod turns
//! serving-and-terminating for a grace period longer than the check's unhealthy threshold ×
//! interval, during which its node answers 503 on `/healthz` but keeps forwarding to it, so the
//! load balancer drains the node before the endpoint is gone; then the old pod disappears.

use std::fmt;
use std::time::{Duration, Instant};

use portico_lab::netns::echo::echo_field;
use portico_lab::netns::sampler::{Sampler, failed, outage_after};

use super::CloudLab;

/// A request every 20 ms during a rolling update, each given 2 s.
const EVERY: Duration = Duration::from_millis(20);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the client saw while a Local Service's only endpoint moved to another node.
#[derive(Clone, Debug)]
pub struct Move {
    /// From the move until the lab cloud had exactly the new node in service, settled.
    pub in_service: Duration,
    /// From the move to the first answer from the new node.
    pub first_answer: Duration,
    /// From the move to the start of the last failed request (zero: none failed).
    pub last_failure: Duration,
    pub failed: usize,
    pub sent: usize,
}

impl fmt::Display for Move {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "first answer from the new node after {:?}, last failed request started {:?} after the move ({} of {} requests failed), the new node alone in service after {:?}",
            self.first_answer, self.last_failure, self.failed, self.sent, self.in_service
        )
    }
}

/// What the client sees while a Local Service's only endpoint moves to another node: the
/// time to the first answer from the new node and to the last failed request, and the count.
pub async fn measure_move(lab: &CloudLab, service: &str, from: usize, to: usize) -> Move {
    lab.set_endpoints(service, &[(from, true, true, false)])
        .await;
    lab.wait_for_in_service(service, &[from]).await;
    let sampler = Sampler::start_to(
        lab.lab.lab_binary().to_path_buf(),
        lab.lab.client_ns().to_owned(),
        lab.lb_target(service).await,
        Duration::from_millis(50),
        Duration::from_secs(1),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mark = Instant::now();
    lab.set_endpoints(service, &[(to, true, true, false)]).await;
    lab.wait_for_in_service(service, &[to]).await;
    let in_service = mark.elapsed();
    // The sampler's requests run beside this one; on a loaded machine starting a probe can
    // take longer than a fixed pause, so wait for the new node to answer before stopping.
    let new_pod = lab.lab.nodes()[to].pods[0].ns.clone();
    crate::lab_cluster::wait_for(
        "an answer from the new node",
        Duration::from_secs(30),
        || async {
            let body = lab.request(service).await?;
            (echo_field(&body, "namespace") == Some(new_pod.as_str())).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let samples = sampler.stop().await;
    let outage = outage_after(&samples, mark, |body| {
        echo_field(body, "namespace") == Some(new_pod.as_str())
    })
    .expect("the new node answers after the move");
    let last_failure = samples
        .iter()
        .filter(|s| s.started >= mark && s.answer.is_none())
        .map(|s| s.started - mark)
        .max()
        .unwrap_or_default();
    Move {
        in_service,
        first_answer: outage.interrupted,
        last_failure,
        failed: outage.failed,
        sent: outage.sent,
    }
}

/// The rolling update from node-0 to node-1 under load; returns (failed, sent). `check` is the
/// check's (interval seconds, unhealthy threshold) that `annotations` give, for the grace period.
pub async fn run_rolling_update(
    lab: &mut CloudLab,
    annotations: &[(&str, &str)],
    check: (u64, u64),
) -> (usize, usize) {
    lab.create_service("rolling", "Local", annotations).await;
    lab.set_endpoints("rolling", &[(0, true, true, false)])
        .await;
    lab.wait_for_in_service("rolling", &[0]).await;
    // In service by the checks is not yet routed: the GCP lab cloud writes its routes a moment
    // after the checks pass. The count starts once the load balancer answers.
    let lab_ref = &*lab;
    crate::lab_cluster::wait_for(
        "the load balancer to answer",
        Duration::from_secs(30),
        || async { lab_ref.request("rolling").await.map(|_| ()) },
    )
    .await;
    let target = lab.lb_target("rolling").await;
    let sampler = Sampler::start_to(
        lab.lab.lab_binary().to_path_buf(),
        lab.lab.client_ns().to_owned(),
        target,
        EVERY,
        // A request fails when it is not answered within 5 s: a client's kernel retries a lost
        // SYN after 1 s and 3 s, and on a loaded machine starting a probe alone can take over 2 s.
        REQUEST_TIMEOUT,
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The new pod on node-1 is ready; the load balancer takes node-1 in.
    lab.set_endpoints("rolling", &[(0, true, true, false), (1, true, true, false)])
        .await;
    lab.wait_for_in_service("rolling", &[0, 1]).await;

    // The old pod terminates: serving, not ready, for a grace period longer than the time the
    // load balancer needs to mark node-0 unhealthy (and an interval more for the check in flight).
    lab.set_endpoints("rolling", &[(0, false, true, true), (1, true, true, false)])
        .await;
    let (interval, unhealthy) = check;
    let grace = Duration::from_secs(interval * (unhealthy + 1) + 2);
    let terminating = Instant::now();
    tokio::time::sleep(grace).await;
    let drained = lab.targets("rolling").await;

    // The old pod is gone.
    lab.set_endpoints("rolling", &[(1, true, true, false)])
        .await;
    lab.echoes[0] = None;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let samples = sampler.stop().await;
    eprintln!(
        "lab cloud rolling update: {} requests, {} failed; after the {grace:?} grace period the targets were {drained:?} (terminating at {:?} after the start)",
        samples.len(),
        failed(&samples),
        terminating.duration_since(samples.first().map(|s| s.started).unwrap_or(terminating)),
    );
    let start = samples.first().map(|s| s.started);
    for sample in samples.iter().filter(|s| s.answer.is_none()) {
        eprintln!(
            "failed request at {:?} after the start (took {:?}): {}",
            start.map(|t| sample.started.duration_since(t)),
            sample.took,
            sample.error.as_deref().unwrap_or("no answer"),
        );
    }
    let last = samples
        .last()
        .and_then(|s| s.answer.clone())
        .unwrap_or_default();
    assert_eq!(
        echo_field(&last, "namespace"),
        Some(lab.lab.nodes()[1].pods[0].ns.as_str()),
        "at the end the new pod answers: {last}"
    );
    (failed(&samples), samples.len())
}
