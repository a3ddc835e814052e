//! One dataplane sync: the cluster's Services and EndpointSlices, seen from this node, become
//! rules (through the `--proxy-mode` backend), health check listeners with their local
//! endpoint counts, and deleted conntrack entries for UDP endpoints that went away.
//!
//! ```text
//!   Services, EndpointSlices ─▶ dataplane::desired_state ─▶ dyn Backend (iptables | nftables)
//!                                        │                 ─▶ local_ready_endpoints ─▶ health servers
//!                                        └─ old vs new ───▶ stale_udp_flows ─▶ conntrack -D
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use kube::runtime::events::{Event, EventType, Recorder};
use portico_api::keys::reason::FAILED_TO_START_SERVICE_HEALTHCHECK;

use crate::dataplane::backend::{Backend, BackendError};
use crate::dataplane::conntrack::{delete_stale_udp_flows, stale_udp_flows};
use crate::dataplane::{
    DesiredState, NodeContext, Protocol, desired_state_of, local_ready_endpoints,
};
use crate::health::{ServiceHealthServers, ServiceKey, SyncHealth};
use crate::metrics::{AgentMetrics, SyncLabels, WriteLabels};
use crate::slice_warnings::SliceWarnings;
use crate::sync_schedule::SyncRequest;
use crate::view::{ServiceView, SliceView};

pub struct Proxier {
    node: NodeContext,
    backend: Box<dyn Backend>,
    last_state: DesiredState,
    health_servers: ServiceHealthServers,
    sync_health: SyncHealth,
    recorder: Option<Recorder>,
    metrics: AgentMetrics,
    slice_warnings: SliceWarnings,
}

impl Proxier {
    pub fn new(
        node: NodeContext,
        backend: Box<dyn Backend>,
        health_servers: ServiceHealthServers,
        sync_health: SyncHealth,
        recorder: Option<Recorder>,
        metrics: AgentMetrics,
    ) -> Self {
        Proxier {
            node,
            backend,
            last_state: DesiredState::default(),
            health_servers,
            sync_health,
            recorder,
            metrics,
            slice_warnings: SliceWarnings::default(),
        }
    }

    /// The node's addresses changed (its Node object was updated).
    pub fn set_node(&mut self, node: NodeContext) {
        self.node = node;
    }

    /// Brings the dataplane to the given cluster state: what changed, plus a drift check
    /// (`Check`) or a rewrite of every chain (`Full`).
    pub async fn sync(
        &mut self,
        services: &[Arc<ServiceView>],
        slices: &[Arc<SliceView>],
        request: SyncRequest,
    ) -> Result<(), BackendError> {
        let started = Instant::now();
        self.slice_warnings
            .observe(slices, &self.metrics.endpoint_slice_problems);
        let state = desired_state_of(services.iter().map(|s| &**s), slices.iter().map(|s| &**s));
        let result = self.sync_rules(&state, request).await;
        let kind = match request {
            SyncRequest::Changes => "partial",
            SyncRequest::Check => "check",
            SyncRequest::Full => "full",
        };
        self.metrics
            .sync_duration
            .get_or_create(&SyncLabels { kind })
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            self.metrics
                .sync_errors
                .get_or_create(&crate::metrics::ErrorLabels { error: e.label() })
                .inc();
            return result;
        }
        let flows = stale_udp_flows(&self.last_state, &state, &self.node.node_name);
        if !flows.is_empty()
            && let Err(e) = delete_stale_udp_flows(&flows, None).await
        {
            // Stale entries expire on their own; a failure here must not fail the sync.
            tracing::warn!(error = %e, "could not delete stale UDP conntrack entries");
        }
        self.sync_health_checks(&state, services).await;
        // Only UDP ports matter to the next stale-flow comparison: keeping the whole state
        // would hold a second copy of every port and endpoint (the render cache has one).
        let mut state = state;
        state.ports.retain(|key, _| key.protocol == Protocol::Udp);
        self.last_state = state;
        self.sync_health.updated();
        if request != SyncRequest::Changes {
            // The first sync is the agent's memory peak, and every check builds the whole
            // desired state again: give back what they freed (`memory`).
            crate::memory::release_free_memory();
        }
        Ok(())
    }

    /// The periodic check when the stores have not changed since the last successful sync:
    /// no desired state is built unless the backend finds drift. False when the caller must
    /// run `sync` instead.
    pub async fn check_unchanged(&mut self) -> Result<bool, BackendError> {
        let started = Instant::now();
        let writes = match self.backend.check_unchanged().await {
            Ok(Some(writes)) => writes,
            Ok(None) => return Ok(false),
            Err(e) => {
                self.metrics
                    .sync_errors
                    .get_or_create(&crate::metrics::ErrorLabels { error: e.label() })
                    .inc();
                return Err(e);
            }
        };
        self.metrics
            .sync_duration
            .get_or_create(&SyncLabels { kind: "check" })
            .observe(started.elapsed().as_secs_f64());
        self.count_writes(writes);
        self.sync_health.updated();
        Ok(true)
    }

    async fn sync_rules(
        &mut self,
        state: &DesiredState,
        request: SyncRequest,
    ) -> Result<(), BackendError> {
        let writes = match request {
            SyncRequest::Full => self.backend.sync_full(state, &self.node).await?,
            SyncRequest::Check => self.backend.check(state, &self.node).await?,
            SyncRequest::Changes => self.backend.sync(state, &self.node).await?,
        };
        self.count_writes(writes);
        Ok(())
    }

    /// Counts the backend's writes in `portico_agent_dataplane_writes_total{backend,kind}`.
    fn count_writes(&self, writes: Vec<crate::dataplane::backend::WriteKind>) {
        let backend = self.backend.mode();
        for kind in writes {
            self.metrics
                .writes
                .get_or_create(&WriteLabels { backend, kind })
                .inc();
        }
    }

    /// Opens and closes health check listeners and updates their counts.
    async fn sync_health_checks(&mut self, state: &DesiredState, services: &[Arc<ServiceView>]) {
        let mut ports = BTreeMap::new();
        for port in state.ports.values() {
            if let Some(health_port) = port.health_check_node_port {
                ports.insert(
                    ServiceKey::new(&port.key.namespace, &port.key.name),
                    health_port,
                );
            }
        }
        let counts: BTreeMap<ServiceKey, usize> =
            local_ready_endpoints(state, &self.node.node_name)
                .into_iter()
                .map(|((namespace, name), count)| (ServiceKey::new(namespace, name), count))
                .collect();
        self.health_servers.sync_endpoints(&counts);
        for failure in self.health_servers.sync_services(&ports).await {
            tracing::warn!(error = %failure, "health check server not started");
            let service = services.iter().find(|s| {
                *s.namespace == failure.service.namespace && *s.name == failure.service.name
            });
            if let (Some(recorder), Some(service)) = (&self.recorder, service) {
                let event = Event {
                    type_: EventType::Warning,
                    reason: FAILED_TO_START_SERVICE_HEALTHCHECK.into(),
                    note: Some(format!("node {}: {failure}", self.node.node_name)),
                    action: "Listen".into(),
                    secondary: None,
                };
                if let Err(e) = recorder.publish(&event, &service.object_ref()).await {
                    tracing::warn!(error = %e, "could not publish an Event");
                }
            }
        }
    }
}
