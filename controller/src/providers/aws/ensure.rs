//! Ensure, update hosts and delete for one Service's NLB.
//!
//! ```text
//!   ensure ─▶ desired_lb (pure) ─▶ known, and nothing changed since? ─yes─▶ verify: 2 reads
//!                                         │                                  (drift ─▶ full)
//!                                         └no─▶ full: observe (LB, target groups, listeners,
//!                                               targets) ─▶ plan (pure) ─▶ writes in dependency
//!                                               order: LB ─▶ target groups ─▶ listeners
//!                                               ─▶ unwanted target groups ─▶ targets ─▶ known
//! ```
//! "Known" is what the last successful ensure left, in memory: a restart starts with a full
//! read. The verify reads the target groups by name (their health checks, and that a listener of
//! the NLB still forwards to each: a deleted listener, target group or NLB shows there) and the
//! targets of one target group (in turn, for a Service with several ports).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service};

use super::AwsProvider;
use super::desired::{DesiredLb, desired_lb, instance_id, lb_name};
use super::observe::{ObservedLb, observed_health, observed_target_group};
use super::plan::{self, ObservedTargetGroup, Targets};
use crate::nodes::LbNode;
use crate::providers::{Ensured, LoadBalancerStatus, ProviderError};

/// What the last successful ensure of a Service left.
#[derive(Clone, Debug)]
pub struct Known {
    pub want: DesiredLb,
    pub nodes: Vec<LbNode>,
    pub lb: ObservedLb,
    /// The ARN of each desired target group, in `want.target_groups` order.
    pub group_arns: Vec<String>,
    /// Verifies so far, to pick whose targets the next one reads.
    pub verifies: usize,
}

/// `ingress[].hostname` is the NLB's DNS name; with Elastic IPs, one entry per address carries
/// it as `ip` too (clients that need a fixed address use those).
pub fn status(lb: &ObservedLb) -> LoadBalancerStatus {
    let hostname = Some(lb.dns_name.clone());
    let ingress = if lb.elastic_ips.is_empty() {
        vec![LoadBalancerIngress {
            hostname,
            ..Default::default()
        }]
    } else {
        lb.elastic_ips
            .iter()
            .map(|ip| LoadBalancerIngress {
                hostname: hostname.clone(),
                ip: Some(ip.clone()),
                ..Default::default()
            })
            .collect()
    };
    LoadBalancerStatus { ingress }
}

/// The instance targets the node set asks for on one node port.
fn wanted_targets(nodes: &[LbNode], node_port: i32) -> Targets {
    nodes
        .iter()
        .filter_map(|n| instance_id(&n.provider_id))
        .map(|id| (id.to_string(), node_port))
        .collect()
}

fn warnings(nodes: &[LbNode]) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| instance_id(&n.provider_id).is_none())
        .map(|n| {
            format!(
                "node {}: spec.providerID {:?} names no EC2 instance (aws:///<zone>/i-...); it is left out of the load balancer",
                n.name, n.provider_id
            )
        })
        .collect()
}

impl AwsProvider {
    fn known(&self, uid: &str) -> Option<Known> {
        crate::reconcile::lock(&self.known).get(uid).cloned()
    }

    pub(super) fn forget(&self, uid: &str) {
        crate::reconcile::lock(&self.known).remove(uid);
    }

    pub(super) async fn ensure_lb(
        &self,
        service: &Service,
        nodes: &[LbNode],
    ) -> Result<Ensured, ProviderError> {
        let want = desired_lb(&self.cluster, service, self.cluster_check)?;
        let uid = kube::ResourceExt::uid(service).unwrap_or_default();
        if let Some(known) = self
            .known(&uid)
            .filter(|k| k.want == want && k.nodes == nodes)
            && self.verify(&uid, known.clone()).await?
        {
            return Ok(Ensured {
                status: status(&known.lb),
                changes: Vec::new(),
                warnings: warnings(nodes),
                ..Ensured::default()
            });
        }
        self.forget(&uid);
        let ensured = self.full_ensure(&uid, want, nodes).await;
        if ensured.is_err() {
            self.forget(&uid);
        }
        ensured
    }

    /// Two reads; true when nothing drifted since the last ensure.
    async fn verify(&self, uid: &str, known: Known) -> Result<bool, ProviderError> {
        let names: Vec<String> = known
            .want
            .target_groups
            .iter()
            .map(|t| t.name.clone())
            .collect();
        let Some(groups) = self.target_groups_named(&names).await? else {
            return Ok(false);
        };
        for (want, arn) in known.want.target_groups.iter().zip(&known.group_arns) {
            let Some(have) = groups
                .iter()
                .find(|g| g.target_group_arn() == Some(arn.as_str()))
            else {
                return Ok(false);
            };
            let attached = have.load_balancer_arns().contains(&known.lb.arn);
            if !attached
                || observed_target_group(have).protocol != want.protocol
                || observed_health(have) != want.health
            {
                return Ok(false);
            }
        }
        if let Some((want, arn)) = known
            .want
            .target_groups
            .iter()
            .zip(&known.group_arns)
            .nth(known.verifies % known.group_arns.len().max(1))
        {
            let current = self.targets(arn).await?;
            if current != wanted_targets(&known.nodes, want.node_port) {
                return Ok(false);
            }
        }
        if let Some(entry) = crate::reconcile::lock(&self.known).get_mut(uid) {
            entry.verifies += 1;
        }
        Ok(true)
    }

    async fn full_ensure(
        &self,
        uid: &str,
        want: DesiredLb,
        nodes: &[LbNode],
    ) -> Result<Ensured, ProviderError> {
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
        let observed: Vec<ObservedTargetGroup> = if created {
            Vec::new()
        } else {
            self.target_groups(&lb.arn)
                .await?
                .iter()
                .map(observed_target_group)
                .collect()
        };
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
            self.delete_listener(arn).await?;
            changes.push(format!("deleted listener {arn}"));
        }
        for (port, protocol, tg_arn) in &listener_plan.create {
            self.create_listener(&lb.arn, *port, protocol, tg_arn, &want)
                .await?;
            changes.push(format!("created listener {protocol} {port}"));
        }
        for (arn, tg_arn) in &listener_plan.modify {
            self.point_listener(arn, tg_arn).await?;
            changes.push(format!("pointed listener {arn} at {tg_arn}"));
        }
        for arn in &tg_plan.delete {
            self.delete_target_group(arn).await?;
            changes.push(format!("deleted target group {arn}"));
        }
        let mut group_arns = Vec::new();
        for group in &want.target_groups {
            let Some(arn) = arns.get(&group.name) else {
                continue;
            };
            let is_new = tg_plan.create.iter().any(|c| c.name == group.name);
            let current = if is_new {
                Targets::new()
            } else {
                self.targets(arn).await?
            };
            let wanted = wanted_targets(nodes, group.node_port);
            changes.extend(
                self.sync_group_targets(arn, group.node_port, &wanted, &current)
                    .await?,
            );
            group_arns.push(arn.clone());
        }
        let ensured = Ensured {
            status: status(&lb),
            changes,
            warnings: warnings(nodes),
            ..Ensured::default()
        };
        crate::reconcile::lock(&self.known).insert(
            uid.to_string(),
            Known {
                want,
                nodes: nodes.to_vec(),
                lb,
                group_arns,
                verifies: 0,
            },
        );
        Ok(ensured)
    }

    /// Only the node set changed: the targets of the known target groups follow it (one read
    /// per target group, and the writes the difference needs). Without a known state, a full
    /// ensure.
    pub(super) async fn update_hosts_lb(
        &self,
        service: &Service,
        nodes: &[LbNode],
    ) -> Result<Vec<String>, ProviderError> {
        let uid = kube::ResourceExt::uid(service).unwrap_or_default();
        let want = desired_lb(&self.cluster, service, self.cluster_check)?;
        let Some(known) = self.known(&uid).filter(|k| k.want == want) else {
            return Ok(self.ensure_lb(service, nodes).await?.changes);
        };
        let mut changes = Vec::new();
        for (group, arn) in known.want.target_groups.iter().zip(&known.group_arns) {
            let current = match self.targets(arn).await {
                Ok(current) => current,
                Err(e) => {
                    self.forget(&uid);
                    return Err(e);
                }
            };
            let wanted = wanted_targets(nodes, group.node_port);
            match self
                .sync_group_targets(arn, group.node_port, &wanted, &current)
                .await
            {
                Ok(done) => changes.extend(done),
                Err(e) => {
                    self.forget(&uid);
                    return Err(e);
                }
            }
        }
        if let Some(entry) = crate::reconcile::lock(&self.known).get_mut(&uid) {
            entry.nodes = nodes.to_vec();
        }
        Ok(changes)
    }

    pub(super) async fn delete_lb(&self, service: &Service) -> Result<Vec<String>, ProviderError> {
        let Some(uid) = kube::ResourceExt::uid(service) else {
            return Ok(Vec::new());
        };
        self.forget(&uid);
        let name = lb_name(&self.cluster, &uid);
        let Some(lb) = self.find_lb(&name).await? else {
            return Ok(Vec::new());
        };
        self.delete_by_arn(&lb.arn, &name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_holds_the_dns_name_and_the_elastic_ips() {
        let mut lb = ObservedLb {
            dns_name: "portico-x.elb.amazonaws.com".into(),
            ..Default::default()
        };
        let plain = status(&lb).ingress;
        assert_eq!(plain.len(), 1);
        assert_eq!(
            plain[0].hostname.as_deref(),
            Some("portico-x.elb.amazonaws.com")
        );
        assert_eq!(plain[0].ip, None);

        lb.elastic_ips = vec!["203.0.113.10".into(), "203.0.113.11".into()];
        let ips: Vec<_> = status(&lb)
            .ingress
            .into_iter()
            .map(|i| (i.hostname.unwrap(), i.ip.unwrap()))
            .collect();
        assert_eq!(
            ips,
            [
                (
                    "portico-x.elb.amazonaws.com".to_string(),
                    "203.0.113.10".to_string()
                ),
                (
                    "portico-x.elb.amazonaws.com".to_string(),
                    "203.0.113.11".to_string()
                ),
            ]
        );
    }

    #[test]
    fn targets_are_the_nodes_with_an_instance_id_and_the_others_are_warned_about() {
        let nodes = vec![
            LbNode {
                name: "a".into(),
                provider_id: "aws:///us-east-1a/i-0abc".into(),
            },
            LbNode {
                name: "b".into(),
                provider_id: "kind://docker/b".into(),
            },
        ];
        assert_eq!(
            wanted_targets(&nodes, 30080),
            Targets::from([("i-0abc".to_string(), 30080)])
        );
        let warned = warnings(&nodes);
        assert_eq!(warned.len(), 1);
        assert!(warned[0].contains("node b") && warned[0].contains("spec.providerID"));
    }
}
