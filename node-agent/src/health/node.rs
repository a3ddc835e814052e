//! The node-level health server (kube-proxy's `:10256`, KEP-3836): `/healthz` tells a load
//! balancer whether to send this node traffic at all; `/livez` tells the kubelet whether the
//! agent is alive. Cluster-policy Services' load balancers probe `/healthz`, so a node being
//! drained leaves every load balancer before its pods go.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use portico_api::keys::node::TO_BE_DELETED_TAINT;
use portico_runtime::serve::{ConnectionLimits, serve};
use tokio::net::TcpListener;

use super::{JSON, NOSNIFF, SyncHealth};

/// Go's zero time, which kube-proxy reports before its first sync.
const NEVER: &str = "0001-01-01T00:00:00Z";

/// Whether the node should receive load-balancer traffic: not being deleted, and not marked for
/// deletion by the cluster autoscaler.
pub fn node_eligible(node: &Node) -> bool {
    let deleting = node.metadata.deletion_timestamp.is_some();
    let marked = node
        .spec
        .as_ref()
        .and_then(|spec| spec.taints.as_ref())
        .is_some_and(|taints| taints.iter().any(|t| t.key == TO_BE_DELETED_TAINT));
    !deleting && !marked
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Healthz,
    Livez,
}

/// The status and body for one probe: pure, so the rules are tested without a socket.
pub fn node_health_answer(
    probe: Probe,
    healthy: bool,
    node_eligible: bool,
    last_updated: Option<Timestamp>,
    now: Timestamp,
) -> (StatusCode, String) {
    let last_updated = last_updated.map_or_else(|| NEVER.to_owned(), |t| t.to_string());
    let body = NodeHealthBody {
        last_updated,
        current_time: now.to_string(),
        // Only /healthz judges eligibility, so only /healthz reports it.
        node_eligible: (probe == Probe::Healthz).then_some(node_eligible),
        healthy,
    };
    let ok = healthy && (probe == Probe::Livez || node_eligible);
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, serde_json::to_string(&body).unwrap_or_default())
}

/// kube-proxy's body, fields in kube-proxy's order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeHealthBody {
    last_updated: String,
    current_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_eligible: Option<bool>,
    healthy: bool,
}

/// Set by the agent whenever its Node object changes.
#[derive(Clone, Debug)]
pub struct NodeEligibility(Arc<AtomicBool>);

impl Default for NodeEligibility {
    fn default() -> Self {
        NodeEligibility(Arc::new(AtomicBool::new(true)))
    }
}

impl NodeEligibility {
    pub fn set(&self, eligible: bool) {
        self.0.store(eligible, Ordering::Relaxed);
    }
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct NodeHealthState {
    sync: SyncHealth,
    eligibility: NodeEligibility,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on --healthz-bind-address {addr}: {source}")]
pub struct NodeHealthBindError {
    addr: SocketAddr,
    source: std::io::Error,
}

pub struct NodeHealthServer {
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
}

impl NodeHealthServer {
    pub async fn bind(
        addr: SocketAddr,
        sync: SyncHealth,
        eligibility: NodeEligibility,
    ) -> Result<Self, NodeHealthBindError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| NodeHealthBindError { addr, source })?;
        let router = Router::new()
            .route("/healthz", get(|s| answer(s, Probe::Healthz)))
            .route("/livez", get(|s| answer(s, Probe::Livez)))
            .with_state(NodeHealthState { sync, eligibility });
        Ok(NodeHealthServer {
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

async fn answer(State(state): State<NodeHealthState>, probe: Probe) -> Response {
    let (status, body) = node_health_answer(
        probe,
        state.sync.healthy(Instant::now()),
        state.eligibility.get(),
        state.sync.last_updated(),
        Timestamp::now(),
    );
    (status, [JSON, NOSNIFF], body).into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::api::core::v1::{NodeSpec, Taint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn mk_node(deleting: bool, taint: Option<&str>) -> Node {
        let mut node = Node::default();
        if deleting {
            node.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        }
        node.spec = Some(NodeSpec {
            taints: taint.map(|key| {
                vec![Taint {
                    key: key.into(),
                    effect: "NoSchedule".into(),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        });
        node
    }

    #[test]
    fn nodes_being_deleted_or_marked_by_the_autoscaler_are_not_eligible() {
        assert!(node_eligible(&mk_node(false, None)));
        assert!(node_eligible(&mk_node(
            false,
            Some("node.kubernetes.io/unschedulable")
        )));
        assert!(!node_eligible(&mk_node(true, None)));
        assert!(!node_eligible(&mk_node(false, Some(TO_BE_DELETED_TAINT))));
    }

    #[test]
    fn healthz_needs_health_and_eligibility_livez_only_health() {
        let now = Timestamp::now();
        let status = |probe, healthy, eligible| {
            node_health_answer(probe, healthy, eligible, Some(now), now).0
        };
        assert_eq!(status(Probe::Healthz, true, true), StatusCode::OK);
        assert_eq!(
            status(Probe::Healthz, true, false),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(Probe::Healthz, false, true),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(Probe::Livez, true, false), StatusCode::OK);
        assert_eq!(
            status(Probe::Livez, false, true),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let (_, body) = node_health_answer(Probe::Livez, true, true, None, now);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["lastUpdated"], NEVER);
        assert!(
            body.get("nodeEligible").is_none(),
            "only /healthz reports eligibility"
        );
    }

    #[tokio::test]
    async fn serves_healthz_livez_and_404_elsewhere_over_http() {
        let sync = SyncHealth::new(Duration::from_secs(60));
        let eligibility = NodeEligibility::default();
        let server = NodeHealthServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            sync.clone(),
            eligibility.clone(),
        )
        .await
        .unwrap();
        let base = format!("http://{}", server.local_addr().unwrap());
        tokio::spawn(server.serve());
        let http = reqwest::Client::new();
        sync.updated();
        let healthz = http.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(healthz.status(), 200);
        assert_eq!(healthz.headers()["content-type"], "application/json");
        assert_eq!(healthz.headers()["x-content-type-options"], "nosniff");
        let body: serde_json::Value = healthz.json().await.unwrap();
        assert_eq!(
            (body["nodeEligible"].clone(), body["healthy"].clone()),
            (true.into(), true.into())
        );
        assert_ne!(body["lastUpdated"], NEVER);

        eligibility.set(false);
        assert_eq!(
            http.get(format!("{base}/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            503
        );
        assert_eq!(
            http.get(format!("{base}/livez"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            http.get(format!("{base}/metrics"))
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
    }

    #[tokio::test]
    async fn a_client_sending_half_a_header_is_cut_off() {
        let server = NodeHealthServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            SyncHealth::new(Duration::from_secs(60)),
            NodeEligibility::default(),
        )
        .await
        .unwrap()
        .with_limits(ConnectionLimits {
            header_read_timeout: Duration::from_secs(1),
            ..ConnectionLimits::default()
        });
        let addr = server.local_addr().unwrap();
        tokio::spawn(server.serve());
        let bound = Duration::from_secs(20);
        assert!(
            portico_runtime::serve::half_header_is_cut_off(addr, bound)
                .await
                .unwrap(),
            "still connected after {bound:?}"
        );
    }
}
