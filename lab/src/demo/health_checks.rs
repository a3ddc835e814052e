//! `portico-lab scenario health-checks`: the health-check story with traffic, on a lab brought
//! up with a cloud (`up --provider aws`): the lab cloud's load balancers follow what the agents'
//! `/healthz` answers say. Provider-neutral: the lab cloud's view comes from `cloud_targets`.
//!
//! ```text
//!   1. echo-local's endpoint moves node-0 → node-1: how long until the LB follows, and what the
//!      client lost meanwhile (a move without a grace period: the old node drops at once)
//!   2. a rolling update node-1 → node-0: new pod ready, LB takes node-0 in, old pod
//!      serving+terminating for longer than interval × (unhealthy + 1), then gone: no loss
//!   3. node-2 tainted ToBeDeletedByClusterAutoscaler: its 10256 /healthz answers 503 and it
//!      leaves echo-cluster's LB (then the taint is removed again)
//! ```

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::objects::{ECHO_PORT, NAMESPACE, SERVICE_PORT};
use super::report::{self, render_table, say};
use super::state::{CloudState, LabState};
use super::up::sock;
use crate::netns::echo::echo_field;
use crate::netns::sampler::{Sampler, failed};

const CLUSTER_SERVICE: &str = "echo-cluster";
const LOCAL_SERVICE: &str = "echo-local";
const DELETION_TAINT: &str = "ToBeDeletedByClusterAutoscaler";

/// One target of one load balancer as the lab cloud sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudTarget {
    /// The load balancer's DNS name (or address).
    pub lb: String,
    pub node: String,
    /// `UP`, `DOWN`, or on its way (`UP 1/2`, `DOWN 1/2`).
    pub status: String,
}

/// The lab cloud's view of every target, whatever the provider.
pub async fn cloud_targets(cloud: &CloudState) -> anyhow::Result<Vec<CloudTarget>> {
    match cloud.provider.as_str() {
        "aws" => Ok(crate::cloud::aws_run::read_target_health(&cloud.dir)
            .await?
            .into_iter()
            .map(|t| CloudTarget {
                lb: t.dns,
                node: cloud
                    .targets
                    .get(&t.instance)
                    .cloned()
                    .unwrap_or(t.instance),
                status: t.status,
            })
            .collect()),
        "gcp" => super::gcp::cloud_targets(cloud).await,
        other => anyhow::bail!("the lab cloud has no view for provider {other:?}"),
    }
}

/// Waits until exactly `nodes` are fully UP (and the rest fully DOWN or gone) on `lb`; how long
/// that took, or None after `timeout`.
async fn wait_in_service(
    cloud: &CloudState,
    lb: &str,
    nodes: &[&str],
    timeout: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    report::retry(timeout, || async {
        let targets = cloud_targets(cloud).await.ok()?;
        let mine: Vec<&CloudTarget> = targets.iter().filter(|t| t.lb == lb).collect();
        let settled = mine.iter().all(|t| t.status == "UP" || t.status == "DOWN");
        let mut up: Vec<&str> = mine
            .iter()
            .filter(|t| t.status == "UP")
            .map(|t| t.node.as_str())
            .collect();
        up.sort_unstable();
        (settled && up == nodes).then(|| started.elapsed())
    })
    .await
}

/// The load balancer's name (or address) from the Service's status.
async fn lb_host(services: &Api<Service>, name: &str) -> anyhow::Result<String> {
    report::retry(Duration::from_secs(30), || async {
        let ingress = services
            .get(name)
            .await
            .ok()?
            .status?
            .load_balancer?
            .ingress?;
        ingress.into_iter().find_map(|i| i.hostname.or(i.ip))
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("{name} has no load balancer in its status"))
}

/// Replaces `service`'s endpoints: `(node index, ready, serving, terminating)`.
async fn set_endpoints(
    slices: &Api<EndpointSlice>,
    state: &LabState,
    service: &str,
    endpoints: &[(usize, bool, bool, bool)],
) -> anyhow::Result<()> {
    let endpoints: Vec<_> = endpoints
        .iter()
        .map(|&(node, ready, serving, terminating)| {
            json!({
                "addresses": [state.nodes[node].pods[0].ip.to_string()],
                "nodeName": state.nodes[node].name,
                "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
            })
        })
        .collect();
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-x1"), "namespace": NAMESPACE,
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "tcp", "port": ECHO_PORT, "protocol": "TCP"}],
    });
    let params = PatchParams::apply("portico-lab-scenario").force();
    slices
        .patch(&format!("{service}-x1"), &params, &Patch::Apply(&slice))
        .await?;
    Ok(())
}

fn start_sampler(state: &LabState, lb: &str, every: Duration) -> Sampler {
    Sampler::start_to(
        state.lab_binary.clone(),
        state.client_ns.clone(),
        format!("{lb}:{SERVICE_PORT}"),
        every,
        report::PROBE_TIMEOUT,
    )
}

fn followed(took: Option<Duration>) -> String {
    took.map_or_else(
        || "not within 90 s".to_owned(),
        |d| format!("{:.1} s", d.as_secs_f64()),
    )
}

pub async fn health_checks(dir: &std::path::Path) -> anyhow::Result<()> {
    let state = super::running_lab(dir)?;
    let cloud = state.cloud.clone().ok_or_else(|| {
        anyhow::anyhow!("this lab has no cloud: start it with `portico-lab up --provider aws`")
    })?;
    let client = super::client(&state.kubeconfig).await?;
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    let nodes: Api<Node> = Api::all(client);
    let (local, cluster) = (
        lb_host(&services, LOCAL_SERVICE).await?,
        lb_host(&services, CLUSTER_SERVICE).await?,
    );
    let (interval, unhealthy) = cloud.check;
    let wait = Duration::from_secs(90);
    let mut rows = Vec::new();
    say(&format!(
        "{LOCAL_SERVICE}: the lab cloud checks every {interval} s; {unhealthy} failures take a node out"
    ));
    wait_in_service(&cloud, &local, &["node-0"], wait).await;

    say(&format!(
        "1. {LOCAL_SERVICE}'s endpoint moves from node-0 to node-1 (no grace period)"
    ));
    let sampler = start_sampler(&state, &local, Duration::from_millis(50));
    set_endpoints(&slices, &state, LOCAL_SERVICE, &[(1, true, true, false)]).await?;
    let took = wait_in_service(&cloud, &local, &["node-1"], wait).await;
    let samples = sampler.stop().await;
    println!("the load balancer followed in {}", followed(took));
    rows.push(vec![
        "endpoint moved".to_owned(),
        followed(took),
        samples.len().to_string(),
        failed(&samples).to_string(),
    ]);

    say(
        "2. a rolling update node-1 → node-0: new pod ready, old one serving+terminating, then gone",
    );
    let sampler = start_sampler(&state, &local, Duration::from_millis(20));
    let started = Instant::now();
    set_endpoints(
        &slices,
        &state,
        LOCAL_SERVICE,
        &[(1, true, true, false), (0, true, true, false)],
    )
    .await?;
    wait_in_service(&cloud, &local, &["node-0", "node-1"], wait).await;
    println!(
        "new pod on node-0 ready and in the load balancer after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    set_endpoints(
        &slices,
        &state,
        LOCAL_SERVICE,
        &[(1, false, true, true), (0, true, true, false)],
    )
    .await?;
    let grace = Duration::from_secs(interval * (unhealthy + 1) + 2);
    println!("old pod on node-1 terminating (still serving) for {grace:?}");
    let took = wait_in_service(&cloud, &local, &["node-0"], grace).await;
    tokio::time::sleep(grace.saturating_sub(took.unwrap_or(grace))).await;
    set_endpoints(&slices, &state, LOCAL_SERVICE, &[(0, true, true, false)]).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let samples = sampler.stop().await;
    let last = samples
        .last()
        .and_then(|s| s.answer.clone())
        .unwrap_or_default();
    println!(
        "old pod gone; the client now reaches {}",
        echo_field(&last, "namespace").unwrap_or("nothing")
    );
    rows.push(vec![
        "rolling update".to_owned(),
        followed(took),
        samples.len().to_string(),
        failed(&samples).to_string(),
    ]);

    say(&format!(
        "3. node-2 tainted {DELETION_TAINT}: it leaves {CLUSTER_SERVICE}'s load balancer"
    ));
    wait_in_service(&cloud, &cluster, &["node-0", "node-1", "node-2"], wait).await;
    let sampler = start_sampler(&state, &cluster, Duration::from_millis(50));
    let taint = json!({"spec": {"taints": [{"key": DELETION_TAINT, "value": "1700000000",
        "effect": "NoSchedule"}]}});
    nodes
        .patch("node-2", &PatchParams::default(), &Patch::Merge(&taint))
        .await?;
    let took = wait_in_service(&cloud, &cluster, &["node-0", "node-1"], wait).await;
    let samples = sampler.stop().await;
    let node2 = state.node("node-2")?;
    let answer = report::health_from(&state.lab_binary, &cloud.ns, sock(node2.ip, 10256)).await;
    println!(
        "node-2's 10256 /healthz: {}; out of the load balancer after {} (its failing check, or \
         the controller deregistering it: tainted nodes leave the node set, whichever is first)",
        answer.map_or_else(|| report::NO_ANSWER.to_owned(), |a| a.status.to_string()),
        followed(took)
    );
    rows.push(vec![
        "node tainted for deletion".to_owned(),
        followed(took),
        samples.len().to_string(),
        failed(&samples).to_string(),
    ]);
    nodes
        .patch(
            "node-2",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"taints": null}})),
        )
        .await?;

    say("what the client saw (a request every 50 ms, 20 ms during the rolling update)");
    let headers = ["STEP", "LOAD_BALANCER_FOLLOWED_IN", "REQUESTS", "FAILED"];
    print!("{}", render_table(&headers, &rows));
    Ok(())
}
