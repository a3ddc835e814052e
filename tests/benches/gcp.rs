//! GCP provider benchmark (a bench, not a timed test): the real portico-controller binary with
//! `--provider gcp` against the fake Compute server on loopback and the lab API server; the same
//! measures as the AWS bench (benches/aws.rs), to set beside its table.
//!
//!   cargo build --release -p portico-controller && cargo bench -p portico-tests --bench gcp
//!
//! Prints one table: Compute API calls per Service (reads and writes) to create 100 Services' NLBs
//! and for a no-op resync of all of them (each Service touched with an annotation Portico does
//! not read, so each is reconciled once with nothing to change), and the wall time until all 100
//! are converged (every Service's `portico.dev/LoadBalancerReady` is True).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, NodeSpec};
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use portico_tests::cli::http_get;
use portico_tests::fake_compute::{FakeCompute, PROJECT, REGION, spawn_gcp_controller};
use portico_tests::lab_cluster::{LabCluster, Process, mk_lb_service, ready_condition};
use portico_tests::moto::metric_sum;

const SERVICES: usize = 100;
const NODES: usize = 3;
const PARALLEL_CREATES: usize = 16;

fn sum(process: &Process, prefix: &str, labels: &[&str]) -> f64 {
    let (_, body) = http_get(process.admin, "/metrics").expect("metrics");
    metric_sum(&body, prefix, labels)
}

fn calls(process: &Process, kind: &str) -> f64 {
    sum(
        process,
        "portico_controller_gcp_calls_total{",
        &[&format!("kind=\"{kind}\"")],
    )
}

fn reconciles(process: &Process) -> f64 {
    sum(
        process,
        "portico_controller_reconciles_total{",
        &["result=\"success\""],
    )
}

async fn ready_services(api: &Api<k8s_openapi::api::core::v1::Service>) -> usize {
    api.list(&ListParams::default())
        .await
        .map(|list| {
            list.items
                .iter()
                .filter(|s| ready_condition(s).is_some_and(|c| c.status == "True"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let fake = FakeCompute::start().await;
    let cluster = LabCluster::start().await;
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    for i in 0..NODES {
        let node = Node {
            metadata: ObjectMeta {
                name: Some(format!("node-{i}")),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                provider_id: Some(format!("gce://{PROJECT}/{REGION}-a/node-{i}")),
                ..Default::default()
            }),
            ..Default::default()
        };
        nodes.create(&PostParams::default(), &node).await.unwrap();
    }
    let controller = spawn_gcp_controller(&cluster, &fake.endpoint(), "controller");
    let api = cluster.services("default");

    // Create: 100 Services, 16 at a time, until every one is Ready.
    let started = Instant::now();
    let names: Vec<String> = (0..SERVICES).map(|i| format!("svc-{i:03}")).collect();
    for chunk in names.chunks(PARALLEL_CREATES) {
        futures::future::join_all(chunk.iter().map(|name| {
            let api = api.clone();
            let service = mk_lb_service(name, 80, &[]);
            async move { api.create(&PostParams::default(), &service).await }
        }))
        .await
        .into_iter()
        .for_each(|created| {
            created.expect("create a Service");
        });
    }
    while ready_services(&api).await < SERVICES {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let converge = started.elapsed();
    // Trailing reconciles of the creation (the controller's own watch events) settle first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (create_reads, create_writes) = (calls(&controller, "read"), calls(&controller, "write"));

    // No-op resync: every Service reconciled once more with nothing to change.
    let before = reconciles(&controller);
    let touch = serde_json::json!({"metadata": {"annotations": {"example.com/touched": "1"}}});
    for chunk in names.chunks(PARALLEL_CREATES) {
        futures::future::join_all(chunk.iter().map(|name| {
            let (api, touch) = (api.clone(), touch.clone());
            async move {
                api.patch(name, &PatchParams::default(), &Patch::Merge(&touch))
                    .await
            }
        }))
        .await;
    }
    while reconciles(&controller) < before + SERVICES as f64 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resynced = reconciles(&controller) - before;
    let resync_reads = calls(&controller, "read") - create_reads;
    let resync_writes = calls(&controller, "write") - create_writes;
    let throttled = sum(
        &controller,
        "portico_controller_gcp_calls_total{",
        &["result=\"throttled\""],
    );

    let per = |n: f64, of: f64| n / of.max(1.0);
    let services = SERVICES as f64;
    let mut rows = BTreeMap::new();
    rows.insert(
        "1 create: Compute reads per Service",
        format!("{:.2}", per(create_reads, services)),
    );
    rows.insert(
        "2 create: Compute writes per Service",
        format!("{:.2}", per(create_writes, services)),
    );
    rows.insert(
        "3 no-op resync: Compute reads per Service",
        format!("{:.2}", per(resync_reads, resynced)),
    );
    rows.insert(
        "4 no-op resync: Compute writes per Service",
        format!("{:.2}", per(resync_writes, resynced)),
    );
    rows.insert(
        "5 converge 100 Services against the fake (wall)",
        format!("{:.1} s", converge.as_secs_f64()),
    );
    // + 0.0: an empty float sum is -0.0.
    rows.insert("6 throttled answers", format!("{}", throttled + 0.0));
    println!(
        "\nGCP provider, {SERVICES} Services x 1 port, {NODES} nodes, fake Compute on loopback \
         (operation polls count as reads; writes are also counted by the fake: {})",
        fake.writes()
    );
    println!("| measure | value |\n| --- | --- |");
    for (name, value) in rows {
        println!("| {} | {value} |", &name[2..]);
    }
}
