//! Throughput of the lab API server over real HTTPS with kube-rs clients: creates per second
//! (sequential and concurrent), and watch fan-out (every change delivered to 10 watchers).
//! Not a timed test; it prints a table. `cargo bench -p portico-lab --bench apiserver`
//! (`-- --quick` for a smaller run).

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams, WatchEvent, WatchParams};
use portico_lab::{ApiServerConfig, LabApiServer};

fn cm(name: String) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some([("bench".to_string(), "yes".to_string())].into()),
            ..Default::default()
        },
        data: Some([("key".to_string(), "value".to_string())].into()),
        ..Default::default()
    }
}

async fn creates(api: &Api<ConfigMap>, prefix: &str, count: usize, concurrency: usize) -> Duration {
    let start = Instant::now();
    futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            let name = format!("{prefix}-{i}");
            async move {
                api.create(&PostParams::default(), &cm(name))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await
        .expect("creates succeed");
    start.elapsed()
}

async fn fan_out(lab: &LabApiServer, count: usize, watchers: usize) -> Duration {
    let client = lab.client().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let rv = api
        .list_metadata(&Default::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let stream = api
            .watch(&WatchParams::default().labels("fanout=yes"), &rv)
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let mut stream = stream.boxed();
            let mut seen = 0;
            while seen < count {
                match stream.next().await {
                    Some(Ok(WatchEvent::Added(_))) => seen += 1,
                    Some(Ok(_)) => {}
                    other => panic!("watch ended early: {other:?}"),
                }
            }
        }));
    }
    let start = Instant::now();
    for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
        futures::stream::iter(chunk.iter().copied())
            .map(|i| {
                let api = api.clone();
                let mut object = cm(format!("fan-{i}"));
                object.metadata.labels = Some([("fanout".to_string(), "yes".to_string())].into());
                async move {
                    api.create(&PostParams::default(), &object)
                        .await
                        .map(|_| ())
                }
            })
            .buffer_unordered(32)
            .try_collect::<Vec<()>>()
            .await
            .unwrap();
    }
    for task in tasks {
        task.await.unwrap();
    }
    start.elapsed()
}

/// Runs a server on a single-threaded runtime of its own thread: the server gets one core.
fn server_on_one_core() -> (std::path::PathBuf, std::sync::mpsc::Sender<()>) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let lab = LabApiServer::start(ApiServerConfig::default())
                .await
                .unwrap();
            ready_tx.send(lab.kubeconfig_path().to_path_buf()).unwrap();
            // Poll for the stop signal without blocking the one thread the server runs on.
            while stop_rx.try_recv().is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            lab.shutdown().await;
        });
    });
    (ready_rx.recv().unwrap(), stop_tx)
}

async fn client_for(kubeconfig: &std::path::Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let count = if quick { 1_000 } else { 5_000 };
    let (one_core_kubeconfig, stop_one_core) = server_on_one_core();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let lab = LabApiServer::start(ApiServerConfig {
            watch_history: 100_000,
            ..Default::default()
        })
        .await
        .unwrap();
        let api: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
        println!(
            "{:<44} {:>8} {:>10} {:>12}",
            "scenario", "objects", "seconds", "per second"
        );
        let row = |name: &str, n: usize, took: Duration| {
            println!(
                "{name:<44} {n:>8} {:>10.3} {:>12.0}",
                took.as_secs_f64(),
                n as f64 / took.as_secs_f64()
            );
        };
        row(
            "create, 1 in flight (HTTPS, kube-rs)",
            count / 5,
            creates(&api, "seq", count / 5, 1).await,
        );
        row(
            "create, 32 in flight (HTTPS, kube-rs)",
            count,
            creates(&api, "par", count, 32).await,
        );
        let one_core: Api<ConfigMap> =
            Api::namespaced(client_for(&one_core_kubeconfig).await, "default");
        row(
            "create, 32 in flight, server on 1 core",
            count,
            creates(&one_core, "core", count, 32).await,
        );
        let _ = stop_one_core.send(());
        let took = fan_out(&lab, count, 10).await;
        row("create with 10 watchers, all delivered", count, took);
        row("  watch events delivered (10 x creates)", count * 10, took);
        lab.shutdown().await;
    });
}
