//! Writes: creating, modifying and deleting the NLB, its target groups, listeners and targets.
//! Each is called only for a difference the plan found, so a resync that finds nothing makes none.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, ProtocolEnum,
    SubnetMapping, Tag, TargetDescription, TargetTypeEnum,
};

use super::AwsProvider;
use super::calls::{is_code, sdk_error};
use super::desired::{DesiredLb, DesiredTargetGroup, HealthCheck};
use super::observe::{ObservedLb, observed_health, observed_lb};
use super::plan::{self, Targets};
use crate::providers::ProviderError;
use portico_api::keys::service as ann;

fn tags(want: &DesiredLb) -> Vec<Tag> {
    want.tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn forward(tg_arn: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(tg_arn)
        .build()
}

fn describe(targets: &Targets) -> Vec<TargetDescription> {
    targets
        .iter()
        .map(|(id, port)| TargetDescription::builder().id(id).port(*port).build())
        .collect()
}

impl AwsProvider {
    pub(super) async fn create_lb(&self, want: &DesiredLb) -> Result<ObservedLb, ProviderError> {
        const OP: &str = "CreateLoadBalancer";
        let subnets = self.subnets(want).await?;
        if !want.eip_allocations.is_empty() && want.eip_allocations.len() != subnets.len() {
            return Err(ProviderError::invalid(
                ann::AWS_EIP_ALLOCATIONS,
                format!(
                    "{} allocations for {} subnets; give one per subnet",
                    want.eip_allocations.len(),
                    subnets.len()
                ),
            ));
        }
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
            .set_tags(Some(tags(want)));
        if want.eip_allocations.is_empty() {
            request = request.set_subnets(Some(subnets));
        } else {
            for (subnet, allocation) in subnets.iter().zip(&want.eip_allocations) {
                request = request.subnet_mappings(
                    SubnetMapping::builder()
                        .subnet_id(subnet)
                        .allocation_id(allocation)
                        .build(),
                );
            }
        }
        let output = self
            .calls
            .call(OP, || async {
                request.clone().send().await.map_err(|e| sdk_error(OP, e))
            })
            .await?;
        output
            .load_balancers()
            .first()
            .map(observed_lb)
            .ok_or_else(|| ProviderError::Cloud {
                operation: OP,
                code: "EmptyResponse".into(),
                message: "no load balancer in the answer".into(),
            })
    }

    /// Creates a target group, or adopts one of that name that no listener uses yet (left by an
    /// ensure interrupted between the two calls).
    pub(super) async fn create_target_group(
        &self,
        want: &DesiredTargetGroup,
        lb: &DesiredLb,
        vpc_id: &str,
    ) -> Result<String, ProviderError> {
        const OP: &str = "CreateTargetGroup";
        if let Some(existing) = self
            .target_groups_named(std::slice::from_ref(&want.name))
            .await?
            .and_then(|groups| groups.into_iter().next())
        {
            let arn = existing.target_group_arn().unwrap_or_default().to_string();
            if observed_health(&existing) != want.health {
                self.modify_health(&arn, &want.health).await?;
            }
            return Ok(arn);
        }
        let health = &want.health;
        let request = self
            .elb
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
            .set_tags(Some(tags(lb)));
        let output = self
            .calls
            .call(OP, || async {
                request.clone().send().await.map_err(|e| sdk_error(OP, e))
            })
            .await?;
        Ok(output
            .target_groups()
            .first()
            .and_then(|t| t.target_group_arn())
            .unwrap_or_default()
            .to_string())
    }

    pub(super) async fn modify_health(
        &self,
        arn: &str,
        health: &HealthCheck,
    ) -> Result<(), ProviderError> {
        const OP: &str = "ModifyTargetGroup";
        let request = self
            .elb
            .modify_target_group()
            .target_group_arn(arn)
            .health_check_protocol(ProtocolEnum::from(health.protocol.as_str()))
            .health_check_port(&health.port)
            .set_health_check_path(health.path.clone())
            .health_check_interval_seconds(health.interval)
            .health_check_timeout_seconds(health.timeout)
            .healthy_threshold_count(health.healthy)
            .unhealthy_threshold_count(health.unhealthy);
        self.calls
            .call(OP, || async {
                request.clone().send().await.map_err(|e| sdk_error(OP, e))
            })
            .await?;
        Ok(())
    }

    pub(super) async fn create_listener(
        &self,
        lb_arn: &str,
        port: i32,
        protocol: &str,
        tg_arn: &str,
        want: &DesiredLb,
    ) -> Result<(), ProviderError> {
        const OP: &str = "CreateListener";
        let request = self
            .elb
            .create_listener()
            .load_balancer_arn(lb_arn)
            .port(port)
            .protocol(ProtocolEnum::from(protocol))
            .default_actions(forward(tg_arn))
            .set_tags(Some(tags(want)));
        self.calls
            .call(OP, || async {
                request.clone().send().await.map_err(|e| sdk_error(OP, e))
            })
            .await?;
        Ok(())
    }

    pub(super) async fn point_listener(
        &self,
        listener_arn: &str,
        tg_arn: &str,
    ) -> Result<(), ProviderError> {
        const OP: &str = "ModifyListener";
        let request = self
            .elb
            .modify_listener()
            .listener_arn(listener_arn)
            .default_actions(forward(tg_arn));
        self.calls
            .call(OP, || async {
                request.clone().send().await.map_err(|e| sdk_error(OP, e))
            })
            .await?;
        Ok(())
    }

    pub(super) async fn delete_listener(&self, arn: &str) -> Result<(), ProviderError> {
        const OP: &str = "DeleteListener";
        self.calls
            .call(OP, || async {
                match self.elb.delete_listener().listener_arn(arn).send().await {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let error = sdk_error(OP, e);
                        if is_code(&error, "ListenerNotFound") {
                            Ok(())
                        } else {
                            Err(error)
                        }
                    }
                }
            })
            .await
    }

    pub(super) async fn delete_target_group(&self, arn: &str) -> Result<(), ProviderError> {
        const OP: &str = "DeleteTargetGroup";
        self.calls
            .call(OP, || async {
                self.elb
                    .delete_target_group()
                    .target_group_arn(arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error(OP, e))
            })
            .await
    }

    pub(super) async fn delete_load_balancer(&self, arn: &str) -> Result<(), ProviderError> {
        const OP: &str = "DeleteLoadBalancer";
        self.calls
            .call(OP, || async {
                self.elb
                    .delete_load_balancer()
                    .load_balancer_arn(arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error(OP, e))
            })
            .await
    }

    /// Brings one target group's targets from `current` to `wanted`; returns what changed.
    pub(super) async fn sync_group_targets(
        &self,
        arn: &str,
        node_port: i32,
        wanted: &Targets,
        current: &Targets,
    ) -> Result<Vec<String>, ProviderError> {
        let (register, deregister) = plan::plan_targets(wanted, current);
        let mut changes = Vec::new();
        let ids = |targets: &Targets| targets.iter().map(|t| t.0.clone()).collect::<Vec<_>>();
        if !register.is_empty() {
            const OP: &str = "RegisterTargets";
            let request = self
                .elb
                .register_targets()
                .target_group_arn(arn)
                .set_targets(Some(describe(&register)));
            self.calls
                .call(OP, || async {
                    request.clone().send().await.map_err(|e| sdk_error(OP, e))
                })
                .await?;
            changes.push(format!(
                "registered {:?} on port {node_port}",
                ids(&register)
            ));
        }
        if !deregister.is_empty() {
            const OP: &str = "DeregisterTargets";
            let request = self
                .elb
                .deregister_targets()
                .target_group_arn(arn)
                .set_targets(Some(describe(&deregister)));
            self.calls
                .call(OP, || async {
                    request.clone().send().await.map_err(|e| sdk_error(OP, e))
                })
                .await?;
            changes.push(format!(
                "deregistered {:?} from port {node_port}",
                ids(&deregister)
            ));
        }
        Ok(changes)
    }

    /// Deletes a load balancer (its listeners go with it), then its target groups.
    pub(super) async fn delete_by_arn(
        &self,
        arn: &str,
        name: &str,
    ) -> Result<Vec<String>, ProviderError> {
        let groups = self.target_groups(arn).await?;
        self.delete_load_balancer(arn).await?;
        let mut deleted = vec![format!("load balancer {name}")];
        for group in groups {
            self.delete_target_group(group.target_group_arn().unwrap_or_default())
                .await?;
            deleted.push(format!(
                "target group {}",
                group.target_group_name().unwrap_or_default()
            ));
        }
        Ok(deleted)
    }
}
