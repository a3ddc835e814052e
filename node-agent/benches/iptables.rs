//! Sync cost of the iptables dataplane at scale, applied for real inside throwaway network
//! namespaces, on both backends. Not a timed test: it prints a table.
//!
//! Scenarios: a full sync of 1,000 and 10,000 Services (5 endpoints each on other nodes, every
//! tenth a LoadBalancer with a node port) into an empty namespace, and a partial sync of one
//! changed Service among 10,000. "restore" is the time inside iptables-restore during the sync,
//! "sync" the whole sync (inspecting jumps and chains, rendering, restoring), and "raw restore"
//! the time iptables-restore alone needs for the same full input in another empty namespace.
//!
//! Run as root: `cargo bench -p portico-agent --bench iptables`.

use std::process::Command;
use std::time::{Duration, Instant};

use portico_agent::dataplane::IpFamily;
use portico_agent::iptables::ruleset::{ChainNames, ExtraLines};
use portico_agent::iptables::{Backend, Iptables, SyncKind, SyncOutcome, Syncer, render};

#[path = "common/services.rs"]
mod services;
use services::{node, state, state_with_changes};

/// A network namespace for one measurement, removed on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Self {
        let name = format!("ptc-dp-bench-{}-{tag}", std::process::id());
        let status = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add");
        assert!(status.success(), "ip netns add {name}");
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn remove_leftovers() {
    let listing = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    for line in String::from_utf8_lossy(&listing.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if name.starts_with("ptc-dp-bench-") {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

fn ms(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1000.0)
}

struct Row {
    backend: &'static str,
    scenario: String,
    chains: usize,
    rules: usize,
    compute: Duration,
    restore: Duration,
    sync: Duration,
    raw_restore: Option<Duration>,
}

impl Row {
    /// A row for one sync (without a raw restore to compare with).
    fn of(backend: Backend, scenario: String, outcome: &SyncOutcome, sync: Duration) -> Self {
        Row {
            backend: backend.as_str(),
            scenario,
            chains: outcome.chains_written,
            rules: outcome.rules_written,
            compute: outcome.compute,
            restore: outcome.restore,
            sync,
            raw_restore: None,
        }
    }
}

async fn full_sync(backend: Backend, services: usize, rows: &mut Vec<Row>) -> (Netns, Syncer) {
    let desired = state(services, None);
    let netns = Netns::new(&format!("{}-{services}", backend.as_str()));
    let tools = Iptables::new(IpFamily::V4)
        .with_backend(backend)
        .in_netns(&netns.0);
    let mut syncer = Syncer::new(tools.clone(), &node());
    let started = Instant::now();
    let outcome = syncer.sync(&desired, &node()).await.expect("full sync");
    let sync = started.elapsed();
    assert_eq!(outcome.kind, SyncKind::Full);

    // The same rules restored by iptables-restore alone into another empty namespace.
    let raw_netns = Netns::new(&format!("{}-{services}-raw", backend.as_str()));
    let text = render(&desired, &node(), IpFamily::V4)
        .full_restore(&ChainNames::default(), &ExtraLines::default())
        .text;
    let raw_tools = Iptables::new(IpFamily::V4)
        .with_backend(backend)
        .in_netns(&raw_netns.0);
    let started = Instant::now();
    raw_tools.restore(&text).await.expect("raw restore");
    let raw_restore = started.elapsed();
    drop(raw_netns);

    let scenario = format!("full sync, {services} Services");
    rows.push(Row {
        raw_restore: Some(raw_restore),
        ..Row::of(backend, scenario, &outcome, sync)
    });
    (netns, syncer)
}

async fn partial_sync(syncer: &mut Syncer, backend: Backend, services: usize, rows: &mut Vec<Row>) {
    // Alternate between adding and removing a sixth endpoint of one Service, best of five.
    let mut best: Option<Row> = None;
    for round in 0..5_u32 {
        let changed = state(services, round.is_multiple_of(2).then_some(4242));
        let started = Instant::now();
        let outcome = syncer.sync(&changed, &node()).await.expect("partial sync");
        let sync = started.elapsed();
        assert_eq!(outcome.kind, SyncKind::Partial);
        if best.as_ref().is_none_or(|row| sync < row.sync) {
            let scenario = format!("partial sync, 1 of {services} changed");
            best = Some(Row::of(backend, scenario, &outcome, sync));
        }
    }
    rows.extend(best);
}

/// The periodic full resync over rules that are already in place (rewrites every chain).
async fn resync(syncer: &mut Syncer, backend: Backend, services: usize, rows: &mut Vec<Row>) {
    let started = Instant::now();
    let outcome = syncer
        .sync_full(&state(services, None), &node())
        .await
        .expect("full resync");
    let scenario = format!("full resync, {services} Services in place");
    rows.push(Row::of(backend, scenario, &outcome, started.elapsed()));
}

/// A restarted agent's first sync over the rules its earlier run left: a new syncer (no
/// knowledge of the kernel's state) on the same namespace, with `changed` Services (spread over
/// the cluster) changed while no agent ran.
async fn restart(
    netns: &Netns,
    backend: Backend,
    services: usize,
    changed: usize,
    rows: &mut Vec<Row>,
) {
    let tools = Iptables::new(IpFamily::V4)
        .with_backend(backend)
        .in_netns(&netns.0);
    let mut syncer = Syncer::new(tools, &node());
    let desired = state_with_changes(
        services,
        (0..changed).map(|i| i * (services / changed.max(1))),
    );
    let started = Instant::now();
    let outcome = syncer
        .sync(&desired, &node())
        .await
        .expect("sync after a restart");
    let scenario = format!("restart, {services} Services in place, {changed} changed meanwhile");
    rows.push(Row::of(backend, scenario, &outcome, started.elapsed()));
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    if !is_root {
        eprintln!("the iptables bench needs root (network namespaces); skipping");
        return;
    }
    remove_leftovers();
    let mut rows = Vec::new();
    for backend in [Backend::Nft, Backend::Legacy] {
        let _ = full_sync(backend, 1_000, &mut rows).await;
        let (netns, mut syncer) = full_sync(backend, 10_000, &mut rows).await;
        partial_sync(&mut syncer, backend, 10_000, &mut rows).await;
        resync(&mut syncer, backend, 10_000, &mut rows).await;
        restart(&netns, backend, 10_000, 0, &mut rows).await;
        restart(&netns, backend, 10_000, 100, &mut rows).await;
        restart(&netns, backend, 10_000, 1000, &mut rows).await;
    }
    println!(
        "| backend | scenario | chains written | rules written | compute ms | restore ms | sync ms | raw restore ms | sync / raw |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for row in rows {
        let (raw, ratio) = match row.raw_restore {
            Some(raw) => (
                ms(raw),
                format!("{:.2}", row.sync.as_secs_f64() / raw.as_secs_f64()),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.backend,
            row.scenario,
            row.chains,
            row.rules,
            ms(row.compute),
            ms(row.restore),
            ms(row.sync),
            raw,
            ratio
        );
    }
}
