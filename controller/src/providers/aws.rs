//! The AWS provider: one Network Load Balancer per Service, found by its name (a hash of the
//! cluster and the Service's UID) and tagged with the cluster and the Service.
//!
//! ```text
//!   desired.rs (pure: Service ─▶ DesiredLb) ─▶ ensure.rs ─▶ observe.rs (reads) ─▶ plan.rs (pure)
//!                                                       └─▶ writes.rs (creates, modifies, deletes)
//!   every call ─▶ calls.rs (count, retry throttling with jitter)
//!   subnets ─▶ ec2.rs (one SigV4-signed DescribeSubnets; no EC2 SDK)
//!   start ─▶ orphans.rs (load balancers of Services that are gone)
//! ```
//! A resync where nothing drifted makes two reads and no write.

pub mod calls;
pub mod desired;
pub mod ec2;
mod ensure;
mod observe;
mod orphans;
pub mod plan;
mod writes;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Service;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use self::calls::Calls;
use self::ensure::Known;
use super::{BuildError, Ensured, LoadBalancerProvider, LoadBalancerStatus, ProviderError};
use crate::args::{AwsArgs, ClusterHealthCheck};
use crate::metrics::CloudCallLabels;
use crate::nodes::LbNode;

pub struct AwsProvider {
    elb: aws_sdk_elasticloadbalancingv2::Client,
    ec2: ec2::Ec2,
    cluster: String,
    cluster_check: ClusterHealthCheck,
    calls: Calls,
    /// What the last successful ensure left, by Service UID (see ensure.rs).
    known: Mutex<HashMap<String, Known>>,
}

impl AwsProvider {
    pub async fn new(
        args: &AwsArgs,
        counter: Family<CloudCallLabels, Counter>,
    ) -> Result<Self, BuildError> {
        use aws_smithy_http_client::tls;
        // rustls on ring, as kube's client: one TLS stack in the binary.
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        // The SDK does not retry: calls.rs does, so that every throttled answer is counted.
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .retry_config(aws_config::retry::RetryConfig::disabled());
        if let Some(region) = &args.aws_region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(url) = &args.aws_endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;
        let Some(region) = config.region() else {
            return Err(BuildError::NoRegion);
        };
        let Some(credentials) = config.credentials_provider() else {
            return Err(BuildError::NoCredentials);
        };
        Ok(AwsProvider {
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            ec2: ec2::Ec2::new(
                region.to_string(),
                args.aws_endpoint_url.as_deref(),
                credentials,
            ),
            cluster: args.cluster_name.clone().unwrap_or_default(),
            cluster_check: args.aws_cluster_health_check,
            calls: Calls::new(counter),
            known: Mutex::default(),
        })
    }
}

impl LoadBalancerProvider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn get<'a>(
        &'a self,
        service: &'a Service,
    ) -> BoxFuture<'a, Result<Option<LoadBalancerStatus>, ProviderError>> {
        async move {
            let Some(uid) = kube::ResourceExt::uid(service) else {
                return Ok(None);
            };
            Ok(self
                .find_lb(&desired::lb_name(&self.cluster, &uid))
                .await?
                .map(|lb| ensure::status(&lb)))
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
