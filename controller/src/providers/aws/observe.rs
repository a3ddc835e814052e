//! Reads: what AWS has of a Service's load balancer (the NLB, its target groups, listeners and
//! targets) and the cluster's subnets. "Not found" answers are outcomes here, not errors.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types::TargetGroup;

use super::AwsProvider;
use super::calls::{is_code, sdk_error};
use super::desired::{DesiredLb, HealthCheck};
use super::plan::{ObservedListener, ObservedTargetGroup, Targets};
use crate::providers::ProviderError;
use portico_api::keys::service as ann;

/// The NLB as AWS has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedLb {
    pub arn: String,
    pub dns_name: String,
    pub vpc_id: String,
    /// The addresses of the Elastic IPs it was given (`portico.dev/aws-eip-allocations`), by zone.
    pub elastic_ips: Vec<String>,
}

pub fn observed_health(group: &TargetGroup) -> HealthCheck {
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

pub fn observed_target_group(group: &TargetGroup) -> ObservedTargetGroup {
    ObservedTargetGroup {
        arn: group.target_group_arn().unwrap_or_default().into(),
        name: group.target_group_name().unwrap_or_default().into(),
        protocol: group
            .protocol()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        health: observed_health(group),
    }
}

pub fn observed_lb(lb: &aws_sdk_elasticloadbalancingv2::types::LoadBalancer) -> ObservedLb {
    // An address with an allocation ID is an Elastic IP; the others are AWS's own.
    let elastic_ips = lb
        .availability_zones()
        .iter()
        .flat_map(|zone| zone.load_balancer_addresses())
        .filter(|address| address.allocation_id().is_some())
        .filter_map(|address| address.ip_address().map(String::from))
        .collect();
    ObservedLb {
        arn: lb.load_balancer_arn().unwrap_or_default().into(),
        dns_name: lb.dns_name().unwrap_or_default().into(),
        vpc_id: lb.vpc_id().unwrap_or_default().into(),
        elastic_ips,
    }
}

impl AwsProvider {
    pub(super) async fn find_lb(&self, name: &str) -> Result<Option<ObservedLb>, ProviderError> {
        const OP: &str = "DescribeLoadBalancers";
        self.calls
            .call(OP, || async {
                match self.elb.describe_load_balancers().names(name).send().await {
                    Ok(output) => Ok(output.load_balancers().first().map(observed_lb)),
                    Err(e) => {
                        let error = sdk_error(OP, e);
                        if is_code(&error, "LoadBalancerNotFound") {
                            Ok(None)
                        } else {
                            Err(error)
                        }
                    }
                }
            })
            .await
    }

    /// The target groups of a load balancer (those its listeners forward to).
    pub(super) async fn target_groups(
        &self,
        lb_arn: &str,
    ) -> Result<Vec<TargetGroup>, ProviderError> {
        const OP: &str = "DescribeTargetGroups";
        self.calls
            .call(OP, || async {
                match self
                    .elb
                    .describe_target_groups()
                    .load_balancer_arn(lb_arn)
                    .send()
                    .await
                {
                    Ok(output) => Ok(output.target_groups().to_vec()),
                    Err(e) => {
                        // AWS answers an empty list; moto answers TargetGroupNotFound.
                        let error = sdk_error(OP, e);
                        if is_code(&error, "TargetGroupNotFound") {
                            Ok(Vec::new())
                        } else {
                            Err(error)
                        }
                    }
                }
            })
            .await
    }

    /// Target groups by name; `None` when any of them does not exist.
    pub(super) async fn target_groups_named(
        &self,
        names: &[String],
    ) -> Result<Option<Vec<TargetGroup>>, ProviderError> {
        const OP: &str = "DescribeTargetGroups";
        self.calls
            .call(OP, || async {
                match self
                    .elb
                    .describe_target_groups()
                    .set_names(Some(names.to_vec()))
                    .send()
                    .await
                {
                    Ok(output) => Ok(Some(output.target_groups().to_vec())),
                    Err(e) => {
                        let error = sdk_error(OP, e);
                        if is_code(&error, "TargetGroupNotFound") {
                            Ok(None)
                        } else {
                            Err(error)
                        }
                    }
                }
            })
            .await
    }

    pub(super) async fn listeners(
        &self,
        lb_arn: &str,
    ) -> Result<Vec<ObservedListener>, ProviderError> {
        const OP: &str = "DescribeListeners";
        let output = self
            .calls
            .call(OP, || async {
                self.elb
                    .describe_listeners()
                    .load_balancer_arn(lb_arn)
                    .send()
                    .await
                    .map_err(|e| sdk_error(OP, e))
            })
            .await?;
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

    pub(super) async fn targets(&self, tg_arn: &str) -> Result<Targets, ProviderError> {
        const OP: &str = "DescribeTargetHealth";
        let output = self
            .calls
            .call(OP, || async {
                self.elb
                    .describe_target_health()
                    .target_group_arn(tg_arn)
                    .send()
                    .await
                    .map_err(|e| sdk_error(OP, e))
            })
            .await?;
        Ok(output
            .target_health_descriptions()
            .iter()
            .filter_map(|d| d.target())
            .filter_map(|t| Some((t.id()?.to_string(), t.port().unwrap_or_default())))
            .collect())
    }

    /// The subnets from the annotation, or those tagged `kubernetes.io/cluster/<cluster>`: one
    /// per availability zone (an NLB takes at most one per zone), the lowest ID.
    pub(super) async fn subnets(&self, want: &DesiredLb) -> Result<Vec<String>, ProviderError> {
        if let Some(subnets) = &want.subnets {
            return Ok(subnets.clone());
        }
        let tag = format!(
            "{}{}",
            portico_api::keys::aws_tag::CLUSTER_PREFIX,
            self.cluster
        );
        let mut by_zone: BTreeMap<String, String> = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .calls
                .call("DescribeSubnets", || {
                    self.ec2.describe_subnets_page(&tag, token.as_deref())
                })
                .await?;
            for subnet in page.subnets {
                let entry = by_zone
                    .entry(subnet.zone)
                    .or_insert_with(|| subnet.id.clone());
                if subnet.id < *entry {
                    *entry = subnet.id;
                }
            }
            token = page.next_token;
            if token.is_none() {
                break;
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
}
