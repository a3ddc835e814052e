//! The GCP provider: a target-pool external network load balancer per Service, as
//! cloud-provider-gcp makes it, every resource named from the Service's UID.
//!
//! ```text
//!   desired.rs (pure: Service + nodes ─▶ DesiredLb) ─▶ ensure.rs: address ─▶ firewall rules
//!       ─▶ HTTP health check ─▶ target pool (pool.rs: instances, health check) ─▶ forwarding rule
//!   delete.rs: forwarding rule ─▶ pool ─▶ own health check ─▶ the shared one when no pool uses
//!       it ─▶ firewall rules ─▶ address; orphans
//!   every call ─▶ compute.rs (count, retry 429 with jitter, wait on the Operation)
//! ```
//! A resync where nothing drifted makes six reads (one per resource) and no write.

pub mod compute;
mod delete;
pub mod desired;
#[cfg(test)]
mod desired_tests;
mod ensure;
mod pool;

use std::collections::HashSet;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Service;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use self::compute::Compute;
use self::desired::Scope;
use super::{BuildError, Ensured, LoadBalancerProvider, LoadBalancerStatus, ProviderError};
use crate::args::GcpArgs;
use crate::metrics::CloudCallLabels;
use crate::nodes::LbNode;

pub struct GcpProvider {
    compute: Compute,
    scope: Scope,
    /// Read while a Service's pool joins the shared per-cluster health check, written while that
    /// check is deleted, so a delete never lands between a check's ensure and its first pool.
    shared_check: tokio::sync::RwLock<()>,
}

impl GcpProvider {
    pub async fn new(
        args: &GcpArgs,
        cluster: &str,
        counter: Family<CloudCallLabels, Counter>,
    ) -> Result<Self, BuildError> {
        let project = args.gcp_project.clone().unwrap_or_default();
        let region = args.gcp_region.clone().unwrap_or_default();
        let compute = Compute::new(
            project.clone(),
            region.clone(),
            args.gcp_endpoint_url.as_deref(),
            counter,
        )
        .await
        .map_err(|e| BuildError::GcpClient(e.to_string()))?;
        Ok(GcpProvider {
            compute,
            scope: Scope {
                project,
                region,
                network: args.gcp_network.clone(),
                node_tags: args.gcp_node_tags.clone(),
                cluster: cluster.to_owned(),
            },
            shared_check: tokio::sync::RwLock::new(()),
        })
    }
}

impl LoadBalancerProvider for GcpProvider {
    fn name(&self) -> &'static str {
        "gcp"
    }

    fn get<'a>(
        &'a self,
        service: &'a Service,
    ) -> BoxFuture<'a, Result<Option<LoadBalancerStatus>, ProviderError>> {
        async move {
            let Some(uid) = kube::ResourceExt::uid(service) else {
                return Ok(None);
            };
            let address = self.get_address(&desired::lb_name(&uid)).await?;
            Ok(address
                .and_then(|a| a.address)
                .map(|ip| ensure::status(&ip)))
        }
        .boxed()
    }

    fn ensure<'a>(
        &'a self,
        service: &'a Service,
        nodes: &'a [LbNode],
    ) -> BoxFuture<'a, Result<Ensured, ProviderError>> {
        self.ensure_lb(service, nodes).boxed()
    }

    fn update_hosts<'a>(
        &'a self,
        service: &'a Service,
        nodes: &'a [LbNode],
    ) -> BoxFuture<'a, Result<Vec<String>, ProviderError>> {
        self.update_hosts_lb(service, nodes).boxed()
    }

    fn ensure_deleted<'a>(
        &'a self,
        service: &'a Service,
    ) -> BoxFuture<'a, Result<Vec<String>, ProviderError>> {
        self.delete_lb(service).boxed()
    }

    fn delete_orphans<'a>(
        &'a self,
        live_uids: &'a HashSet<String>,
    ) -> BoxFuture<'a, Result<Vec<String>, ProviderError>> {
        self.delete_orphans_lb(live_uids).boxed()
    }
}
