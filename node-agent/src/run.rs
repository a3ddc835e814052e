//! The agent's main loop, once it has a client:
//!
//! ```text
//!   Services ───────┐ shared stores ──change──▶ SyncSchedule (min, check, full period) ──due──▶ Proxier::sync
//!   EndpointSlices ─┤  └──(own change)──▶ L2 announcer                          └─▶ SyncHealth
//!   own Node ───────┘──▶ node addresses, eligibility ─▶ :10256 /healthz
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use portico_runtime::Readiness;
use portico_runtime::reflect::reflect_reported;
use tokio::sync::Notify;

use crate::Args;
use crate::dataplane::NodeContext;
use crate::health::node::{NodeEligibility, NodeHealthServer};
use crate::health::{ServiceHealthServers, SyncHealth, node_eligible};
use crate::metrics::AgentMetrics;
use crate::node_info::{node_ips, nodeport_addresses};
use crate::proxier::Proxier;
use crate::stores::ServiceStores;
use crate::sync_schedule::SyncSchedule;

fn node_context(args: &Args, node_name: &str, node: Option<&Node>) -> NodeContext {
    let ips = if args.node_ip.is_empty() {
        node.map(node_ips).unwrap_or_default()
    } else {
        args.node_ip.clone()
    };
    // As kube-proxy: without --nodeport-addresses every local address serves NodePorts.
    let nodeport_ips = (!args.nodeport_addresses.is_empty())
        .then(|| nodeport_addresses(&ips, &args.nodeport_addresses));
    NodeContext {
        node_name: node_name.to_owned(),
        node_ips: ips,
        pod_cidrs: args.cluster_cidr.clone(),
        nodeport_ips,
    }
}

/// Runs until `shutdown` resolves.
pub async fn run(
    args: &Args,
    node_name: &str,
    client: kube::Client,
    readiness: Readiness,
    metrics: AgentMetrics,
    shutdown: impl std::future::Future<Output = ()>,
) -> ExitCode {
    // Poll the shutdown future once now: that is when it starts listening for SIGTERM, and a
    // signal that comes before (during the first list or the first sync, seconds at scale)
    // would otherwise be lost and the agent never stop.
    tokio::pin!(shutdown);
    if futures::poll!(&mut shutdown).is_ready() {
        return ExitCode::SUCCESS;
    }
    let sync_health = SyncHealth::new(args.sync_period * 2);
    let eligibility = NodeEligibility::default();
    let node_health = match NodeHealthServer::bind(
        args.healthz_bind_address,
        sync_health.clone(),
        eligibility.clone(),
    )
    .await
    {
        Ok(server) => server,
        Err(e) => {
            eprintln!("portico-agent: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::spawn(node_health.serve());

    let changed = Arc::new(Notify::new());
    let announcer_changed = Arc::new(Notify::new());
    let watches = readiness.watches();
    // One set of Service and EndpointSlice stores (trimmed, see `trim`) for the proxier and the
    // announcer, each woken by its own Notify.
    let shared = ServiceStores::spawn(
        &client,
        watches,
        &[changed.clone(), announcer_changed.clone()],
    );
    // The store generation the last successful sync covered: the announcer's takeover gate.
    let (synced, synced_rx) = tokio::sync::watch::channel(None);
    let announcer = crate::announcer::spawn(
        args,
        node_name,
        client.clone(),
        &readiness,
        crate::announcer::Dataplane::Synced(synced_rx),
        shared.clone(),
        announcer_changed,
        metrics.l2.clone(),
    );
    let (services, slices) = (shared.services.clone(), shared.slices.clone());
    let own_node = watcher::Config::default().fields(&format!("metadata.name={node_name}"));
    let nodes = reflect_reported(
        Api::<Node>::all(client.clone()),
        own_node,
        Some(changed.clone()),
        watches,
    );
    let listed = async { tokio::join!(shared.wait_until_ready(), nodes.wait_until_ready()) };
    tokio::select! {
        _ = listed => {}
        _ = &mut shutdown => return ExitCode::SUCCESS,
    }

    let node = nodes.state().into_iter().next();
    let mut context = node_context(args, node_name, node.as_deref());
    let listen_on = if args.nodeport_addresses.is_empty() {
        vec![std::net::IpAddr::from([0, 0, 0, 0])]
    } else {
        nodeport_addresses(&context.node_ips, &args.nodeport_addresses)
    };
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "portico-agent".into(),
            instance: Some(node_name.to_owned()),
        },
    );
    let health_servers = ServiceHealthServers::new(listen_on, sync_health.clone());
    let Some(backend) = crate::dataplane::backend::for_mode(args.proxy_mode, None, &context) else {
        // `off` never reaches here (lib.rs runs the announcer alone).
        return ExitCode::FAILURE;
    };
    let mut proxier = Proxier::new(
        context.clone(),
        backend,
        health_servers,
        sync_health.clone(),
        Some(recorder),
        metrics,
    );
    let mut schedule = SyncSchedule::new(
        args.min_sync_period,
        args.sync_period,
        args.full_sync_period,
    );
    tracing::info!(node = %node_name, node_ips = ?context.node_ips, "dataplane starting");
    // The store generation the last successful sync read exactly (no event in flight then).
    let mut exact: Option<u64> = None;

    loop {
        let due = tokio::time::Instant::from_std(schedule.next_at(Instant::now()));
        tokio::select! {
            _ = changed.notified() => {
                schedule.request();
                sync_health.queued(Instant::now());
                continue;
            }
            _ = tokio::time::sleep_until(due) => {}
            _ = &mut shutdown => {
                announcer.stop().await;
                return ExitCode::SUCCESS;
            }
        }
        let node = nodes.state().into_iter().next();
        eligibility.set(node.as_deref().is_none_or(node_eligible));
        let fresh = node_context(args, node_name, node.as_deref());
        if fresh != context {
            context = fresh;
            proxier.set_node(context.clone());
            exact = None;
        }
        let started = Instant::now();
        let kind = schedule.kind(started);
        tracing::debug!(?kind, "dataplane sync");
        // Read before the stores: the sync covers at least this generation.
        let covered = shared.generation.covered();
        // No event since the last sync read exactly `covered` of them: the periodic check
        // needs no desired state (see `Proxier::check_unchanged`).
        let unchanged = kind == crate::sync_schedule::SyncRequest::Check
            && exact == Some(shared.generation.seen());
        let result = match unchanged {
            true => match proxier.check_unchanged().await {
                Ok(true) => Ok(()),
                Ok(false) => proxier.sync(&services.state(), &slices.state(), kind).await,
                Err(e) => Err(e),
            },
            false => proxier.sync(&services.state(), &slices.state(), kind).await,
        };
        exact = (result.is_ok() && shared.generation.seen() == covered).then_some(covered);
        if let Err(e) = &result {
            tracing::error!(error = %e, "dataplane sync failed; retrying");
        } else {
            readiness.set(true);
            synced.send_replace(Some(covered));
        }
        schedule.finished(kind, started, result.is_err());
    }
}
