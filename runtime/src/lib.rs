//! The wiring both binaries share, so that `portico-controller` and `portico-agent` take the same
//! flags for the same things and behave the same at start:
//!
//! ```text
//!   Args ─┬─ ClientArgs ──▶ kube::Client   (or one clear line and exit 1)
//!         ├─ LogArgs    ──▶ tracing subscriber (text | json)
//!         └─ AdminArgs  ──▶ axum: /metrics /healthz /readyz  (served by `serve`, with limits)
//! ```
#![forbid(unsafe_code)]

pub mod admin;
pub mod client;
pub mod leader;
pub mod log;
pub mod reflect;
pub mod serve;
pub mod shutdown;
pub mod startup;
pub mod watch_health;

pub use admin::{AdminArgs, AdminServer, Readiness};
pub use client::{ClientArgs, ClientError};
pub use log::{LogArgs, LogFormat};
pub use serve::ConnectionLimits;
pub use watch_health::WatchHealth;

/// Parses a binary's `Args` with its own default for `--admin-addr`, so the controller and the
/// agent (which shares the node's network namespace) do not clash on one default port.
pub fn parse_args<T: clap::Parser>(admin_addr_default: &'static str) -> T {
    let command = <T as clap::CommandFactory>::command()
        .mut_arg("admin_addr", |arg| arg.default_value(admin_addr_default));
    let matches = command.get_matches();
    <T as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}
