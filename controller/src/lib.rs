//! portico-controller: watches Services of type LoadBalancer and gives them an external address,
//! from an `AddressPool` on bare metal or from the cloud's load balancer.
//!
//! ```text
//!   main ─▶ Args ─▶ run(): logging, client, admin server ─▶ API server reachable ─▶ ready
//! ```
#![forbid(unsafe_code)]

pub mod args;
pub mod ipam;
pub mod metrics;

use std::process::ExitCode;

pub use args::{Args, Provider};
use portico_runtime::{shutdown, startup};

const BINARY: &str = "portico-controller";

/// Runs the controller until SIGTERM or SIGINT. Start-up errors print one line to standard error
/// and give a non-zero exit code.
pub async fn run(args: Args) -> ExitCode {
    let (registry, _metrics) = metrics::registry();
    let started = match startup::start(BINARY, &args.log, &args.client, &args.admin, registry).await
    {
        Ok(started) => started,
        Err(code) => return code,
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        provider = ?args.provider,
        default_class = args.default_class,
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
