//! `--proxy-mode off`: the agent beside kube-proxy (or another service proxy), as MetalLB's
//! speaker runs: it announces the VIPs and nothing else. No rules, and no health check
//! listeners, since kube-proxy already serves the healthCheckNodePorts and port 10256 and a
//! second bind would fail.

use std::process::ExitCode;

use portico_runtime::Readiness;

use crate::Args;

/// Runs the announcer until `shutdown` resolves, then leaves the membership.
pub async fn run(
    args: &Args,
    node_name: &str,
    client: kube::Client,
    readiness: Readiness,
    metrics: crate::metrics::AnnouncerMetrics,
    shutdown: impl std::future::Future<Output = ()>,
) -> ExitCode {
    tracing::info!(node = %node_name, "--proxy-mode off: announcing VIPs only (no rules, no health check listeners)");
    let changed = std::sync::Arc::new(tokio::sync::Notify::new());
    let watches = readiness.watches();
    let shared =
        crate::stores::ServiceStores::spawn(&client, watches, std::slice::from_ref(&changed));
    let announcer = crate::announcer::spawn(
        args,
        node_name,
        client,
        &readiness,
        crate::announcer::Dataplane::Off,
        shared,
        changed,
        metrics,
    );
    // Readiness still waits for the watches (the admin server reports each one).
    readiness.set(true);
    shutdown.await;
    announcer.stop().await;
    ExitCode::SUCCESS
}
