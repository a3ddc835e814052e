//! Cloud provider benchmark (a bench, not a timed test): the real portico-controller binary with
//! `--provider aws` against moto and with `--provider gcp` against the fake Compute server, both
//! on loopback with the lab API server, in one run and one table.
//!
//!   cargo build --release -p portico-controller && cargo bench -p portico-tests --bench cloud
//!
//! For each provider: cloud API calls per Service (reads and writes) to create 100 Services'
//! load balancers, and for a no-op resync of all of them (each Service touched with an
//! annotation Portico does not read, so each is reconciled once with nothing to change), and the
//! wall time until all 100 are converged (every Service's `portico.dev/LoadBalancerReady` is
//! True). GCP's reads include the Operation polls after each write.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use portico_tests::cli::http_get;
use portico_tests::fake_compute::{FakeCompute, PROJECT, REGION, spawn_gcp_controller};
use portico_tests::lab_cluster::{
    LabCluster, Process, mk_cloud_node, mk_lb_service, ready_condition,
};
use portico_tests::moto::{Moto, metric_sum, spawn_aws_controller};

const SERVICES: usize = 100;
const NODES: usize = 3;
const PARALLEL_CREATES: usize = 16;

/// One provider's figures.
struct Figures {
    create_reads: f64,
    create_writes: f64,
    resync_reads: f64,
    resync_writes: f64,
    converge: Duration,
    throttled: f64,
}

fn sum(process: &Process, prefix: &str, labels: &[&str]) -> f64 {
    let (_, body) = http_get(process.admin, "/metrics").expect("metrics");
    // + 0.0: an empty float sum is -0.0.
    metric_sum(&body, prefix, labels) + 0.0
}

async fn ready_services(api: &Api<Service>) -> usize {
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

async fn create_nodes(cluster: &LabCluster, provider_ids: &[String]) {
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    for (i, provider_id) in provider_ids.iter().enumerate() {
        let node = mk_cloud_node(&format!("node-{i}"), provider_id, &[], &[]);
        nodes.create(&PostParams::default(), &node).await.unwrap();
    }
}

/// Creates 100 Services, waits until they are Ready, then touches each once (a no-op resync),
/// reading the controller's `calls_metric` (`portico_controller_<provider>_calls_total`).
async fn measure(cluster: &LabCluster, controller: &Process, calls_metric: &str) -> Figures {
    let calls = |kind: &str| sum(controller, calls_metric, &[&format!("kind=\"{kind}\"")]);
    let reconciles = || {
        sum(
            controller,
            "portico_controller_reconciles_total{",
            &["result=\"success\""],
        )
    };
    let api = cluster.services("default");

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
    let (create_reads, create_writes) = (calls("read"), calls("write"));

    let before = reconciles();
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
    while reconciles() < before + SERVICES as f64 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resynced = (reconciles() - before).max(1.0);
    let services = SERVICES as f64;
    Figures {
        create_reads: create_reads / services,
        create_writes: create_writes / services,
        resync_reads: (calls("read") - create_reads) / resynced,
        resync_writes: (calls("write") - create_writes) / resynced,
        converge,
        throttled: sum(controller, calls_metric, &["result=\"throttled\""]),
    }
}

async fn aws() -> Option<Figures> {
    let Some(moto) = Moto::start().await else {
        eprintln!("moto is not installed (scripts/install test installs it): AWS left out");
        return None;
    };
    let instances = moto.setup(NODES);
    let cluster = LabCluster::start().await;
    let ids: Vec<String> = instances
        .iter()
        .map(|instance| format!("aws:///us-east-1a/{instance}"))
        .collect();
    create_nodes(&cluster, &ids).await;
    let controller = spawn_aws_controller(&cluster, &moto.endpoint(), "controller", &[]);
    Some(measure(&cluster, &controller, "portico_controller_aws_calls_total{").await)
}

async fn gcp() -> Figures {
    let fake = FakeCompute::start().await;
    let cluster = LabCluster::start().await;
    let ids: Vec<String> = (0..NODES)
        .map(|i| format!("gce://{PROJECT}/{REGION}-a/node-{i}"))
        .collect();
    create_nodes(&cluster, &ids).await;
    let controller = spawn_gcp_controller(&cluster, &fake.endpoint(), "controller");
    measure(&cluster, &controller, "portico_controller_gcp_calls_total{").await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let aws = aws().await;
    let gcp = gcp().await;
    let column = |f: &dyn Fn(&Figures) -> String| (aws.as_ref().map_or("–".to_owned(), f), f(&gcp));
    let rows: [(&str, (String, String)); 6] = [
        (
            "create: API reads per Service",
            column(&|f| format!("{:.2}", f.create_reads)),
        ),
        (
            "create: API writes per Service",
            column(&|f| format!("{:.2}", f.create_writes)),
        ),
        (
            "no-op resync: API reads per Service",
            column(&|f| format!("{:.2}", f.resync_reads)),
        ),
        (
            "no-op resync: API writes per Service",
            column(&|f| format!("{:.2}", f.resync_writes)),
        ),
        (
            "converge 100 Services (wall)",
            column(&|f| format!("{:.1} s", f.converge.as_secs_f64())),
        ),
        ("throttled answers", column(&|f| format!("{}", f.throttled))),
    ];
    println!(
        "\n{SERVICES} Services x 1 port, {NODES} nodes; AWS against moto, GCP against the fake \
         Compute server (its reads include Operation polls), both on loopback"
    );
    println!("| measure | AWS (ELBv2 NLB) | GCP (target pool) |\n| --- | --- | --- |");
    for (name, (aws, gcp)) in rows {
        println!("| {name} | {aws} | {gcp} |");
    }
}
