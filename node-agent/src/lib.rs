//! portico-agent: the per-node half of Portico.
//!
//! ```text
//!   main ─▶ Args ─▶ run(): logging, client, admin server ─▶ API server reachable
//!                        ─▶ run::run(): watches ─▶ dataplane syncs, health servers ─▶ ready
//! ```
// Denied rather than forbidden so that `announcer::packet_socket`, the one module that binds raw
// sockets, can allow it; every other module stays free of `unsafe`.
#![deny(unsafe_code)]

pub mod announce_only;
pub mod announcer;
pub mod args;
pub mod dataplane;
pub mod health;
pub mod iptables;
pub mod memory;
pub mod metrics;
pub mod nftables;
pub mod node_info;
pub mod proxier;
pub mod required_programs;
pub mod run;
pub mod slice_warnings;
pub mod stores;
pub mod sync_schedule;
pub mod trim;
pub mod view;

use std::process::ExitCode;

pub use args::Args;
use portico_runtime::{shutdown, startup};

const BINARY: &str = "portico-agent";

/// Runs the agent until SIGTERM or SIGINT. Start-up errors print one line to standard error and
/// give a non-zero exit code.
pub async fn run(args: Args) -> ExitCode {
    if args.cleanup {
        if let Some(missing) = required_programs::check(&[required_programs::IPTABLES]) {
            eprintln!("{BINARY}: {missing}");
            return ExitCode::FAILURE;
        }
        return cleanup().await;
    }
    let node_name = match args.node_name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => {
            eprintln!("{BINARY}: --node-name (or NODE_NAME) must name this node");
            return ExitCode::from(2);
        }
    };
    if args.min_sync_period > args.sync_period {
        eprintln!("{BINARY}: --min-sync-period must not be longer than --sync-period");
        return ExitCode::from(2);
    }
    if args.sync_period > args.full_sync_period {
        eprintln!("{BINARY}: --sync-period must not be longer than --full-sync-period");
        return ExitCode::from(2);
    }
    let announce_only = args.proxy_mode == args::ProxyMode::Off;
    // Checked before anything starts, so a node without the tools gets one line naming them.
    let dataplane_programs = match args.proxy_mode {
        args::ProxyMode::Nftables => required_programs::NFT,
        _ => required_programs::IPTABLES,
    };
    if !announce_only
        && let Some(missing) =
            required_programs::check(&[dataplane_programs, required_programs::CONNTRACK])
    {
        eprintln!("{BINARY}: {missing}");
        return ExitCode::FAILURE;
    }
    let (registry, metrics) = metrics::registry(&node_name);
    let started = match startup::start(BINARY, &args.log, &args.client, &args.admin, registry).await
    {
        Ok(started) => started,
        Err(code) => return code,
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        node = %node_name,
        admin_addr = %args.admin.admin_addr,
        "starting"
    );
    tokio::select! {
        _ = startup::wait_for_api_server(&started.client) => {}
        _ = shutdown::signal() => return ExitCode::SUCCESS,
    }
    if announce_only {
        return announce_only::run(
            &args,
            &node_name,
            started.client,
            started.readiness,
            metrics.l2.clone(),
            shutdown::signal(),
        )
        .await;
    }
    run::run(
        &args,
        &node_name,
        started.client,
        started.readiness,
        metrics,
        shutdown::signal(),
    )
    .await
}

/// `--cleanup`: removes Portico's iptables chains and jumps (the announcer's mangle chain too)
/// and its nftables tables, of both families, whichever mode ran.
async fn cleanup() -> ExitCode {
    let failures = dataplane::backend::cleanup_all(None).await;
    // The L2 announcer's hand-back chain (mangle), whichever mode ran.
    announcer::handoff_rules::HandoffRules::remove_any().await;
    for (mode, e) in &failures {
        eprintln!("{BINARY}: cleanup of the {mode} rules failed: {e}");
    }
    if failures.is_empty() {
        println!("{BINARY}: removed Portico's iptables and nftables rules");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
