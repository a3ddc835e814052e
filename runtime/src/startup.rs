//! The start-up both binaries share: logging, client, admin server, then waiting for the API
//! server. Errors a user can fix print one line to standard error and end the process non-zero.

use std::process::ExitCode;
use std::time::Duration;

use prometheus_client::registry::Registry;

use crate::{AdminArgs, AdminServer, ClientArgs, LogArgs, Readiness};

/// What a binary has once it has started.
pub struct Started {
    pub client: kube::Client,
    pub readiness: Readiness,
}

/// Sets up logging, the client and the admin server (already serving). On failure the error has
/// been printed as `binary: message` and the exit code to return is given.
pub async fn start(
    binary: &str,
    log: &LogArgs,
    client: &ClientArgs,
    admin: &AdminArgs,
    registry: Registry,
) -> Result<Started, ExitCode> {
    let fail = |message: String, code: u8| {
        eprintln!("{binary}: {message}");
        ExitCode::from(code)
    };
    log.init().map_err(|e| fail(e.to_string(), 2))?;
    let client = client.client().await.map_err(|e| fail(e.to_string(), 1))?;
    let readiness = Readiness::default();
    let server = AdminServer::bind(admin, registry, readiness.clone())
        .await
        .map_err(|e| fail(e.to_string(), 1))?;
    tokio::spawn(server.serve());
    Ok(Started { client, readiness })
}

/// Retries until the API server answers. A binary that cannot reach its API server stays alive
/// (the API server may be restarting) but not ready.
pub async fn wait_for_api_server(client: &kube::Client) {
    let mut delay = Duration::from_millis(500);
    loop {
        match client.apiserver_version().await {
            Ok(info) => {
                tracing::info!(server = %info.git_version, "connected to the API server");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "API server not reachable");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}
