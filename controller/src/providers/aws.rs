//! The AWS provider: one Network Load Balancer per Service, found by its name (a hash of the
//! cluster and the Service's UID) and tagged with the cluster and the Service.
//!
//! ```text
//!   ensure: desired_lb (pure) ─▶ observe (reads: LB, target groups, listeners, targets)
//!        ─▶ plan (pure) ─▶ calls, in dependency order: LB ─▶ target groups ─▶ listeners
//!                                                      ─▶ unwanted target groups ─▶ targets
//! ```
//! A resync where nothing drifted makes reads only. Throttling is retried by the SDK (standard
//! mode, jittered exponential backoff); what is still throttled fails the reconcile, which backs
//! off per Service.

pub mod desired;
pub mod plan;

use std::collections::{BTreeMap, HashSet};

use aws_sdk_ec2::types::Filter;
use aws_sdk_elasticloadbalancingv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, ProtocolEnum,
    SubnetMapping, Tag, TargetDescription, TargetGroup, TargetTypeEnum,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use self::desired::{DesiredLb, DesiredTargetGroup, HealthCheck, desired_lb, instance_id};
use self::plan::{ObservedListener, ObservedTargetGroup, Targets};
use super::{BuildError, Ensured, LoadBalancerProvider, LoadBalancerStatus, ProviderError};
use crate::args::{AwsArgs, ClusterHealthCheck};
use crate::metrics::CloudCallLabels;
use crate::nodes::LbNode;
use portico_api::keys::service as ann;

/// SDK attempts per call (the first and the retries) before throttling fails the reconcile.
const MAX_ATTEMPTS: u32 = 5;

pub struct AwsProvider {
    elb: aws_sdk_elasticloadbalancingv2::Client,
    ec2: aws_sdk_ec2::Client,
    cluster: String,
    cluster_check: ClusterHealthCheck,
    calls: Family<CloudCallLabels, Counter>,
}

/// The NLB as AWS has it.
struct ObservedLb {
    arn: String,
    dns_name: String,
    vpc_id: String,
}

impl AwsProvider {
    pub async fn new(
        args: &AwsArgs,
        calls: Family<CloudCallLabels, Counter>,
    ) -> Result<Self, BuildError> {
        use aws_smithy_http_client::tls;
        // rustls on ring, as kube's client: one TLS stack in the binary.
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .retry_config(
                aws_config::retry::RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS),
            );
        if let Some(region) = &args.aws_region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(url) = &args.aws_endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(BuildError::NoRegion);
        }
        Ok(AwsProvider {
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            ec2: aws_sdk_ec2::Client::new(&config),
            cluster: args.cluster_name.clone().unwrap_or_default(),
            cluster_check: args.aws_cluster_health_check,
            calls,
        })
    }

    /// Counts a call and turns its error into a ProviderError naming the operation and code.
    fn count<T, E, R>(
        &self,
        operation: &'static str,
        result: Result<T, SdkError<E, R>>,
    ) -> Result<T, ProviderError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let kind = if operation.starts_with("Describe") {
            "read"
        } else {
            "write"
        };
        let error = result.as_ref().err().map(|e| {
            let code = e.code().unwrap_or("Unknown").to_string();
            let message = e
                .message()
                .map(String::from)
                .unwrap_or_else(|| DisplayErrorContext(e).to_string());
            (code, message)
        });
        let outcome = match &error {
            None => "ok",
            Some((code, _)) if super::is_throttling(code) => "throttled",
            Some(_) => "error",
        };
        self.calls
            .get_or_create(&CloudCallLabels {
                operation,
                kind,
                result: outcome,
            })
            .inc();
        match (result, error) {
            (Ok(value), _) => Ok(value),
            (Err(_), Some((code, message))) => Err(ProviderError::Cloud {
                operation,
                code,
                message,
            }),
            (Err(_), None) => unreachable!("an error has metadata"),
        }
    }

    /// A read whose "not found" answer is the expected outcome.
    fn count_ok(&self, operation: &'static str) {
        self.calls
            .get_or_create(&CloudCallLabels {
                operation,
                kind: "read",
                result: "ok",
            })
            .inc();
    }

    async fn find_lb(&self, name: &str) -> Result<Option<ObservedLb>, ProviderError> {
        let result = self.elb.describe_load_balancers().names(name).send().await;
        if let Err(e) = &result
            && e.code() == Some("LoadBalancerNotFound")
        {
            self.count_ok("DescribeLoadBalancers");
            return Ok(None);
        }
        let output = self.count("DescribeLoadBalancers", result)?;
        Ok(output.load_balancers().first().map(|lb| ObservedLb {
            arn: lb.load_balancer_arn().unwrap_or_default().into(),
            dns_name: lb.dns_name().unwrap_or_default().into(),
            vpc_id: lb.vpc_id().unwrap_or_default().into(),
        }))
    }

    async fn subnets(&self, want: &DesiredLb) -> Result<Vec<String>, ProviderError> {
        if let Some(subnets) = &want.subnets {
            return Ok(subnets.clone());
        }
        let tag = format!(
            "{}{}",
            portico_api::keys::aws_tag::CLUSTER_PREFIX,
            self.cluster
        );
        let output = self.count(
            "DescribeSubnets",
            self.ec2
                .describe_subnets()
                .filters(Filter::builder().name("tag-key").values(&tag).build())
                .send()
                .await,
        )?;
        // One subnet per availability zone (an NLB takes at most one per zone), the lowest ID.
        let mut by_zone: BTreeMap<String, String> = BTreeMap::new();
        for subnet in output.subnets() {
            let (Some(id), Some(zone)) = (subnet.subnet_id(), subnet.availability_zone()) else {
                continue;
            };
            let entry = by_zone.entry(zone.into()).or_insert_with(|| id.into());
            if id < entry.as_str() {
                *entry = id.into();
            }
        }
        if by_zone.is_empty() {
            return Err(ProviderError::invalid(
                ann::AWS_SUBNETS,
                format!(
                    "not set, and no subnet is tagged {tag}; tag the cluster's subnets or list subnet IDs in the annotation"
                ),
            ));
        }
        Ok(by_zone.into_values().collect())
    }

    fn tags(want: &DesiredLb) -> Vec<Tag> {
        want.tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect()
    }

    async fn create_lb(&self, want: &DesiredLb) -> Result<ObservedLb, ProviderError> {
        let subnets = self.subnets(want).await?;
        let mut request = self
            .elb
            .create_load_balancer()
            .name(&want.name)
            .r#type(LoadBalancerTypeEnum::Network)
            .scheme(if want.internal {
                LoadBalancerSchemeEnum::Internal
            } else {
                LoadBalancerSchemeEnum::InternetFacing
            })
            .set_tags(Some(Self::tags(want)));
        if want.eip_allocations.is_empty() {
            request = request.set_subnets(Some(subnets));
        } else {
            if want.eip_allocations.len() != subnets.len() {
                return Err(ProviderError::invalid(
                    ann::AWS_EIP_ALLOCATIONS,
                    format!(
                        "{} allocations for {} subnets; give one per subnet",
                        want.eip_allocations.len(),
                        subnets.len()
                    ),
                ));
            }
            for (subnet, allocation) in subnets.iter().zip(&want.eip_allocations) {
                request = request.subnet_mappings(
                    SubnetMapping::builder()
                        .subnet_id(subnet)
                        .allocation_id(allocation)
                        .build(),
                );
            }
        }
        let output = self.count("CreateLoadBalancer", request.send().await)?;
        let lb = output
            .load_balancers()
            .first()
            .ok_or_else(|| ProviderError::Cloud {
                operation: "CreateLoadBalancer",
                code: "EmptyResponse".into(),
                message: "no load balancer in the answer".into(),
            })?;
        Ok(ObservedLb {
            arn: lb.load_balancer_arn().unwrap_or_default().into(),
            dns_name: lb.dns_name().unwrap_or_default().into(),
            vpc_id: lb.vpc_id().unwrap_or_default().into(),
        })
    }

    async fn target_groups(&self, lb_arn: &str) -> Result<Vec<TargetGroup>, ProviderError> {
        let result = self
            .elb
            .describe_target_groups()
            .load_balancer_arn(lb_arn)
            .send()
            .await;
        // AWS answers an empty list; some implementations (moto) answer TargetGroupNotFound.
        if let Err(e) = &result
            && e.code() == Some("TargetGroupNotFound")
        {
            self.count_ok("DescribeTargetGroups");
            return Ok(Vec::new());
        }
        let output = self.count("DescribeTargetGroups", result)?;
        Ok(output.target_groups().to_vec())
    }

    async fn listeners(&self, lb_arn: &str) -> Result<Vec<ObservedListener>, ProviderError> {
        let output = self.count(
            "DescribeListeners",
            self.elb
                .describe_listeners()
                .load_balancer_arn(lb_arn)
                .send()
                .await,
        )?;
        Ok(output
            .listeners()
            .iter()
            .map(|l| ObservedListener {
                arn: l.listener_arn().unwrap_or_default().into(),
                port: l.port().unwrap_or_default(),
                protocol: l
                    .protocol()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
                target_group_arn: l
                    .default_actions()
                    .first()
                    .and_then(|a| a.target_group_arn())
                    .map(String::from),
            })
            .collect())
    }

    async fn targets(&self, tg_arn: &str) -> Result<Targets, ProviderError> {
        let output = self.count(
            "DescribeTargetHealth",
            self.elb
                .describe_target_health()
                .target_group_arn(tg_arn)
                .send()
                .await,
        )?;
        Ok(output
            .target_health_descriptions()
            .iter()
            .filter_map(|d| d.target())
            .filter_map(|t| Some((t.id()?.to_string(), t.port().unwrap_or_default())))
            .collect())
    }

    /// A target group with this name that no listener uses yet (left by an interrupted ensure).
    async fn unattached_target_group(
        &self,
        name: &str,
    ) -> Result<Option<TargetGroup>, ProviderError> {
        let result = self.elb.describe_target_groups().names(name).send().await;
        if let Err(e) = &result
            && e.code() == Some("TargetGroupNotFound")
        {
            self.count_ok("DescribeTargetGroups");
            return Ok(None);
        }
        Ok(self
            .count("DescribeTargetGroups", result)?
            .target_groups()
            .first()
            .cloned())
    }

    async fn create_target_group(
        &self,
        want: &DesiredTargetGroup,
        lb: &DesiredLb,
        vpc_id: &str,
    ) -> Result<String, ProviderError> {
        if let Some(existing) = self.unattached_target_group(&want.name).await? {
            let arn = existing.target_group_arn().unwrap_or_default().to_string();
            if observed_health(&existing) != want.health {
                self.modify_health(&arn, &want.health).await?;
            }
            return Ok(arn);
        }
        let health = &want.health;
        let output = self.count(
            "CreateTargetGroup",
            self.elb
                .create_target_group()
                .name(&want.name)
                .protocol(ProtocolEnum::from(want.protocol.as_str()))
                .port(want.node_port)
                .vpc_id(vpc_id)
                .target_type(TargetTypeEnum::Instance)
                .health_check_protocol(ProtocolEnum::from(health.protocol.as_str()))
                .health_check_port(&health.port)
                .set_health_check_path(health.path.clone())
                .health_check_interval_seconds(health.interval)
                .health_check_timeout_seconds(health.timeout)
                .healthy_threshold_count(health.healthy)
                .unhealthy_threshold_count(health.unhealthy)
                .set_tags(Some(Self::tags(lb)))
                .send()
                .await,
        )?;
        Ok(output
            .target_groups()
            .first()
            .and_then(|t| t.target_group_arn())
            .unwrap_or_default()
            .to_string())
    }

    async fn modify_health(&self, arn: &str, health: &HealthCheck) -> Result<(), ProviderError> {
        self.count(
            "ModifyTargetGroup",
            self.elb
                .modify_target_group()
                .target_group_arn(arn)
                .health_check_protocol(ProtocolEnum::from(health.protocol.as_str()))
                .health_check_port(&health.port)
                .set_health_check_path(health.path.clone())
                .health_check_interval_seconds(health.interval)
                .health_check_timeout_seconds(health.timeout)
                .healthy_threshold_count(health.healthy)
                .unhealthy_threshold_count(health.unhealthy)
                .send()
                .await,
        )?;
        Ok(())
    }

    fn forward(tg_arn: &str) -> Action {
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(tg_arn)
            .build()
    }

    /// Brings every target group's targets to the node set; returns what changed.
    async fn sync_targets(
        &self,
        groups: &[(String, i32)],
        nodes: &[LbNode],
    ) -> Result<Vec<String>, ProviderError> {
        let ids: Vec<&str> = nodes
            .iter()
            .filter_map(|n| instance_id(&n.provider_id))
            .collect();
        let mut changes = Vec::new();
        for (arn, node_port) in groups {
            let wanted: Targets = ids.iter().map(|id| (id.to_string(), *node_port)).collect();
            let current = self.targets(arn).await?;
            let (register, deregister) = plan::plan_targets(&wanted, &current);
            let describe = |targets: &Targets| -> Vec<TargetDescription> {
                targets
                    .iter()
                    .map(|(id, port)| TargetDescription::builder().id(id).port(*port).build())
                    .collect()
            };
            if !register.is_empty() {
                self.count(
                    "RegisterTargets",
                    self.elb
                        .register_targets()
                        .target_group_arn(arn)
                        .set_targets(Some(describe(&register)))
                        .send()
                        .await,
                )?;
                changes.push(format!(
                    "registered {:?} on port {node_port}",
                    register.iter().map(|t| &t.0).collect::<Vec<_>>()
                ));
            }
            if !deregister.is_empty() {
                self.count(
                    "DeregisterTargets",
                    self.elb
                        .deregister_targets()
                        .target_group_arn(arn)
                        .set_targets(Some(describe(&deregister)))
                        .send()
                        .await,
                )?;
                changes.push(format!(
                    "deregistered {:?} from port {node_port}",
                    deregister.iter().map(|t| &t.0).collect::<Vec<_>>()
                ));
            }
        }
        Ok(changes)
    }

    async fn ensure_lb(
        &self,
        service: &Service,
        nodes: &[LbNode],
    ) -> Result<Ensured, ProviderError> {
        let want = desired_lb(&self.cluster, service, self.cluster_check)?;
        let mut changes = Vec::new();
        let (lb, created) = match self.find_lb(&want.name).await? {
            Some(lb) => (lb, false),
            None => {
                let lb = self.create_lb(&want).await?;
                changes.push(format!("created load balancer {}", want.name));
                (lb, true)
            }
        };
        // A load balancer just created has no target groups or listeners to read.
        let existing = if !created {
            self.target_groups(&lb.arn).await?
        } else {
            Vec::new()
        };
        let observed: Vec<ObservedTargetGroup> = existing
            .iter()
            .map(|t| ObservedTargetGroup {
                arn: t.target_group_arn().unwrap_or_default().into(),
                name: t.target_group_name().unwrap_or_default().into(),
                protocol: t
                    .protocol()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
                health: observed_health(t),
            })
            .collect();
        let tg_plan = plan::plan_target_groups(&want.target_groups, &observed);
        let mut arns: BTreeMap<String, String> = observed
            .iter()
            .map(|t| (t.name.clone(), t.arn.clone()))
            .collect();
        for create in &tg_plan.create {
            let arn = self.create_target_group(create, &want, &lb.vpc_id).await?;
            changes.push(format!(
                "created target group {} (port {})",
                create.name, create.port
            ));
            arns.insert(create.name.clone(), arn);
        }
        for (arn, health) in &tg_plan.modify_health {
            self.modify_health(arn, health).await?;
            changes.push(format!(
                "moved the health check of {arn} to {} port {}",
                health.protocol, health.port
            ));
        }
        let listeners = if created {
            Vec::new()
        } else {
            self.listeners(&lb.arn).await?
        };
        let listener_plan = plan::plan_listeners(&want.target_groups, &listeners, &arns);
        for arn in &listener_plan.delete {
            self.count(
                "DeleteListener",
                self.elb.delete_listener().listener_arn(arn).send().await,
            )?;
            changes.push(format!("deleted listener {arn}"));
        }
        for (port, protocol, tg_arn) in &listener_plan.create {
            self.count(
                "CreateListener",
                self.elb
                    .create_listener()
                    .load_balancer_arn(&lb.arn)
                    .port(*port)
                    .protocol(ProtocolEnum::from(protocol.as_str()))
                    .default_actions(Self::forward(tg_arn))
                    .set_tags(Some(Self::tags(&want)))
                    .send()
                    .await,
            )?;
            changes.push(format!("created listener {protocol} {port}"));
        }
        for (arn, tg_arn) in &listener_plan.modify {
            self.count(
                "ModifyListener",
                self.elb
                    .modify_listener()
                    .listener_arn(arn)
                    .default_actions(Self::forward(tg_arn))
                    .send()
                    .await,
            )?;
            changes.push(format!("pointed listener {arn} at {tg_arn}"));
        }
        for arn in &tg_plan.delete {
            self.count(
                "DeleteTargetGroup",
                self.elb
                    .delete_target_group()
                    .target_group_arn(arn)
                    .send()
                    .await,
            )?;
            changes.push(format!("deleted target group {arn}"));
        }
        let groups: Vec<(String, i32)> = want
            .target_groups
            .iter()
            .filter_map(|t| Some((arns.get(&t.name)?.clone(), t.node_port)))
            .collect();
        changes.extend(self.sync_targets(&groups, nodes).await?);
        let warnings = nodes
            .iter()
            .filter(|n| instance_id(&n.provider_id).is_none())
            .map(|n| format!("node {}: spec.providerID {:?} names no EC2 instance (aws:///<zone>/i-...); it is left out of the load balancer", n.name, n.provider_id))
            .collect();
        Ok(Ensured {
            status: status(&lb),
            changes,
            warnings,
        })
    }

    async fn delete_lb(&self, service: &Service) -> Result<Vec<String>, ProviderError> {
        let Some(uid) = kube::ResourceExt::uid(service) else {
            return Ok(Vec::new());
        };
        let name = desired::lb_name(&self.cluster, &uid);
        let Some(lb) = self.find_lb(&name).await? else {
            return Ok(Vec::new());
        };
        self.delete_by_arn(&lb.arn, &name).await
    }

    async fn delete_by_arn(&self, arn: &str, name: &str) -> Result<Vec<String>, ProviderError> {
        let groups = self.target_groups(arn).await?;
        let mut deleted = Vec::new();
        // Deleting the load balancer deletes its listeners; the target groups go after, once
        // nothing uses them.
        self.count(
            "DeleteLoadBalancer",
            self.elb
                .delete_load_balancer()
                .load_balancer_arn(arn)
                .send()
                .await,
        )?;
        deleted.push(format!("load balancer {name}"));
        for group in groups {
            let arn = group.target_group_arn().unwrap_or_default();
            self.count(
                "DeleteTargetGroup",
                self.elb
                    .delete_target_group()
                    .target_group_arn(arn)
                    .send()
                    .await,
            )?;
            deleted.push(format!(
                "target group {}",
                group.target_group_name().unwrap_or_default()
            ));
        }
        Ok(deleted)
    }
}

impl AwsProvider {
    /// Deletes the load balancers this cluster's Portico made for Services that no longer exist
    /// (deleted while the controller was down, or their finalizer removed by hand).
    async fn delete_orphans(
        &self,
        live_uids: &HashSet<String>,
    ) -> Result<Vec<String>, ProviderError> {
        let mut arns: Vec<(String, String)> = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self.count(
                "DescribeLoadBalancers",
                self.elb
                    .describe_load_balancers()
                    .set_marker(marker.clone())
                    .send()
                    .await,
            )?;
            arns.extend(page.load_balancers().iter().filter_map(|lb| {
                let name = lb.load_balancer_name()?;
                let arn = lb.load_balancer_arn()?;
                name.starts_with("portico-")
                    .then(|| (arn.to_string(), name.to_string()))
            }));
            marker = page.next_marker().map(String::from);
            if marker.is_none() {
                break;
            }
        }
        let cluster_tag = format!(
            "{}{}",
            portico_api::keys::aws_tag::CLUSTER_PREFIX,
            self.cluster
        );
        let mut deleted = Vec::new();
        // DescribeTags takes at most 20 ARNs.
        for chunk in arns.chunks(20) {
            let tags = self.count(
                "DescribeTags",
                self.elb
                    .describe_tags()
                    .set_resource_arns(Some(chunk.iter().map(|(arn, _)| arn.clone()).collect()))
                    .send()
                    .await,
            )?;
            for description in tags.tag_descriptions() {
                let tag = |key: &str| {
                    description
                        .tags()
                        .iter()
                        .find(|t| t.key() == Some(key))
                        .and_then(|t| t.value())
                };
                let Some(uid) = tag(portico_api::keys::aws_tag::SERVICE_UID) else {
                    continue;
                };
                if tag(&cluster_tag) != Some("owned") || live_uids.contains(uid) {
                    continue;
                }
                let arn = description.resource_arn().unwrap_or_default();
                let name = chunk
                    .iter()
                    .find(|(a, _)| a == arn)
                    .map(|(_, n)| n.as_str())
                    .unwrap_or(arn);
                tracing::info!(
                    load_balancer = name,
                    service = tag(portico_api::keys::aws_tag::SERVICE_NAME),
                    "deleting the load balancer of a Service that no longer exists"
                );
                deleted.extend(self.delete_by_arn(arn, name).await?);
            }
        }
        Ok(deleted)
    }
}

fn observed_health(group: &TargetGroup) -> HealthCheck {
    let protocol = group
        .health_check_protocol()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    HealthCheck {
        path: if protocol == "TCP" {
            None
        } else {
            group.health_check_path().map(String::from)
        },
        protocol,
        port: group.health_check_port().unwrap_or("traffic-port").into(),
        interval: group.health_check_interval_seconds().unwrap_or_default(),
        timeout: group.health_check_timeout_seconds().unwrap_or_default(),
        healthy: group.healthy_threshold_count().unwrap_or_default(),
        unhealthy: group.unhealthy_threshold_count().unwrap_or_default(),
    }
}

fn status(lb: &ObservedLb) -> LoadBalancerStatus {
    LoadBalancerStatus {
        ingress: vec![LoadBalancerIngress {
            hostname: Some(lb.dns_name.clone()),
            ..Default::default()
        }],
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
                .map(|lb| status(&lb)))
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
        async move {
            let want = desired_lb(&self.cluster, service, self.cluster_check)?;
            let Some(lb) = self.find_lb(&want.name).await? else {
                return Ok(Vec::new());
            };
            let groups: Vec<(String, i32)> = self
                .target_groups(&lb.arn)
                .await?
                .iter()
                .filter_map(|t| {
                    let name = t.target_group_name()?;
                    let port = want
                        .target_groups
                        .iter()
                        .find(|w| w.name == name)?
                        .node_port;
                    Some((t.target_group_arn()?.to_string(), port))
                })
                .collect();
            self.sync_targets(&groups, nodes).await
        }
        .boxed()
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
        AwsProvider::delete_orphans(self, live_uids).boxed()
    }
}
