//! portico-controller: watches Services of type LoadBalancer and gives them an external address,
//! from an `AddressPool` on bare metal or from the cloud's load balancer.
//!
//! ```text
//!   main ─▶ Args ─▶ run(): logging, client, admin server ─▶ API server reachable
//!                      └─▶ leader election ─▶ standby: ready, waits
//!                                          └─▶ leads: restore, reconcile the initial list ─▶ ready
//! ```
#![forbid(unsafe_code)]

pub mod args;
pub mod catch_up;
pub mod cloud;
pub mod conditions;
pub mod ipam;
pub mod leader;
pub mod metrics;
pub mod nodes;
pub mod own_writes;
pub mod pool_status;
pub mod pool_watch;
pub mod providers;
pub mod reconcile;
pub mod run;
pub mod service_filter;
pub mod status;

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
    if let Err(e) = providers::check(&args) {
        eprintln!("{BINARY}: {e}");
        return ExitCode::from(2);
    }
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
        _ = startup::wait_for_api_server(&started.client) => {}
        _ = shutdown::signal() => return ExitCode::SUCCESS,
    }
    // A standby is ready once it reaches the API server (a rollout must not wait for it to
    // lead); the leader only once it has caught up (run::run sets it).
    started.readiness.set(args.leader.leader_elect);
    let identity = args.leader.identity();
    let campaign = args.leader.campaign(started.client.clone(), leader_config);
    let mut leading = campaign.leading.clone();
    let shutdown = shutdown::signal();
    tokio::pin!(shutdown);
    // Wait to lead; a standby replica is healthy and ready, but does nothing.
    while !*leading.borrow_and_update() {
        metrics.leader.set(0);
        tokio::select! {
            changed = leading.changed() => if changed.is_err() { return ExitCode::FAILURE },
            _ = &mut shutdown => return ExitCode::SUCCESS,
        }
    }
    metrics.leader.set(1);
    started.readiness.set(false);
    tracing::info!(identity = %identity, "leading; starting the controller");
    let provider = match providers::build(&args, &metrics).await {
        Ok(provider) => provider,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the provider");
            return ExitCode::from(2);
        }
    };
    let controller = run::run(
        started.client.clone(),
        args.default_class,
        metrics.clone(),
        identity,
        started.readiness.clone(),
        provider,
    );
    tokio::pin!(controller);
    let code = loop {
        tokio::select! {
            result = &mut controller => {
                break match result {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!(error = %e, "controller stopped");
                        ExitCode::FAILURE
                    }
                };
            }
            changed = leading.changed() => {
                if changed.is_err() || !*leading.borrow_and_update() {
                    // As client-go's controllers do: a replica that lost the Lease exits and
                    // starts afresh as a standby, so no stale state outlives its leadership.
                    metrics.leader.set(0);
                    tracing::error!("lost leadership; exiting");
                    return ExitCode::FAILURE;
                }
            }
            _ = &mut shutdown => break ExitCode::SUCCESS,
        }
    };
    campaign.stop().await;
    code
}
