//! `portico-lab scenario failover`: how long the client's traffic to a VIP stops when the node
//! that announces it fails. A Service `failover` (Cluster) gets its endpoint on an echo pod of
//! another node than the VIP's owner, so that the owner's failure only takes the announcement
//! away; then, while the client sends a request every 25 ms:
//!
//! ```text
//!   agent killed (SIGKILL) ─▶ the others notice (membership) ─▶ new owner's gratuitous ARP
//!   ─▶ first request answered through the new owner   = interrupted   ─▶ agent restarted
//!   owner's link down       ─▶ (the same)              = interrupted   ─▶ link up, routes back
//! ```
//!
//! A killed agent leaves its node's rules in place, so its node goes on forwarding until the
//! client's neighbour entry moves: "interrupted" counts until the first answer through another
//! node, not until the first answer.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, PostParams};

use super::l2::{self, LAN_INTERFACE};
use super::objects::{self, NAMESPACE, SERVICE_PORT};
use super::report::{render_table, say};
use super::state::LabState;
use super::up::{agent_command, sock, spawn_detached, wait_for_vip};
use crate::netns::cmd;
use crate::netns::echo::echo_field;
use crate::netns::sampler::{Outage, Sampler, error_lines, failed, longest_gap, outage_after};

const SERVICE: &str = "failover";
/// Nodes whose pod runs an echo server (`up` starts them on node-0 and node-1).
const ECHO_NODES: [&str; 2] = ["node-0", "node-1"];
/// A request every 25 ms, each given up after 1 s.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(25);
pub const SAMPLE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long to wait for a new owner before calling the failover failed.
const GIVE_UP: Duration = Duration::from_secs(15);

/// "until answered via new owner" is the failover time the bench reports; the gap is what a
/// client felt (a killed agent's node goes on forwarding, so it can be short); the failed
/// requests are those that got no answer at all (reset, refused or timed out).
pub const FAILOVER_HEADERS: [&str; 7] = [
    "event",
    "old owner",
    "new owner",
    "until answered via new owner",
    "longest gap between answers",
    "requests that failed",
    "requests sent",
];

/// Printed under the table: what each duration and count is.
pub const FAILOVER_LEGEND: &str = "until answered via new owner: from the failure to the first \
request answered through another node; longest gap between answers: the longest time the \
client went without an answer; requests that failed: requests (one every 25 ms, 1 s timeout) \
that got no answer at all";

/// The ways the owner fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    AgentKilled,
    LinkDown,
    /// SIGTERM, then started again at once (a rolling update): a planned handover and back.
    AgentRestarted,
}

impl Failure {
    pub fn label(self) -> &'static str {
        match self {
            Failure::AgentKilled => "agent SIGKILL",
            Failure::LinkDown => "link down",
            Failure::AgentRestarted => "agent restart (SIGTERM)",
        }
    }
}

/// One failure of the VIP's owner, as the client saw it.
#[derive(Clone, Debug)]
pub struct Run {
    pub failure: Failure,
    pub old_owner: String,
    /// The node the client's neighbour entry moved to.
    pub new_owner: Option<String>,
    /// None when no request was answered through another node within the wait.
    pub outage: Option<Outage>,
    /// The longest time without an answered request, from the failure on.
    pub longest_gap: Option<Duration>,
    /// Requests that failed over the whole sampling (for a restart: leaving and coming back).
    pub failed: usize,
    /// Why each of them failed (the probe's first line).
    pub failures: Vec<String>,
    pub sent: usize,
}

impl Run {
    pub fn row(&self) -> Vec<String> {
        vec![
            self.failure.label().to_owned(),
            self.old_owner.clone(),
            self.new_owner.clone().unwrap_or_else(|| "none".into()),
            match &self.outage {
                Some(outage) => format!("{} ms", outage.interrupted.as_millis()),
                None => format!("> {} s", GIVE_UP.as_secs()),
            },
            match self.longest_gap {
                Some(gap) => format!("{} ms", gap.as_millis()),
                None => "-".into(),
            },
            self.failed.to_string(),
            self.sent.to_string(),
        ]
    }
}

/// The node whose ARP answer for `vip` the client gets.
async fn current_owner(state: &LabState, vip: Ipv4Addr) -> anyhow::Result<String> {
    super::report::retry(l2::ANNOUNCE_WAIT, || async {
        let macs = l2::arping_reply_macs(&state.client_ns, vip, 1).ok()?;
        l2::node_with_mac(state, macs.first()?)
    })
    .await
    .ok_or_else(|| {
        anyhow::anyhow!(
            "no node answered ARP for {vip} within {:?}",
            l2::ANNOUNCE_WAIT
        )
    })
}

/// The Service's EndpointSlice with its one endpoint on an echo pod of a node other than `owner`.
fn slice_away_from(state: &LabState, owner: &str) -> anyhow::Result<EndpointSlice> {
    let node = ECHO_NODES
        .iter()
        .find(|n| **n != owner)
        .expect("two echo nodes");
    let node = state.node(node)?;
    Ok(objects::echo_slice(SERVICE, &node.name, node.pods[0].ip))
}

/// Puts the Service's one endpoint on an echo pod of a node other than `owner`.
async fn endpoint_away_from(
    slices: &Api<EndpointSlice>,
    state: &LabState,
    owner: &str,
) -> anyhow::Result<()> {
    let slice = slice_away_from(state, owner)?;
    let name = slice.metadata.name.clone().unwrap_or_default();
    // Already there: leave it, so that a measurement starts from a quiet Service (see
    // `recreate_endpoint_slice` for the other case).
    if let Ok(Some(current)) = slices.get_opt(&name).await
        && current.endpoints == slice.endpoints
    {
        return Ok(());
    }
    recreate(slices, &slice).await
}

/// Deletes and recreates the Service's EndpointSlice, unchanged, as a controller replacing a
/// slice does: for a moment the Service has no endpoints, and a node's proxier, which batches
/// changes (`--min-sync-period`), may have written that moment and not yet the slice's return.
/// A failure measured right after shows whether a node takes the VIP over before its rules
/// have caught up (the announcer's takeover gate keeps it from doing so).
pub async fn recreate_endpoint_slice(
    state: &LabState,
    slices: &Api<EndpointSlice>,
    vip: Ipv4Addr,
) -> anyhow::Result<()> {
    let owner = current_owner(state, vip).await?;
    recreate(slices, &slice_away_from(state, &owner)?).await
}

async fn recreate(slices: &Api<EndpointSlice>, slice: &EndpointSlice) -> anyhow::Result<()> {
    let name = slice.metadata.name.clone().unwrap_or_default();
    let _ = slices.delete(&name, &DeleteParams::default()).await;
    super::report::retry(Duration::from_secs(10), || async {
        slices.create(&PostParams::default(), slice).await.ok()
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("could not create EndpointSlice {name}"))?;
    Ok(())
}

/// Fails `owner` as `failure` says; returns how to undo it.
fn fail(state: &LabState, owner: &str, failure: Failure) -> anyhow::Result<Vec<String>> {
    let node = state.node(owner)?;
    match failure {
        Failure::AgentKilled => {
            let name = format!("agent-{owner}");
            let record = state
                .processes
                .iter()
                .find(|p| p.name == name)
                .ok_or_else(|| anyhow::anyhow!("no {name} in the state file"))?;
            cmd::run_args(&["kill", "-KILL", &record.pid.to_string()])?;
            Ok(Vec::new())
        }
        Failure::AgentRestarted => {
            let name = format!("agent-{owner}");
            let record = state
                .processes
                .iter()
                .find(|p| p.name == name)
                .ok_or_else(|| anyhow::anyhow!("no {name} in the state file"))?;
            // It leaves the membership and hands over before it exits.
            if record.stop(Duration::from_secs(10)) {
                anyhow::bail!("{name} did not stop within 10 s of SIGTERM");
            }
            Ok(Vec::new())
        }
        Failure::LinkDown => {
            // Taking the link down drops its routes: keep them to put back.
            let routes = cmd::run_args(&["ip", "-n", &node.ns, "-4", "route", "show"])?;
            cmd::run_args(&["ip", "-n", &node.ns, "link", "set", LAN_INTERFACE, "down"])?;
            Ok(routes.lines().map(str::to_owned).collect())
        }
    }
}

/// Undoes `fail`: restarts the agent, or brings the link and its routes back.
fn recover(
    dir: &Path,
    state: &mut LabState,
    owner: &str,
    failure: Failure,
    routes: &[String],
) -> anyhow::Result<()> {
    let node = state.node(owner)?.clone();
    match failure {
        Failure::AgentKilled | Failure::AgentRestarted => {
            // `up` found the agent beside portico-lab (a bench runs from elsewhere).
            let agent = state
                .lab_binary
                .parent()
                .map(|dir| dir.join("portico-agent"))
                .filter(|path| path.is_file())
                .ok_or_else(|| {
                    anyhow::anyhow!("no portico-agent beside {}", state.lab_binary.display())
                })?;
            let name = format!("agent-{owner}");
            state.processes.retain(|p| p.name != name);
            let command = agent_command(&agent, state, &node);
            spawn_detached(dir, state, &name, &agent, command)?;
        }
        Failure::LinkDown => {
            cmd::run_args(&["ip", "-n", &node.ns, "link", "set", LAN_INTERFACE, "up"])?;
            for route in routes {
                let mut args = vec!["ip", "-n", &node.ns, "-4", "route", "replace"];
                args.extend(route.split_whitespace());
                let _ = cmd::run_args(&args);
            }
        }
    }
    Ok(())
}

/// The Service the failures are measured on: created if missing; its VIP.
pub async fn prepare(state: &LabState) -> anyhow::Result<(Api<EndpointSlice>, Ipv4Addr)> {
    let client = super::client(&state.kubeconfig).await?;
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    if services.get_opt(SERVICE).await?.is_none() {
        services
            .create(
                &PostParams::default(),
                &objects::echo_service(SERVICE, "Cluster"),
            )
            .await?;
    }
    let service = wait_for_vip(&services, SERVICE).await?;
    let vip = objects::ingress_ip(&service).expect("waited");
    Ok((Api::namespaced(client, NAMESPACE), vip))
}

/// Fails the VIP's owner once as `failure` says, undoes it, and waits until the owner is back.
pub async fn measure(
    dir: &Path,
    state: &mut LabState,
    slices: &Api<EndpointSlice>,
    vip: Ipv4Addr,
    failure: Failure,
) -> anyhow::Result<Run> {
    let owner = current_owner(state, vip).await?;
    endpoint_away_from(slices, state, &owner).await?;
    let owner_ip = state.node(&owner)?.ip.to_string();
    let target: SocketAddr = sock(vip, SERVICE_PORT);
    // Traffic flows through the owner first.
    super::report::retry(Duration::from_secs(30), || async {
        let body = crate::netns::probe::probe_from(
            &state.lab_binary,
            &state.client_ns,
            target,
            crate::netns::probe::ProbeMode::Tcp,
            "/",
            SAMPLE_TIMEOUT,
        )
        .await
        .ok()?;
        (echo_field(&body, "client_address") == Some(owner_ip.as_str())).then_some(())
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("{target} is not answered through {owner}"))?;
    let sampler = Sampler::start(
        state.lab_binary.clone(),
        state.client_ns.clone(),
        target,
        SAMPLE_EVERY,
        SAMPLE_TIMEOUT,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mark = Instant::now();
    let routes = fail(state, &owner, failure)?;
    let new_owner = moved_from(state, vip, &owner, mark + GIVE_UP).await;
    if failure == Failure::AgentRestarted {
        // The restart is measured whole: handing over, and taking the VIP back.
        recover(dir, state, &owner, failure, &routes)?;
        moved_from(
            state,
            vip,
            new_owner.as_deref().unwrap_or(""),
            mark + GIVE_UP * 2,
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let samples = sampler.stop().await;
    if failure != Failure::AgentRestarted {
        recover(dir, state, &owner, failure, &routes)?;
    }
    let outage = outage_after(&samples, mark, |body: &str| {
        echo_field(body, "client_address").is_some_and(|seen| seen != owner_ip)
    });
    // Back to the start: the recovered node owns the VIP again (it wins the hash).
    moved_from(
        state,
        vip,
        new_owner.as_deref().unwrap_or(""),
        Instant::now() + GIVE_UP,
    )
    .await;
    Ok(Run {
        failure,
        old_owner: owner,
        new_owner,
        outage,
        longest_gap: longest_gap(&samples, mark),
        failed: failed(&samples),
        failures: error_lines(&samples)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        sent: samples.len(),
    })
}

/// Waits (until `deadline`) for the client's neighbour entry for `vip` to name another node
/// than `owner`; that node.
async fn moved_from(
    state: &LabState,
    vip: Ipv4Addr,
    owner: &str,
    deadline: Instant,
) -> Option<String> {
    loop {
        let seen = l2::owner_seen_by_client(state, vip).filter(|o| o != owner);
        if seen.is_some() || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn failover(dir: &Path) -> anyhow::Result<()> {
    let mut state = super::running_lab(dir)?;
    let (slices, vip) = prepare(&state).await?;
    say(&format!(
        "Service {SERVICE} ({vip}, Cluster): its endpoint on another node than the VIP's owner; \
         a request every {} ms from the client",
        SAMPLE_EVERY.as_millis()
    ));
    let mut rows = Vec::new();
    for failure in [Failure::AgentKilled, Failure::LinkDown] {
        say(&format!("{}: the owner of {vip} fails", failure.label()));
        let row = measure(dir, &mut state, &slices, vip, failure).await?.row();
        println!("{}", row.join("  "));
        rows.push(row);
    }
    say("how long the client's traffic to the VIP was interrupted");
    print!("{}", render_table(&FAILOVER_HEADERS, &rows));
    println!("{FAILOVER_LEGEND}");
    Ok(())
}
