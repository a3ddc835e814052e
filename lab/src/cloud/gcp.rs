//! The GCP lab cloud: a target-pool network load balancer that obeys the (fake) Compute API.
//! It runs inside the lab's cloud namespace (`portico-lab gcp-cloud`), so its health checks
//! come from there and its routes are that namespace's.
//!
//! ```text
//!   every ~1 s: Compute API ─▶ client::snapshot() (rules, pools, checks)
//!       ─▶ checker.set_targets(node IP × pool check)     probes run on their own intervals
//!       ─▶ ports::script() (each rule's protocol and ports only) ─▶ `nft -f`
//!       ─▶ routes::members() ─▶ routes::routes() ─▶ routes::plan() ─▶ `ip route replace|del`
//!       ─▶ PUT /lab/health/{pool} on the fake (targetPools.getHealth answers the same)
//!   a verdict change wakes the loop at once (no wait for the next poll)
//! ```

pub mod client;
pub mod model;
pub mod pinning;
pub mod ports;
pub mod routes;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::{Value, json};

use self::client::ComputeClient;
use self::routes::{Member, Via};
use crate::cloud::checker::prober::{Checker, Target};
use crate::fake_compute::{PROJECT, REGION};
use crate::netns::{NetnsError, cmd};

#[derive(Debug, thiserror::Error)]
pub enum GcpCloudError {
    #[error("{flag}: {message}")]
    Flag { flag: &'static str, message: String },
    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {message}")]
    Answer { what: String, message: String },
    #[error(transparent)]
    Route(#[from] NetnsError),
}

impl GcpCloudError {
    /// A short, stable name for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            GcpCloudError::Flag { .. } => "flag",
            GcpCloudError::Http { .. } => "http",
            GcpCloudError::Answer { .. } => "answer",
            GcpCloudError::Route(_) => "route",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct GcpCloudArgs {
    /// The Compute API to obey (the fake Compute server), `http://IP:PORT`.
    #[arg(long, env = "PORTICO_LAB_GCP_COMPUTE_URL")]
    pub compute_url: String,
    /// A lab node as `NAME=IP`: pool instances are matched to nodes by name; repeat per node.
    #[arg(long = "node", env = "PORTICO_LAB_GCP_NODES", value_delimiter = ',', value_parser = parse_node)]
    pub nodes: Vec<(String, Ipv4Addr)>,
    /// The project whose resources are served.
    #[arg(long, env = "PORTICO_LAB_GCP_PROJECT", default_value = PROJECT)]
    pub project: String,
    /// The region whose forwarding rules and target pools are served.
    #[arg(long, env = "PORTICO_LAB_GCP_REGION", default_value = REGION)]
    pub region: String,
    /// How often the Compute API is read, in milliseconds.
    #[arg(long, env = "PORTICO_LAB_GCP_POLL_MS", default_value_t = 1000)]
    pub poll_ms: u64,
}

fn parse_node(value: &str) -> Result<(String, Ipv4Addr), String> {
    let (name, ip) = value
        .split_once('=')
        .ok_or_else(|| format!("--node {value:?} is not NAME=IP"))?;
    let ip = ip
        .parse()
        .map_err(|e| format!("--node {value:?}: {ip:?} is not an IPv4 address: {e}"))?;
    Ok((name.to_owned(), ip))
}

/// Health reports per pool, as the fake takes them.
fn health_report(members: &BTreeMap<String, Vec<Member>>) -> BTreeMap<String, Value> {
    members
        .iter()
        .map(|(pool, members)| {
            let states: serde_json::Map<String, Value> = members
                .iter()
                .map(|m| (m.instance.clone(), json!(m.health.gcp_state())))
                .collect();
            (pool.clone(), Value::Object(states))
        })
        .collect()
}

/// The L4 hash: GCP picks the instance by source and destination address and port.
const HASH_POLICY: &str = "/proc/sys/net/ipv4/fib_multipath_hash_policy";

/// `portico-lab gcp-cloud`: serves until SIGTERM or SIGINT.
pub async fn run(args: GcpCloudArgs) -> anyhow::Result<()> {
    let client = ComputeClient::new(&args.compute_url, &args.project, &args.region)?;
    std::fs::write(HASH_POLICY, "1").map_err(|e| {
        anyhow::anyhow!("setting {HASH_POLICY} (run in the cloud namespace as root): {e}")
    })?;
    let nodes: BTreeMap<String, Ipv4Addr> = args.nodes.into_iter().collect();
    pin_connections(&nodes)?;
    let checker = Checker::new();
    let mut changed = checker.subscribe();
    let mut current: BTreeMap<Ipv4Addr, Via> = BTreeMap::new();
    let mut reported: BTreeMap<String, Value> = BTreeMap::new();
    let mut port_filter = String::new();
    let mut snapshot = None;
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "gcp-cloud: obeying {}", args.compute_url)?;
        stdout.flush()?;
    }
    let poll = Duration::from_millis(args.poll_ms.max(50));
    let mut next_read = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_read {
            next_read = tokio::time::Instant::now() + poll;
            match client.snapshot().await {
                Ok(read) => snapshot = Some(read),
                Err(error) => {
                    tracing::warn!(%error, label = error.label(), "lab cloud: reading the Compute API failed");
                }
            }
        }
        if let Some(snapshot) = &snapshot {
            let targets: Vec<(Ipv4Addr, _)> = snapshot
                .pools
                .values()
                .filter_map(|pool| Some((pool, pool.check.as_ref()?)))
                .flat_map(|(pool, spec)| {
                    pool.instances
                        .iter()
                        .filter_map(|url| nodes.get(model::url_name(url)))
                        .map(move |ip| (*ip, spec.clone()))
                })
                .collect();
            checker.set_targets(&targets);
            let members = routes::members(snapshot, &nodes, |ip, spec| {
                checker.health(&Target::new(ip, spec))
            });
            let filter = ports::script(&snapshot.rules);
            if filter != port_filter {
                match nft_apply(&filter) {
                    Ok(()) => port_filter = filter,
                    Err(error) => tracing::warn!(%error, "lab cloud: port filter failed"),
                }
            }
            let desired = routes::routes(snapshot, &members);
            let mut failed = false;
            for argv in routes::plan(&current, &desired) {
                match cmd::run(&argv) {
                    Ok(_) => tracing::info!(command = argv.join(" "), "lab cloud: route"),
                    Err(error) => {
                        failed = true;
                        tracing::warn!(%error, "lab cloud: route change failed");
                    }
                }
            }
            // After a failure, plan from nothing next time: `replace` is idempotent, and a
            // route that did not change must not be taken for one that did.
            current = if failed { BTreeMap::new() } else { desired };
            for (pool, report) in health_report(&members) {
                if reported.get(&pool) == Some(&report) {
                    continue;
                }
                match client.report_health(&pool, &report).await {
                    Ok(()) => {
                        reported.insert(pool, report);
                    }
                    Err(error) => {
                        tracing::warn!(%error, pool, "lab cloud: health report failed");
                    }
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep_until(next_read) => {}
            _ = changed.changed() => {}
            () = portico_runtime::shutdown::signal() => return Ok(()),
        }
    }
}

/// Sets up `pinning`: a table and an `ip rule` per node, and the nftables table.
fn pin_connections(nodes: &BTreeMap<String, Ipv4Addr>) -> anyhow::Result<()> {
    for argv in pinning::route_commands(nodes) {
        match cmd::run(&argv) {
            Ok(_) => {}
            // A restarted lab cloud finds its rules in place.
            Err(NetnsError::Command { stderr, .. }) if stderr.contains("File exists") => {}
            Err(error) => return Err(error.into()),
        }
    }
    nft_apply(&pinning::nft_script(nodes))
}

/// Runs an nftables script as one transaction.
fn nft_apply(script: &str) -> anyhow::Result<()> {
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), script)?;
    cmd::run_args(&["nft", "-f", &file.path().to_string_lossy()])?;
    Ok(())
}

/// `portico-lab cloud --provider gcp`: runs `gcp-cloud` inside `--cloud-netns` (the checks and
/// routes must be the cloud namespace's) with `--endpoint` as the Compute API and each
/// `--instance NAME=IP` as a node; prints `lab cloud ready` once it runs, stops it on SIGTERM or
/// SIGINT.
pub async fn run_in_cloud_netns(args: crate::cloud::CloudArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut command = crate::netns::process::command_in(&args.cloud_netns, &exe);
    command
        .args(["gcp-cloud", "--compute-url", &args.endpoint])
        .args(
            args.instances
                .iter()
                .flat_map(|(name, ip)| ["--node".to_owned(), format!("{name}={ip}")]),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    let mut child = crate::netns::NsChild::spawn(&args.cloud_netns, command)?;
    child.wait_for_line("gcp-cloud", Duration::from_secs(10))?;
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "lab cloud ready")?;
        stdout.flush()?;
    }
    portico_runtime::shutdown::signal().await;
    child.kill();
    Ok(())
}
