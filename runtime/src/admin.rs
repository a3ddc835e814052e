//! The admin server every binary runs: `/metrics` (Prometheus text, OpenMetrics), `/healthz`
//! (the process is alive) and `/readyz` (it has reached the API server and is doing its job).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use clap::Args;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::serve::{ConnectionLimits, serve};
use crate::watch_health::{FailingWatch, WatchHealth};

#[derive(Args, Clone, Debug)]
pub struct AdminArgs {
    /// Address for the admin server: /metrics, /healthz and /readyz.
    #[arg(long, env = "PORTICO_ADMIN_ADDR", default_value = "0.0.0.0:9472")]
    pub admin_addr: SocketAddr,
}

/// Whether the process is ready to serve: flipped by the binary once its work is running, and
/// not while one of its watches fails (the API server is unreachable or refuses it).
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    ready: Arc<AtomicBool>,
    watches: WatchHealth,
}

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
    pub fn get(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
    /// Where the binary's watches report, for `/readyz`.
    pub fn watches(&self) -> &WatchHealth {
        &self.watches
    }
}

/// `/readyz`: pure, so the wording is tested without a socket.
pub fn readyz_answer(
    ready: bool,
    failing: &[FailingWatch],
    now: std::time::Instant,
) -> (StatusCode, String) {
    if !failing.is_empty() {
        let lines: String = failing
            .iter()
            .map(|f| {
                let secs = now.saturating_duration_since(f.since).as_secs();
                format!(
                    "watch of {} failing for {secs}s: {}\n",
                    f.watch, f.last_error
                )
            })
            .collect();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready\n{lines}"),
        );
    }
    if ready {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n".to_owned())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on --admin-addr {addr}: {source}")]
pub struct AdminBindError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// A bound admin server, not yet serving.
pub struct AdminServer {
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
}

#[derive(Clone)]
struct AdminState {
    registry: Arc<Registry>,
    readiness: Readiness,
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl AdminServer {
    /// Binds the address now, so a port clash is reported at start rather than later.
    pub async fn bind(
        args: &AdminArgs,
        registry: Registry,
        readiness: Readiness,
    ) -> Result<Self, AdminBindError> {
        let listener =
            TcpListener::bind(args.admin_addr)
                .await
                .map_err(|source| AdminBindError {
                    addr: args.admin_addr,
                    source,
                })?;
        let state = AdminState {
            registry: Arc::new(registry),
            readiness,
        };
        let router = Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .with_state(state);
        Ok(AdminServer {
            listener,
            router,
            limits: ConnectionLimits::default(),
        })
    }

    /// Replaces the default connection limits.
    pub fn with_limits(mut self, limits: ConnectionLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the future is dropped.
    pub async fn serve(self) {
        serve(self.listener, self.router, self.limits).await;
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, OPENMETRICS)], body).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {e}\n"),
        )
            .into_response(),
    }
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    readyz_answer(
        state.readiness.get(),
        &state.readiness.watches().failing(),
        std::time::Instant::now(),
    )
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[tokio::test]
    async fn serves_metrics_health_and_readiness() {
        let mut registry = Registry::default();
        let reconciles: Counter = Counter::default();
        registry.sub_registry_with_prefix("portico").register(
            "test_events",
            "Events seen by the test",
            reconciles.clone(),
        );
        reconciles.inc_by(3);
        let readiness = Readiness::default();
        let args = AdminArgs {
            admin_addr: "127.0.0.1:0".parse().unwrap(),
        };
        let server = AdminServer::bind(&args, registry, readiness.clone())
            .await
            .unwrap();
        let base = format!("http://{}", server.local_addr().unwrap());
        tokio::spawn(server.serve());

        let http = reqwest::Client::new();
        let get = |path: &str| http.get(format!("{base}{path}")).send();
        assert_eq!(get("/healthz").await.unwrap().status(), 200);
        assert_eq!(get("/readyz").await.unwrap().status(), 503);
        readiness.set(true);
        assert_eq!(get("/readyz").await.unwrap().status(), 200);
        let mut slices = readiness.watches().reporter("EndpointSlice");
        slices.observe(&Err::<(), _>("connection refused"));
        let failing = get("/readyz").await.unwrap();
        assert_eq!(failing.status(), 503);
        let body = failing.text().await.unwrap();
        assert!(
            body.contains("watch of EndpointSlice failing") && body.contains("connection refused"),
            "{body}"
        );
        slices.succeeded();
        assert_eq!(get("/readyz").await.unwrap().status(), 200);
        let metrics = get("/metrics").await.unwrap();
        assert!(
            metrics.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        let text = metrics.text().await.unwrap();
        assert!(text.contains("portico_test_events_total 3"), "{text}");
    }

    #[tokio::test]
    async fn a_client_sending_half_a_header_is_cut_off() {
        let args = AdminArgs {
            admin_addr: "127.0.0.1:0".parse().unwrap(),
        };
        let server = AdminServer::bind(&args, Registry::default(), Readiness::default())
            .await
            .unwrap()
            .with_limits(ConnectionLimits {
                header_read_timeout: std::time::Duration::from_secs(1),
                ..ConnectionLimits::default()
            });
        let addr = server.local_addr().unwrap();
        tokio::spawn(server.serve());
        let bound = std::time::Duration::from_secs(20);
        assert!(
            crate::serve::half_header_is_cut_off(addr, bound)
                .await
                .unwrap(),
            "still connected after {bound:?}"
        );
    }

    #[tokio::test]
    async fn a_taken_port_is_reported_with_the_flag_name() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let args = AdminArgs {
            admin_addr: taken.local_addr().unwrap(),
        };
        let err = AdminServer::bind(&args, Registry::default(), Readiness::default())
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("--admin-addr"), "{err}");
    }
}
