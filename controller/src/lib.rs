//! portico-controller: watches Services of type LoadBalancer and gives them an external address,
//! from an `AddressPool` on bare metal or from the cloud's load balancer.
//!
//! ```text
//!   main ─▶ Args ─▶ run(): logging, client, admin server ─▶ API server reachable ─▶ ready
//!                                                 └─▶ leader election ─▶ acts while it leads
//! ```
#![forbid(unsafe_code)]

pub mod args;
pub mod ipam;
pub mod leader;
pub mod metrics;

use std::process::ExitCode;

pub use args::{Args, Provider};
use portico_runtime::{shutdown, startup};

const BINARY: &str = "portico-controller";

/// Runs the controller until SIGTERM or SIGINT. Start-up errors print one line to standard error
/// and give a non-zero exit code.
pub async fn run(args: Args) -> ExitCode {
    let leader_config = match args.leader.config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{BINARY}: {e}");
            return ExitCode::from(2);
        }
    };
    let (registry, metrics) = metrics::registry();
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
    let (mut leading, releaser) = args.leader.campaign(started.client.clone(), leader_config);
    let shutdown = shutdown::signal();
    tokio::pin!(shutdown);
    loop {
        let is_leader = *leading.borrow_and_update();
        metrics.leader.set(i64::from(is_leader));
        tracing::info!(leader = is_leader, "leadership");
        tokio::select! {
            changed = leading.changed() => if changed.is_err() { break },
            _ = &mut shutdown => break,
        }
    }
    if let Some(mut releaser) = releaser
        && *leading.borrow()
        && let Err(e) = releaser.release().await
    {
        tracing::warn!(error = %e, "could not release the leader Lease; it expires on its own");
    }
    ExitCode::SUCCESS
}
