//! Controller scale benchmark (a bench, not a timed test): the real portico-controller binary
//! against the lab API server.
//!
//!   cargo build --release -p portico-controller && cargo bench -p portico-tests --bench controller
//!   cargo bench -p portico-tests --bench controller -- burst restart   # some scenarios only
//!
//! Scenarios (all by default), each printing a table:
//! - `latency`: create → status (p50, p99) over 1,000 Services created one after another, the
//!   total time to assign 10,000 more from a /16 pool (created 16 at a time), and the RSS.
//! - `burst`: 10,000 Services in 50 namespaces created concurrently at a steady 340 per second
//!   while the controller runs: create → IP (p50, p99, max), total time, reconciles per Service
//!   (the controller's own counter), controller CPU and RSS.
//! - `restart` (after `burst`, on its 10,000 Services): the controller restarted; time until
//!   `/readyz` answers 200 and until every Service was looked at again, RSS after, and the
//!   writes the restart caused (Service updates, Events, pool status writes; must stay 0).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use portico_api::AddressPool;
use portico_tests::cli::http_get;
use portico_tests::lab_cluster::{LabCluster, Process, ingress_ips};

const LATENCY_SAMPLES: usize = 1_000;
const SCALE_SERVICES: usize = 10_000;
const PARALLEL_CREATES: usize = 16;
const BURST_SERVICES: usize = 10_000;
const BURST_RATE_PER_SECOND: f64 = 340.0;
const BURST_NAMESPACES: usize = 50;

/// When each Service was first seen with an address, from one watch.
type Seen = Arc<Mutex<HashMap<String, Instant>>>;

fn watch_addresses(api: Api<Service>) -> Seen {
    let seen: Seen = Arc::default();
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// CPU time the process has used (user + system), from /proc (clock ticks of 10 ms).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// The sum of every series of a counter family (all label values), from the admin server.
fn metric_sum(process: &Process, family: &str) -> f64 {
    let Ok((_, body)) = http_get(process.admin, "/metrics") else {
        return 0.0;
    };
    body.lines()
        .filter(|line| {
            line.split(['{', ' '])
                .next()
                .is_some_and(|name| name == family)
        })
        .filter_map(|line| line.split_whitespace().last()?.parse::<f64>().ok())
        .fold(0.0, |sum, value| sum + value)
}

fn ready(process: &Process) -> bool {
    http_get(process.admin, "/readyz").is_ok_and(|(status, _)| status == 200)
}

async fn wait_ready(process: &Process) {
    while !ready(process) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| chosen.is_empty() || chosen.iter().any(|c| c == name);
    if wants("latency") {
        latency_and_scale().await;
    }
    if wants("burst") || wants("restart") {
        burst_and_restart(wants("restart")).await;
    }
}

async fn latency_and_scale() {
    let cluster = LabCluster::start().await;
    cluster.create_pool("bench", &["198.19.0.0/16"], true).await;
    let controller = cluster.spawn_controller("bench-controller", &["--log-level", "warn"]);
    let seen = watch_addresses(cluster.services("default"));
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
    let (rss, peak) = (
        proc_status_kib(pid, "VmRSS:"),
        proc_status_kib(pid, "VmHWM:"),
    );

    println!("| measurement | value | aim |");
    println!("| --- | --- | --- |");
    println!(
        "| create → status, p50 ({LATENCY_SAMPLES} Services) | {:.1} ms | |",
        ms(percentile(&latencies, 0.50))
    );
    println!(
        "| create → status, p99 | {:.1} ms | < 50 ms |",
        ms(percentile(&latencies, 0.99))
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
        mib(rss),
        mib(peak)
    );
    println!();
}

async fn create_namespaces(cluster: &LabCluster) -> Vec<String> {
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    let mut names = Vec::with_capacity(BURST_NAMESPACES);
    for i in 0..BURST_NAMESPACES {
        let name = format!("burst-{i}");
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        api.create(&PostParams::default(), &namespace)
            .await
            .expect("namespace created");
        names.push(name);
    }
    names
}

async fn burst_and_restart(restart: bool) {
    let cluster = LabCluster::start().await;
    cluster.create_pool("bench", &["198.19.0.0/16"], true).await;
    let namespaces = create_namespaces(&cluster).await;
    let mut controller = cluster.spawn_controller("burst-controller", &["--log-level", "warn"]);
    wait_ready(&controller).await;
    let pid = controller.pid().expect("controller runs");
    let seen = watch_addresses(Api::all(cluster.client.clone()));
    let cpu_before = cpu_time(pid);

    // Creates start at a steady rate, each in its own task, so slow answers do not slow the rate.
    let created_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / BURST_RATE_PER_SECOND));
    let mut creates = Vec::with_capacity(BURST_SERVICES);
    for i in 0..BURST_SERVICES {
        ticker.tick().await;
        let api: Api<Service> =
            Api::namespaced(cluster.client.clone(), &namespaces[i % namespaces.len()]);
        let created_at = created_at.clone();
        creates.push(tokio::spawn(async move {
            let name = format!("burst-{i}");
            created_at
                .lock()
                .unwrap()
                .insert(name.clone(), Instant::now());
            api.create(&PostParams::default(), &mk_lb_service(&name, 80, &[]))
                .await
                .expect("Service created");
        }));
    }
    let last_create_started = started.elapsed();
    for create in creates {
        create.await.expect("create task");
    }
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let count = seen.lock().unwrap().len();
        if count >= BURST_SERVICES {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {count} of {BURST_SERVICES} Services got an address"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (mut latencies, last_ip) = {
        let seen = seen.lock().unwrap();
        let created_at = created_at.lock().unwrap();
        let latencies: Vec<Duration> = created_at
            .iter()
            .map(|(name, at)| seen[name].saturating_duration_since(*at))
            .collect();
        (latencies, *seen.values().max().unwrap())
    };
    latencies.sort();
    let total = last_ip - started;
    let cpu = cpu_time(pid).saturating_sub(cpu_before);
    let reconciles = metric_sum(&controller, "portico_controller_reconciles_total");
    let errors = metric_sum(&controller, "portico_controller_reconcile_errors_total");
    // Counted since the retry on a stale cached object was added; before, every 409 failed a reconcile.
    let conflicts = metric_sum(&controller, "portico_controller_api_conflicts_total");
    let (rss, peak) = (
        proc_status_kib(pid, "VmRSS:"),
        proc_status_kib(pid, "VmHWM:"),
    );

    println!("| burst: {BURST_SERVICES} Services in {BURST_NAMESPACES} namespaces | value | aim |");
    println!("| --- | --- | --- |");
    println!(
        "| create rate | {:.0} /s | ≥ 300 /s |",
        BURST_SERVICES as f64 / last_create_started.as_secs_f64()
    );
    println!(
        "| create → IP, p50 / p99 / max | {:.0} ms / {:.0} ms / {:.0} ms | p99 < 1 s |",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap())
    );
    println!(
        "| first create → last IP | {:.1} s | |",
        total.as_secs_f64()
    );
    println!(
        "| reconciles per Service | {:.2} ({reconciles:.0} in all, {errors:.0} failed) | ≤ 2 |",
        reconciles / BURST_SERVICES as f64
    );
    println!("| 409 Conflict answers retried at once | {conflicts:.0} | |");
    println!(
        "| controller CPU during the burst | {:.1} s ({:.0}% of one core) | |",
        cpu.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / total.as_secs_f64()
    );
    println!(
        "| controller RSS after (peak) | {:.1} MiB ({:.1} MiB) | < 100 MB |",
        mib(rss),
        mib(peak)
    );
    println!();

    if !restart {
        return;
    }
    restart_at_scale(&cluster, &mut controller).await;
}

/// What a restart may have written: every Service's resourceVersion, the Events, the pool's.
struct Snapshot {
    services: HashMap<String, String>,
    events: usize,
    pool: String,
}

async fn snapshot(cluster: &LabCluster) -> Snapshot {
    let services = Api::<Service>::all(cluster.client.clone())
        .list(&ListParams::default())
        .await
        .expect("list Services")
        .items
        .into_iter()
        .map(|s| {
            (
                format!(
                    "{}/{}",
                    s.metadata.namespace.unwrap_or_default(),
                    s.metadata.name.unwrap_or_default()
                ),
                s.metadata.resource_version.unwrap_or_default(),
            )
        })
        .collect();
    let events = Api::<Event>::all(cluster.client.clone())
        .list(&ListParams::default())
        .await
        .expect("list Events")
        .items
        .len();
    let pool = Api::<AddressPool>::all(cluster.client.clone())
        .get("bench")
        .await
        .expect("pool")
        .metadata
        .resource_version
        .unwrap_or_default();
    Snapshot {
        services,
        events,
        pool,
    }
}

async fn restart_at_scale(cluster: &LabCluster, controller: &mut Process) {
    // Let the last status writes land (the pool status writer runs once a second).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = snapshot(cluster).await;
    assert!(controller.terminate(), "the controller stops cleanly");

    let started = Instant::now();
    let restarted = cluster.spawn_controller("restarted-controller", &["--log-level", "warn"]);
    wait_ready(&restarted).await;
    let to_ready = started.elapsed();
    let pid = restarted.pid().expect("controller runs");
    // Every Service looked at again (a reconcile each), whatever /readyz said.
    let deadline = Instant::now() + Duration::from_secs(300);
    while metric_sum(&restarted, "portico_controller_reconciles_total") < BURST_SERVICES as f64 {
        assert!(Instant::now() < deadline, "the restarted controller stalls");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let to_caught_up = started.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rss, peak) = (
        proc_status_kib(pid, "VmRSS:"),
        proc_status_kib(pid, "VmHWM:"),
    );
    let after = snapshot(cluster).await;
    let changed_services = after
        .services
        .iter()
        .filter(|(key, rv)| before.services.get(*key) != Some(*rv))
        .count();
    let new_events = after.events.saturating_sub(before.events);
    let pool_writes = usize::from(after.pool != before.pool);

    println!("| restart with {BURST_SERVICES} Services | value | aim |");
    println!("| --- | --- | --- |");
    println!(
        "| start → /readyz 200 | {:.2} s | after the restore and the initial list |",
        to_ready.as_secs_f64()
    );
    println!(
        "| start → every Service reconciled | {:.2} s | |",
        to_caught_up.as_secs_f64()
    );
    println!(
        "| controller RSS after (peak) | {:.1} MiB ({:.1} MiB) | < 100 MB |",
        mib(rss),
        mib(peak)
    );
    println!(
        "| writes caused (Services updated, Events, pool status writes) | {} ({changed_services}, {new_events}, {pool_writes}) | 0 |",
        changed_services + new_events + pool_writes
    );
    println!();
}
