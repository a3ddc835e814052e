//! Ensure, in the order the resources depend on each other: address → firewall rules → HTTP
//! health check → target pool → forwarding rule. Each is found by name and only written where
//! it differs from the desired one, so a resync with nothing drifted makes reads only.

use google_cloud_compute_v1::model::firewall::{Allowed, Direction};
use google_cloud_compute_v1::model::forwarding_rule::{IPProtocol, LoadBalancingScheme};
use google_cloud_compute_v1::model::{Address, Firewall, ForwardingRule, HttpHealthCheck};
use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service};

use super::GcpProvider;
use super::compute::{GcpResult, Where, global, regional};
use super::desired::{self, DesiredLb, HealthCheck};
use crate::nodes::LbNode;
use crate::providers::{Ensured, LoadBalancerStatus, ProviderError};

/// A resource URL from `projects/` on, so full and partial URLs compare equal.
pub fn url_key(url: &str) -> &str {
    url.find("projects/").map_or(url, |i| &url[i..])
}

pub(super) fn last_segment(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

pub fn status(ip: &str) -> LoadBalancerStatus {
    LoadBalancerStatus {
        ingress: vec![LoadBalancerIngress {
            ip: Some(ip.to_owned()),
            ..Default::default()
        }],
    }
}

fn firewall_body(
    p: &GcpProvider,
    want: &desired::Firewall,
    description: &str,
    dest: &[String],
) -> Firewall {
    Firewall::new()
        .set_name(&want.name)
        .set_description(description)
        .set_network(p.scope.network_url())
        .set_direction(Direction::Ingress)
        .set_allowed([Allowed::new()
            .set_ip_protocol(&want.protocol)
            .set_ports(want.ports.clone())])
        .set_source_ranges(want.source_ranges.clone())
        .set_destination_ranges(dest.to_vec())
        .set_target_tags(p.scope.node_tags.clone())
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// Whether a firewall rule on GCP matches the desired one (the fields the provider sets).
fn firewall_matches(have: &Firewall, want: &Firewall) -> bool {
    let allowed = |f: &Firewall| -> Vec<(String, Vec<String>)> {
        f.allowed
            .iter()
            .map(|a| (a.ip_protocol.clone().unwrap_or_default(), sorted(&a.ports)))
            .collect()
    };
    allowed(have) == allowed(want)
        && sorted(&have.source_ranges) == sorted(&want.source_ranges)
        && sorted(&have.destination_ranges) == sorted(&want.destination_ranges)
        && sorted(&have.target_tags) == sorted(&want.target_tags)
        && have.network.as_deref().map(url_key) == want.network.as_deref().map(url_key)
}

fn health_check_body(want: &HealthCheck, description: &str) -> HttpHealthCheck {
    HttpHealthCheck::new()
        .set_name(&want.name)
        .set_description(description)
        .set_port(want.port)
        .set_request_path(&want.path)
        .set_check_interval_sec(want.interval)
        .set_timeout_sec(want.timeout)
        .set_healthy_threshold(want.healthy)
        .set_unhealthy_threshold(want.unhealthy)
}

fn health_check_matches(have: &HttpHealthCheck, want: &HealthCheck) -> bool {
    have.port == Some(want.port)
        && have.request_path.as_deref() == Some(want.path.as_str())
        && have.check_interval_sec == Some(want.interval)
        && have.timeout_sec == Some(want.timeout)
        && have.healthy_threshold == Some(want.healthy)
        && have.unhealthy_threshold == Some(want.unhealthy)
}

impl GcpProvider {
    pub(super) async fn ensure_lb(
        &self,
        service: &Service,
        nodes: &[LbNode],
    ) -> GcpResult<Ensured> {
        let (want, warnings) = desired::desired_lb(&self.scope, service, nodes)?;
        let mut changes = Vec::new();
        let ip = self.ensure_address(&want, &mut changes).await?;
        let dest = vec![format!("{ip}/32")];
        self.ensure_firewall(&want.firewall, &want.description, &dest, &mut changes)
            .await?;
        self.ensure_firewall(&want.health_firewall, &want.description, &[], &mut changes)
            .await?;
        // From ensuring the shared check until the pool refers to it, no other Service's delete
        // may remove it (it is unused in between).
        let shared_check_held = if want.health_check.shared {
            Some(self.shared_check.read().await)
        } else {
            None
        };
        self.ensure_health_check(&want, &mut changes).await?;
        let dropped = self.ensure_pool(&want, &mut changes).await?;
        drop(shared_check_held);
        self.ensure_rule(&want, &ip, &mut changes).await?;
        // The pool left a check: the Service's own (Local → Cluster) is unused now; the shared
        // one (Cluster → Local) goes once no other pool refers to it.
        for name in dropped {
            let deleted = if name == want.name {
                self.delete_health_check(&name).await?
            } else if name == self.scope.cluster_health_check() {
                self.delete_shared_health_check().await?
            } else {
                false
            };
            if deleted {
                changes.push(format!("deleted HTTP health check {name}"));
            }
        }
        Ok(Ensured {
            status: status(&ip),
            changes,
            warnings,
            ..Ensured::default()
        })
    }

    pub(super) async fn get_address(&self, name: &str) -> GcpResult<Option<Address>> {
        let c = &self.compute;
        let get = regional!(c.addresses.get().set_address(name));
        c.find("addresses.get", get).await
    }

    async fn ensure_address(
        &self,
        want: &DesiredLb,
        changes: &mut Vec<String>,
    ) -> GcpResult<String> {
        let c = &self.compute;
        if let Some(have) = self.get_address(&want.name).await? {
            let ip = have.address.clone().unwrap_or_default();
            if let Some(requested) = &want.requested_ip
                && requested != &ip
            {
                return Err(ProviderError::invalid(
                    "spec.loadBalancerIP",
                    format!(
                        "the Service's address {} holds {ip}, not {requested}; delete and recreate the Service to change it",
                        want.name
                    ),
                ));
            }
            return Ok(ip);
        }
        let body = Address::new()
            .set_name(&want.name)
            .set_description(&want.description)
            .set_or_clear_address(want.requested_ip.clone());
        let insert = regional!(c.addresses.insert(), body);
        let resource = format!("address {}", want.name);
        c.write("addresses.insert", &resource, Where::Region, insert)
            .await?;
        changes.push(format!("created address {}", want.name));
        let have = self.get_address(&want.name).await?;
        have.and_then(|a| a.address)
            .ok_or_else(|| ProviderError::Cloud {
                operation: "addresses.get",
                code: "notFound".into(),
                message: format!("address {} has no IP after its insert", want.name),
            })
    }

    async fn ensure_health_check(
        &self,
        want: &DesiredLb,
        changes: &mut Vec<String>,
    ) -> GcpResult<()> {
        let c = &self.compute;
        let (check, name) = (&want.health_check, &want.health_check.name);
        // The shared check outlives every Service: it names only the cluster.
        let description = if check.shared {
            serde_json::json!({"kubernetes.io/cluster-name": self.scope.cluster}).to_string()
        } else {
            want.description.clone()
        };
        let body = health_check_body(check, &description);
        let get = global!(c.health_checks.get().set_http_health_check(name));
        let matches = (c.find("httpHealthChecks.get", get).await?)
            .map(|have| health_check_matches(&have, check));
        let calls = (
            (
                "httpHealthChecks.update",
                global!(c.health_checks.update().set_http_health_check(name), body),
            ),
            (
                "httpHealthChecks.insert",
                global!(c.health_checks.insert(), body),
            ),
        );
        let resource = format!("HTTP health check {name}");
        c.put_global(&resource, matches, calls, changes).await
    }

    async fn ensure_firewall(
        &self,
        want: &desired::Firewall,
        description: &str,
        dest: &[String],
        changes: &mut Vec<String>,
    ) -> GcpResult<()> {
        let c = &self.compute;
        let name = &want.name;
        let body = firewall_body(self, want, description, dest);
        let get = global!(c.firewalls.get().set_firewall(name));
        let found = c.find("firewalls.get", get).await?;
        let update = global!(c.firewalls.update().set_firewall(name), body);
        let insert = global!(c.firewalls.insert(), body);
        let calls = (("firewalls.update", update), ("firewalls.insert", insert));
        let matches = found.map(|have| firewall_matches(&have, &body));
        let resource = format!("firewall rule {name}");
        c.put_global(&resource, matches, calls, changes).await
    }

    async fn ensure_rule(
        &self,
        want: &DesiredLb,
        ip: &str,
        changes: &mut Vec<String>,
    ) -> GcpResult<()> {
        let c = &self.compute;
        let resource = format!("forwarding rule {}", want.name);
        let protocol = if want.protocol == "UDP" {
            IPProtocol::Udp
        } else {
            IPProtocol::Tcp
        };
        let pool_url = self.scope.pool_url(&want.name);
        let get = regional!(c.rules.get().set_forwarding_rule(&want.name));
        let have = c.find("forwardingRules.get", get).await?;
        if let Some(rule) = &have {
            let matches = rule.ip_address.as_deref() == Some(ip)
                && rule.ip_protocol.as_ref() == Some(&protocol)
                && rule.port_range.as_deref() == Some(want.port_range.as_str())
                && rule.target.as_deref().map(url_key) == Some(url_key(&pool_url));
            if matches {
                return Ok(());
            }
            // A forwarding rule's IP, protocol and ports are fixed: it is made again.
            self.delete_rule(&want.name).await?;
            changes.push(format!("deleted {resource} to change it"));
        }
        let body = ForwardingRule::new()
            .set_name(&want.name)
            .set_description(&want.description)
            .set_ip_address(ip)
            .set_ip_protocol(protocol)
            .set_port_range(&want.port_range)
            .set_target(pool_url)
            .set_load_balancing_scheme(LoadBalancingScheme::External);
        let insert = regional!(c.rules.insert(), body);
        c.write("forwardingRules.insert", &resource, Where::Region, insert)
            .await?;
        changes.push(format!("created {resource} {ip}:{}", want.port_range));
        Ok(())
    }
}
