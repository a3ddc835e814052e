//! Per-Service health check servers (kube-proxy's `service_health.go`): for every LoadBalancer
//! Service with `externalTrafficPolicy: Local`, a listener on its `healthCheckNodePort` that
//! answers any path and method with 200 while this node has a local ready endpoint (and the
//! dataplane is healthy), else 503, so the cloud load balancer sends traffic only to nodes that
//! can serve it without a second hop.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portico_runtime::serve::{ConnectionLimits, serve};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{JSON, NOSNIFF, SyncHealth};

pub use portico_api::ServiceKey;

/// The answer for one probe: pure, so the rules are tested without a socket.
pub fn service_health_answer(
    service: &ServiceKey,
    local_endpoints: usize,
    proxy_healthy: bool,
) -> (StatusCode, String) {
    let status = if local_endpoints > 0 && proxy_healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = ServiceHealthBody {
        service: ServiceRef {
            namespace: &service.namespace,
            name: &service.name,
        },
        local_endpoints,
        service_proxy_healthy: proxy_healthy,
    };
    (status, serde_json::to_string(&body).unwrap_or_default())
}

/// kube-proxy's body, fields in kube-proxy's order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceHealthBody<'a> {
    service: ServiceRef<'a>,
    local_endpoints: usize,
    service_proxy_healthy: bool,
}

#[derive(serde::Serialize)]
struct ServiceRef<'a> {
    namespace: &'a str,
    name: &'a str,
}

/// A health check port that could not be opened; the agent reports it as a Warning Event
/// `FailedToStartServiceHealthcheck` on the Service.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for the health checks of {service}: {source}")]
pub struct BindFailure {
    pub service: ServiceKey,
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

struct Listener {
    port: u16,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Aborting the serve task drops its socket and its connections, so the port is free
        // again at once.
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[derive(Clone)]
struct ProbeState {
    service: ServiceKey,
    local_endpoints: Arc<RwLock<HashMap<ServiceKey, usize>>>,
    sync: SyncHealth,
}

/// Opens and closes the listeners as Services come, go and change port, and answers from the
/// latest local endpoint counts.
pub struct ServiceHealthServers {
    bind_addresses: Vec<IpAddr>,
    local_endpoints: Arc<RwLock<HashMap<ServiceKey, usize>>>,
    sync: SyncHealth,
    listeners: HashMap<ServiceKey, Listener>,
    limits: ConnectionLimits,
}

impl ServiceHealthServers {
    /// `bind_addresses`: the node addresses selected by `--nodeport-addresses`, or the
    /// unspecified address to listen on all of them.
    pub fn new(bind_addresses: Vec<IpAddr>, sync: SyncHealth) -> Self {
        ServiceHealthServers {
            bind_addresses,
            local_endpoints: Arc::default(),
            sync,
            listeners: HashMap::new(),
            limits: ConnectionLimits::default(),
        }
    }

    /// Replaces the default connection limits of every listener opened from now on.
    pub fn with_limits(mut self, limits: ConnectionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Makes the listeners match `wanted` (Service → healthCheckNodePort): closes the ones no
    /// longer wanted or on another port, opens the missing ones. Returns the ports that could
    /// not be opened; they are retried on the next call.
    pub async fn sync_services(&mut self, wanted: &BTreeMap<ServiceKey, u16>) -> Vec<BindFailure> {
        self.listeners
            .retain(|service, listener| wanted.get(service) == Some(&listener.port));
        let mut failures = Vec::new();
        for (service, &port) in wanted {
            if self.listeners.contains_key(service) {
                continue;
            }
            match self.open(service, port).await {
                Ok(listener) => {
                    tracing::info!(service = %service, port, "health check server started");
                    self.listeners.insert(service.clone(), listener);
                }
                Err(failure) => failures.push(failure),
            }
        }
        failures
    }

    /// Replaces the local endpoint counts (Service → distinct local ready endpoint IPs).
    pub fn sync_endpoints(&self, counts: &BTreeMap<ServiceKey, usize>) {
        let mut table = self
            .local_endpoints
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        table.clear();
        table.extend(counts.iter().map(|(k, v)| (k.clone(), *v)));
    }

    /// The ports listened on now, by Service.
    pub fn ports(&self) -> BTreeMap<ServiceKey, u16> {
        self.listeners
            .iter()
            .map(|(k, l)| (k.clone(), l.port))
            .collect()
    }

    async fn open(&self, service: &ServiceKey, port: u16) -> Result<Listener, BindFailure> {
        let state = ProbeState {
            service: service.clone(),
            local_endpoints: self.local_endpoints.clone(),
            sync: self.sync.clone(),
        };
        let router = Router::new().fallback(probe).with_state(state);
        let mut listener = Listener {
            port,
            tasks: Vec::new(),
        };
        for address in &self.bind_addresses {
            let addr = SocketAddr::new(*address, port);
            // On failure `listener` is dropped, closing the addresses already opened.
            let socket = TcpListener::bind(addr)
                .await
                .map_err(|source| BindFailure {
                    service: service.clone(),
                    addr,
                    source,
                })?;
            listener
                .tasks
                .push(tokio::spawn(serve(socket, router.clone(), self.limits)));
        }
        Ok(listener)
    }
}

async fn probe(State(state): State<ProbeState>) -> Response {
    let local_endpoints = state
        .local_endpoints
        .read()
        .map(|table| table.get(&state.service).copied().unwrap_or(0))
        .unwrap_or(0);
    let (status, body) = service_health_answer(
        &state.service,
        local_endpoints,
        state.sync.healthy(Instant::now()),
    );
    let weight = (
        "x-load-balancing-endpoint-weight",
        local_endpoints.to_string(),
    );
    (status, [JSON, NOSNIFF], [weight], body).into_response()
}

#[cfg(test)]
mod tests;
