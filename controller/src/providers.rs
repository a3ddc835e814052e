//! The provider seam, shaped like the cloud-provider `LoadBalancer` interface: get, ensure
//! (create or update to match), update hosts (the node set changed), ensure deleted. It hands
//! back a load-balancer status that holds IPs or a hostname; the reconcile knows no provider.
//!
//! ```text
//!   --provider ─▶ build() ─▶ aws | gcp: Arc<dyn LoadBalancerProvider> ─┐
//!                 (None) ─▶ run() ─▶ baremetal::BareMetal (pools) ───────┴▶ cloud.rs reconciles with it
//!   Nodes ─▶ nodes::load_balancer_nodes (once, for providers that use nodes) ─▶ ensure / update_hosts
//! ```

pub mod aws;
pub mod baremetal;
pub mod gcp;

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service};
use kube::runtime::events::EventType;

use portico_api::keys::reason;

use crate::args::{Args, Provider};
use crate::nodes::LbNode;

/// What a load balancer gives a Service: `status.loadBalancer.ingress`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadBalancerStatus {
    pub ingress: Vec<LoadBalancerIngress>,
}

/// The outcome of an ensure: the status, and what had to change (empty when nothing drifted).
#[derive(Clone, Debug, Default)]
pub struct Ensured {
    pub status: LoadBalancerStatus,
    /// One line per created, modified or deleted resource, for the Event.
    pub changes: Vec<String>,
    /// Problems the user can fix that did not stop the rest (a node without a usable
    /// providerID), each naming what to fix.
    pub warnings: Vec<String>,
    /// The provider's own Events (bare metal: `IPAllocated`, `AddressOutsidePool`), published
    /// after the status is written.
    pub events: Vec<ProviderEvent>,
    /// The `LoadBalancerReady` message when the provider words it (None: the load balancer's
    /// addresses and the provider's name).
    pub ready_message: Option<String>,
}

/// An Event a provider asks the reconcile to publish on the Service.
#[derive(Clone, Debug)]
pub struct ProviderEvent {
    pub type_: EventType,
    pub reason: &'static str,
    pub note: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Something on the Service or the cluster the user must fix; names the annotation or field.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The cloud refused or failed a call; names the operation and the cloud's error code.
    #[error("{operation} failed with {code}: {message}")]
    Cloud {
        operation: &'static str,
        code: String,
        message: String,
    },
    /// No address could be assigned from the pools (bare metal).
    #[error("{0}")]
    Allocation(#[source] crate::ipam::IpamError),
}

impl ProviderError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ProviderError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ProviderError::Invalid { .. } => "invalid_input",
            ProviderError::Cloud { code, .. } if is_throttling(code) => "throttled",
            ProviderError::Cloud { .. } => "cloud",
            ProviderError::Allocation(e) => e.label(),
        }
    }

    /// The Warning Event a failed ensure gets: its reason and note.
    pub fn failure_event(&self) -> (&'static str, String) {
        match self {
            ProviderError::Allocation(e) => (reason::ALLOCATION_FAILED, e.to_string()),
            _ => (
                reason::SYNC_LOAD_BALANCER_FAILED,
                format!("Error syncing load balancer: {self}"),
            ),
        }
    }
}

/// The error codes clouds use for "slow down" (retried with backoff, never a user error).
pub fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequests"
            | "429"
            | "rateLimitExceeded"
            | "userRateLimitExceeded"
    )
}

/// A cloud load balancer implementation. Futures are boxed so the reconcile can hold any
/// provider behind one `Arc<dyn ...>`.
pub trait LoadBalancerProvider: Send + Sync {
    /// The `--provider` value, for logs.
    fn name(&self) -> &'static str;

    /// The load balancer's status if it exists.
    fn get<'a>(
        &'a self,
        service: &'a Service,
    ) -> BoxFuture<'a, Result<Option<LoadBalancerStatus>, ProviderError>>;

    /// Creates the load balancer or brings it in line with the Service and the node set.
    fn ensure<'a>(
        &'a self,
        service: &'a Service,
        nodes: &'a [LbNode],
    ) -> BoxFuture<'a, Result<Ensured, ProviderError>>;

    /// Only the node set changed: updates the targets. Returns what changed.
    fn update_hosts<'a>(
        &'a self,
        service: &'a Service,
        nodes: &'a [LbNode],
    ) -> BoxFuture<'a, Result<Vec<String>, ProviderError>>;

    /// Deletes everything the Service's load balancer owns; returns what was deleted (nothing
    /// when it was already gone).
    fn ensure_deleted<'a>(
        &'a self,
        service: &'a Service,
    ) -> BoxFuture<'a, Result<Vec<String>, ProviderError>>;

    /// Deletes the load balancers of Services that no longer exist (`live_uids`: the UIDs of
    /// every Service in the cluster). Returns what was deleted.
    fn delete_orphans<'a>(
        &'a self,
        live_uids: &'a HashSet<String>,
    ) -> BoxFuture<'a, Result<Vec<String>, ProviderError>>;

    /// Whether the load balancer sends traffic to the nodes: then the reconcile computes the
    /// node set, follows Node changes and reports a Service with no eligible node. Bare metal's
    /// agents announce the addresses themselves.
    fn uses_nodes(&self) -> bool {
        true
    }

    /// Whether the reconcile publishes the cloud controllers' lifecycle Events
    /// (`EnsuringLoadBalancer`, `EnsuredLoadBalancer`, `UpdatedLoadBalancer`,
    /// `DeletingLoadBalancer`); bare metal reports in its own Events instead.
    fn lifecycle_events(&self) -> bool {
        true
    }

    /// Called for every Portico Service that already has an address, once, before the first
    /// reconcile (bare metal: so that no new Service takes an address an old one holds).
    fn restore(&self, _service: &Service) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Forgets, without any API call, what it holds for a Service that is not Portico's and
    /// carries no finalizer (bare metal: releases its address).
    fn forget(&self, _service: &Service) {}

    /// The note of the `DeletedLoadBalancer` Event after `ensure_deleted` returned `deleted`
    /// (None: no Event). `stays`: the Service stays, no longer Portico's.
    fn deleted_note(&self, deleted: &[String], _stays: bool) -> Option<String> {
        Some(format!("Deleted load balancer: {}", deleted.join(", ")))
    }
}

/// A start-up error: a provider that does not exist in this build or lacks a flag it needs.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("--provider gcp needs {0}")]
    GcpFlag(&'static str),
    #[error("--provider gcp: the Compute Engine client: {0}")]
    GcpClient(String),
    #[error("--provider aws needs --cluster-name (it names and tags every AWS resource)")]
    NoClusterName,
    #[error(
        "--provider aws: no AWS region; set --aws-region (or AWS_REGION, or a profile's region)"
    )]
    NoRegion,
    #[error(
        "--provider aws: no AWS credentials provider (environment, profile, web identity or instance role)"
    )]
    NoCredentials,
}

/// Checks the flags before anything starts (a usage error exits at once).
pub fn check(args: &Args) -> Result<(), BuildError> {
    match args.provider {
        Provider::Baremetal => Ok(()),
        Provider::Gcp => {
            let empty = |value: &Option<String>| value.as_deref().unwrap_or("").is_empty();
            if empty(&args.aws.cluster_name) {
                Err(BuildError::GcpFlag(
                    "--cluster-name (it names the shared health check and is in every description)",
                ))
            } else if empty(&args.gcp.gcp_project) {
                Err(BuildError::GcpFlag("--gcp-project"))
            } else if empty(&args.gcp.gcp_region) {
                Err(BuildError::GcpFlag("--gcp-region"))
            } else if args.gcp.gcp_node_tags.iter().all(|t| t.trim().is_empty()) {
                Err(BuildError::GcpFlag(
                    "--gcp-node-tags (the firewall rules' targets: the nodes' network tags)",
                ))
            } else {
                Ok(())
            }
        }
        Provider::Aws => {
            if args.aws.cluster_name.as_deref().unwrap_or("").is_empty() {
                Err(BuildError::NoClusterName)
            } else {
                Ok(())
            }
        }
    }
}

/// The cloud provider the flags choose, or None for bare metal (the pools).
pub async fn build(
    args: &Args,
    metrics: &crate::metrics::ControllerMetrics,
) -> Result<Option<Arc<dyn LoadBalancerProvider>>, BuildError> {
    check(args)?;
    match args.provider {
        Provider::Baremetal => Ok(None),
        Provider::Gcp => Ok(Some(Arc::new(
            gcp::GcpProvider::new(
                &args.gcp,
                args.aws.cluster_name.as_deref().unwrap_or_default(),
                metrics.gcp_calls.clone(),
            )
            .await?,
        ))),
        Provider::Aws => Ok(Some(Arc::new(
            aws::AwsProvider::new(&args.aws, metrics.aws_calls.clone()).await?,
        ))),
    }
}
