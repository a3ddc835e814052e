//! Controller scale benchmark (a bench, not a timed test): the real portico-controller binary
//! against the lab API server.
//!
//!   cargo build --release -p portico-controller && cargo bench -p portico-tests --bench controller
//!
//! Prints one table: time from Service creation to status written (p50, p99 over 1,000
//! Services created one after another), total time to assign 10,000 Services from a /16 pool
//! (created 16 at a time), and the controller's resident memory with 10,000 Services.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Service;
use kube::runtime::{WatchStreamExt, watcher};
use portico_tests::lab_cluster::{LabCluster, ingress_ips};

const LATENCY_SAMPLES: usize = 1_000;
const SCALE_SERVICES: usize = 10_000;
const PARALLEL_CREATES: usize = 16;

/// When each Service was first seen with an address, from one watch.
type Seen = Arc<Mutex<HashMap<String, Instant>>>;

fn watch_addresses(cluster: &LabCluster) -> Seen {
    let seen: Seen = Arc::default();
    let api = cluster.services("default");
    let sink = seen.clone();
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default()).applied_objects();
        futures::pin_mut!(stream);
        while let Ok(Some(service)) = stream.try_next().await {
            let service: Service = service;
            if !ingress_ips(&service).is_empty() {
                let name = service.metadata.name.clone().unwrap_or_default();
                sink.lock()
                    .unwrap()
                    .entry(name)
                    .or_insert_with(Instant::now);
            }
        }
    });
    seen
}

async fn wait_until(seen: &Seen, name: &str) -> Instant {
    loop {
        if let Some(at) = seen.lock().unwrap().get(name) {
            return *at;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// A LoadBalancer Service without node ports: 11,000 Services would exhaust the 2,768 ports of
/// the NodePort range, as in a real cluster.
fn mk_lb_service(name: &str, port: i32, annotations: &[(&str, &str)]) -> Service {
    let mut service = portico_tests::lab_cluster::mk_lb_service(name, port, annotations);
    service
        .spec
        .as_mut()
        .unwrap()
        .allocate_load_balancer_node_ports = Some(false);
    service
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cluster = LabCluster::start().await;
    cluster.create_pool("bench", &["198.19.0.0/16"], true).await;
    let controller = cluster.spawn_controller("bench-controller", &["--log-level", "warn"]);
    let seen = watch_addresses(&cluster);
    let services = cluster.services("default");

    // Latency: one Service at a time, from the create call to the watch seeing its address.
    let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
    for i in 0..LATENCY_SAMPLES {
        let name = format!("lat-{i}");
        let started = Instant::now();
        services
            .create(&Default::default(), &mk_lb_service(&name, 80, &[]))
            .await
            .unwrap();
        latencies.push(wait_until(&seen, &name).await - started);
    }
    latencies.sort();

    // Throughput: 10,000 Services created 16 at a time, until the last one has its address.
    let started = Instant::now();
    futures::stream::iter(0..SCALE_SERVICES)
        .map(|i| {
            let services = services.clone();
            async move {
                let name = format!("scale-{i}");
                services
                    .create(&Default::default(), &mk_lb_service(&name, 80, &[]))
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(PARALLEL_CREATES)
        .collect::<Vec<_>>()
        .await;
    let created = started.elapsed();
    for i in 0..SCALE_SERVICES {
        wait_until(&seen, &format!("scale-{i}")).await;
    }
    let assigned = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = controller.pid().expect("controller runs");
    let (rss, peak) = (rss_kib(pid, "VmRSS:"), rss_kib(pid, "VmHWM:"));

    println!("| measurement | value | aim |");
    println!("| --- | --- | --- |");
    println!(
        "| create → status, p50 ({LATENCY_SAMPLES} Services) | {:.1} ms | |",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3
    );
    println!(
        "| create → status, p99 | {:.1} ms | < 50 ms |",
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "| {SCALE_SERVICES} Services created ({PARALLEL_CREATES} at a time) | {:.2} s | |",
        created.as_secs_f64()
    );
    println!(
        "| {SCALE_SERVICES} Services assigned from a /16 (lab API server included) | {:.2} s | < 10 s |",
        assigned.as_secs_f64()
    );
    println!(
        "| controller RSS with {} Services (peak) | {:.1} MiB ({:.1} MiB) | < 150 MB |",
        LATENCY_SAMPLES + SCALE_SERVICES,
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
}
