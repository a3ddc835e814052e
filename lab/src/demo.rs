//! `portico-lab up | down | scenario source-ip | kubectl ...`: the one-command demo. `up` starts
//! the lab as detached background processes, records them in `<state-dir>/state.json` and shows
//! what the seed tutorial ("Using Source IP") shows; `down` stops them all.
//!
//! ```text
//!  up ─▶ portico-lab netns (holds the namespaces; tears them down on SIGTERM)
//!     ─▶ portico-lab apiserver (198.18.0.1:6443 and 127.0.0.1:6443; kubeconfig in state dir)
//!     ─▶ CRDs, Nodes, AddressPool, Services, EndpointSlices (kube-rs)
//!     ─▶ echo servers (pod namespaces), portico-controller (host), portico-agent (each node)
//!     ─▶ L2Announcement: the agents answer ARP for the VIPs (pool on-link for the client), then the tables
//!  down ─▶ SIGTERM (then SIGKILL) to every recorded PID, newest first; removes the state dir
//! ```

use std::path::{Path, PathBuf};

use clap::{Args as ClapArgs, Subcommand};
use ipnet::Ipv4Net;

pub mod cloud_up;
pub mod failover;
pub mod gcp;
pub mod gcp_up;
pub mod health_checks;
pub mod l2;
pub mod objects;
pub mod report;
pub mod scenario;
pub mod state;
pub mod up;

use state::LabState;

/// Where `up` keeps the state file, the kubeconfig and the logs.
#[derive(ClapArgs, Debug, Clone)]
pub struct StateDirArg {
    /// Directory for state.json, the kubeconfig and every process's log.
    #[arg(
        long,
        global = true,
        env = "PORTICO_LAB_STATE_DIR",
        default_value = "/run/portico-lab"
    )]
    pub state_dir: PathBuf,
}

/// Flags of `portico-lab up`.
#[derive(ClapArgs, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    pub state: StateDirArg,
    /// Where portico-controller and portico-agent are (default: next to this executable).
    #[arg(long, env = "PORTICO_LAB_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// The /24 joining host, client and nodes.
    #[arg(long, env = "PORTICO_LAB_NODE_SUBNET", default_value = "198.18.0.0/24")]
    pub node_subnet: Ipv4Net,
    /// The AddressPool the VIPs come from (default: 198.19.<third octet of the node subnet>.0/28).
    #[arg(long, env = "PORTICO_LAB_POOL")]
    pub pool: Option<Ipv4Net>,
    /// The API server's port (on the host leg and on loopback).
    #[arg(long, env = "PORTICO_LAB_PORT", default_value_t = 6443)]
    pub port: u16,
    /// Where the load balancers come from: bare metal (address pools, the L2 announcer) or a
    /// cloud's API stand-in with the lab cloud in front of the nodes (aws: moto).
    #[arg(
        long,
        env = "PORTICO_LAB_PROVIDER",
        value_enum,
        default_value = "baremetal"
    )]
    pub provider: DemoProvider,
}

/// The `--provider` of `portico-lab up`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoProvider {
    Baremetal,
    Aws,
    /// The fake Compute server, target pools served by the GCP lab cloud (pass-through).
    Gcp,
}

/// The scenarios `portico-lab scenario` replays.
#[derive(Subcommand, Debug)]
pub enum Scenario {
    /// The "Using Source IP" tutorial: Cluster, then Local, with real traffic.
    SourceIp,
    /// Kills the agent of the node that owns a VIP (then, separately, takes that node's link
    /// down) and prints how long the client's traffic to the VIP was interrupted.
    Failover,
    /// On a lab with a cloud (`up --provider aws`): an endpoint move, a rolling update and a
    /// node tainted for deletion, with traffic through the lab cloud's load balancers; prints how
    /// long the load balancer took to follow and how many requests failed.
    HealthChecks,
}

/// Flags of `portico-lab scenario`.
#[derive(ClapArgs, Debug)]
pub struct ScenarioArgs {
    #[command(flatten)]
    pub state: StateDirArg,
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// Flags of `portico-lab kubectl`.
#[derive(ClapArgs, Debug)]
pub struct KubectlArgs {
    #[command(flatten)]
    pub state: StateDirArg,
    /// Passed to kubectl as they are.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// The running lab's state, or an error saying how to start one.
pub fn running_lab(dir: &Path) -> anyhow::Result<LabState> {
    LabState::load(dir)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no lab is up (no {}); start one with `portico-lab up`",
            state::state_file(dir).display()
        )
    })
}

/// Stops every recorded process, newest first, and removes the netns holder's namespaces if
/// it could not remove them itself.
pub fn stop_all(state: &LabState) {
    for process in state.processes.iter().rev() {
        if !process.alive() {
            println!("{:<12} pid {:<8} already gone", process.name, process.pid);
            continue;
        }
        // The namespace holder deletes the namespaces (and kills what runs in them): give it
        // time.
        let grace = if process.name == "netns" { 20 } else { 5 };
        let killed = process.stop(std::time::Duration::from_secs(grace));
        let how = if killed { "killed" } else { "stopped" };
        println!("{:<12} pid {:<8} {how}", process.name, process.pid);
    }
    let holder = crate::netns::names::namespace_owner(&format!("{}x", state.prefix));
    if let Some(holder) = holder {
        match crate::netns::leftovers::sweep(|pid| pid == holder) {
            Ok(swept) if !swept.namespaces.is_empty() => {
                println!("removed namespaces {}", swept.namespaces.join(" "))
            }
            Ok(_) => println!("namespaces {}* are gone", state.prefix),
            Err(error) => println!("could not list namespaces: {error}"),
        }
    }
}

/// `portico-lab down`.
pub fn down(dir: &Path) -> anyhow::Result<()> {
    let Some(state) = LabState::load(dir)? else {
        println!(
            "nothing to do: no lab is up ({} does not exist)",
            state::state_file(dir).display()
        );
        return Ok(());
    };
    stop_all(&state);
    std::fs::remove_dir_all(dir)?;
    println!("removed {}; the lab is down", dir.display());
    Ok(())
}

/// kubectl: the one on PATH, else the one `scripts/install` put into the checkout's `.venv`
/// on a system without kubectl (this binary lives in `<checkout>/target/<profile>/`).
pub fn kubectl_program() -> std::path::PathBuf {
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("kubectl").is_file())
    });
    if !on_path
        && let Ok(exe) = std::env::current_exe()
        && let Some(venv) = exe
            .ancestors()
            .map(|dir| dir.join(".venv/bin/kubectl"))
            .find(|path| path.is_file())
    {
        return venv;
    }
    "kubectl".into()
}

/// `portico-lab kubectl ARGS...`: kubectl with the lab's kubeconfig; exits with its status.
pub fn kubectl(args: KubectlArgs) -> anyhow::Result<()> {
    let state = running_lab(&args.state.state_dir)?;
    let status = std::process::Command::new(kubectl_program())
        .arg("--kubeconfig")
        .arg(&state.kubeconfig)
        .args(&args.args)
        .status()
        .map_err(|error| anyhow::anyhow!("could not run kubectl: {error}"))?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

/// A kube client from the lab's kubeconfig.
pub async fn client(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}
