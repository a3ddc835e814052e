//! portico-agent: the per-node half of Portico.
//!
//! ```text
//!   main ─▶ Args ─▶ run(): logging, client, admin server ─▶ API server reachable ─▶ ready
//! ```
#![forbid(unsafe_code)]

pub mod args;
pub mod dataplane;
pub mod iptables;
pub mod health;
pub mod metrics;

use std::process::ExitCode;

pub use args::Args;
use portico_runtime::{shutdown, startup};

const BINARY: &str = "portico-agent";

/// Runs the agent until SIGTERM or SIGINT. Start-up errors print one line to standard error and
/// give a non-zero exit code.
pub async fn run(args: Args) -> ExitCode {
    if args.node_name.trim().is_empty() {
        eprintln!("{BINARY}: --node-name (or NODE_NAME) must name this node");
        return ExitCode::from(2);
    }
    let (registry, _metrics) = metrics::registry(&args.node_name);
    let started = match startup::start(BINARY, &args.log, &args.client, &args.admin, registry).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        node = %args.node_name,
        admin_addr = %args.admin.admin_addr,
        "starting"
    );
    tokio::select! {
        _ = startup::wait_for_api_server(&started.client) => started.readiness.set(true),
        _ = shutdown::signal() => return ExitCode::SUCCESS,
    }
    shutdown::signal().await;
    ExitCode::SUCCESS
}
