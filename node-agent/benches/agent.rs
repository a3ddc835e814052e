//! The real release agent at scale (a bench, not a timed test): the lab API server in this
//! process, N Services × 5 endpoints (every tenth a LoadBalancer with
//! `externalTrafficPolicy: Local`) written as a real cluster serves them (managedFields from
//! server-side apply, a `last-applied-configuration` annotation, labels), and `portico-agent`
//! in a node network namespace. Prints one table per scale.
//!
//!   cargo build --release -p portico-agent
//!   cargo bench -p portico-agent --bench agent
//!
//! Environment: `BENCH_SCALES` (default `1000,10000`), `BENCH_IDLE_SECS` (the idle minute,
//! default 60), `BENCH_AGENT` (the agent binary, default target/release/portico-agent),
//! `BENCH_AGENT_ARGS` (extra flags, space separated; with `--proxy-mode nftables` the bench reads
//! the rules with nft; `BENCH_AGENT_LOG` keeps the agent's debug log at that path). Root only.

#[path = "agent/node_ns.rs"]
mod node_ns;
#[path = "agent/objects.rs"]
mod objects;
#[path = "agent/process.rs"]
mod process;
#[path = "agent/scale.rs"]
mod scale;

use process::agent_binary;
use scale::bench_scale;

const NODE: &str = "bench-node-1";
const ENDPOINTS: u32 = 5;
const PARALLEL: usize = 16;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    assert!(
        portico_tests::require_root(),
        "the agent bench needs root (network namespaces, iptables)"
    );
    let scales: Vec<u32> = std::env::var("BENCH_SCALES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let idle_secs = env_or("BENCH_IDLE_SECS", 60u64);
    eprintln!("agent: {}", agent_binary().display());
    let mut rows = Vec::new();
    for scale in scales {
        rows.push(bench_scale(scale, idle_secs).await);
    }
    println!(
        "| Services × 5 | first sync, clean | first sync, over existing rules | RSS after first sync | RSS after idle | idle CPU (agent + children) | full syncs while idle | 100 slice updates reflected | Service chains |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for row in rows {
        println!(
            "| {} | {:.2} s | {:.2} s | {:.1} MiB | {:.1} MiB ({} s) | {:.2} % of a core | {} | {:.2} s | {} |",
            row.scale,
            row.clean.as_secs_f64(),
            row.restart.as_secs_f64(),
            row.rss_first as f64 / 1024.0,
            row.rss_minute as f64 / 1024.0,
            row.idle_secs,
            row.idle_cpu * 100.0,
            row.idle_syncs,
            row.churn.as_secs_f64(),
            row.chains,
        );
    }
}
