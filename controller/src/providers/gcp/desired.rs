//! The target-pool load balancer a Service should have, worked out from the Service and the node
//! set alone (no Compute calls): names from the UID, descriptions, ports, the health check
//! (Local: per Service on healthCheckNodePort; Cluster: the shared per-cluster one on 10256),
//! session affinity and the pool's instances.

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;

use crate::nodes::LbNode;
use crate::providers::ProviderError;

/// The agent's node health port (kube-proxy's `--healthz-bind-address` port).
pub const NODE_HEALTH_PORT: i32 = 10256;
/// Where Google's health checkers and network load balancer probes come from.
pub const HEALTH_CHECK_SOURCES: [&str; 2] = ["130.211.0.0/22", "35.191.0.0/16"];

pub const INTERVAL: &str = "portico.dev/gcp-healthcheck-interval";
pub const TIMEOUT: &str = "portico.dev/gcp-healthcheck-timeout";
pub const HEALTHY: &str = "portico.dev/gcp-healthcheck-healthy-threshold";
pub const UNHEALTHY: &str = "portico.dev/gcp-healthcheck-unhealthy-threshold";

/// Where the resources live and what they are aimed at (from the flags).
#[derive(Clone, Debug)]
pub struct Scope {
    pub project: String,
    pub region: String,
    pub network: String,
    pub node_tags: Vec<String>,
    pub cluster: String,
}

impl Scope {
    fn url(&self, rest: &str) -> String {
        format!(
            "https://www.googleapis.com/compute/v1/projects/{}/{rest}",
            self.project
        )
    }
    pub fn health_check_url(&self, name: &str) -> String {
        self.url(&format!("global/httpHealthChecks/{name}"))
    }
    pub fn pool_url(&self, name: &str) -> String {
        self.url(&format!("regions/{}/targetPools/{name}", self.region))
    }
    pub fn network_url(&self) -> String {
        self.url(&format!("global/networks/{}", self.network))
    }
    /// The shared health check of `externalTrafficPolicy: Cluster` Services.
    pub fn cluster_health_check(&self) -> String {
        format!("k8s-{}-node", self.cluster)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub name: String,
    /// The shared per-cluster check (deleted with the last Service whose pool refers to it).
    pub shared: bool,
    pub port: i32,
    pub path: String,
    pub interval: i32,
    pub timeout: i32,
    pub healthy: i32,
    pub unhealthy: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Firewall {
    pub name: String,
    /// `tcp` or `udp`.
    pub protocol: String,
    pub ports: Vec<String>,
    pub source_ranges: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredLb {
    /// The address, the pool, the forwarding rule and a per-Service health check share it.
    pub name: String,
    pub description: String,
    /// `spec.loadBalancerIP`, verified rather than allocated.
    pub requested_ip: Option<String>,
    /// `TCP` or `UDP`.
    pub protocol: String,
    /// `low-high` over the Service ports (a forwarding rule takes one range).
    pub port_range: String,
    pub firewall: Firewall,
    pub health_firewall: Firewall,
    pub health_check: HealthCheck,
    /// `NONE` or `CLIENT_IP`.
    pub affinity: String,
    /// Instance URLs, sorted.
    pub instances: Vec<String>,
}

/// `"a"` + the UID without dashes, cut to 32 characters (cloud-provider-gcp's rule).
pub fn lb_name(uid: &str) -> String {
    let mut name: String = format!("a{}", uid.replace('-', ""));
    name.truncate(32);
    name
}

pub fn firewall_name(lb: &str) -> String {
    format!("k8s-fw-{lb}")
}

pub fn health_firewall_name(lb: &str) -> String {
    format!("k8s-{lb}-http-hc")
}

/// What every resource's description carries: the Service, its UID and the cluster (JSON, as
/// cloud-provider-gcp writes it), so orphans can be found after the Service is gone.
pub fn description(cluster: &str, service: &Service) -> String {
    serde_json::json!({
        "kubernetes.io/service-name": format!("{}/{}", service.namespace().unwrap_or_default(), service.name_any()),
        "kubernetes.io/service-uid": service.uid().unwrap_or_default(),
        "kubernetes.io/cluster-name": cluster,
    })
    .to_string()
}

/// The (cluster, Service UID) a description names, when it is one of ours.
pub fn owner(description: &str) -> Option<(String, String)> {
    let value: serde_json::Value = serde_json::from_str(description).ok()?;
    Some((
        value["kubernetes.io/cluster-name"].as_str()?.to_owned(),
        value["kubernetes.io/service-uid"].as_str()?.to_owned(),
    ))
}

fn number(
    service: &Service,
    key: &str,
    default: i32,
    range: (i32, i32),
) -> Result<i32, ProviderError> {
    let Some(value) = service.annotations().get(key).map(|v| v.trim()) else {
        return Ok(default);
    };
    match value.parse::<i32>() {
        Ok(n) if (range.0..=range.1).contains(&n) => Ok(n),
        _ => Err(ProviderError::invalid(
            key,
            format!(
                "{value:?} is not a whole number from {} to {}",
                range.0, range.1
            ),
        )),
    }
}

/// Local: the Service's own check on its healthCheckNodePort; Cluster: the shared check on the
/// agent's 10256. Both `/healthz`, 8 s / 1 s / 1 / 3 (cloud-provider-gcp's); the annotations
/// tune a Local Service's own check only.
pub fn health_check(
    scope: &Scope,
    service: &Service,
    lb: &str,
) -> Result<HealthCheck, ProviderError> {
    let spec = service.spec.clone().unwrap_or_default();
    let local = spec.external_traffic_policy.as_deref() == Some("Local");
    let (name, shared, port) = if local {
        let port = spec.health_check_node_port.ok_or_else(|| {
            ProviderError::invalid(
                "spec.healthCheckNodePort",
                "not allocated yet for externalTrafficPolicy: Local",
            )
        })?;
        (lb.to_owned(), false, port)
    } else {
        (scope.cluster_health_check(), true, NODE_HEALTH_PORT)
    };
    if shared {
        // One check for every Cluster Service: the defaults, never one Service's annotations.
        return Ok(HealthCheck {
            name,
            shared,
            port,
            path: "/healthz".into(),
            interval: 8,
            timeout: 1,
            healthy: 1,
            unhealthy: 3,
        });
    }
    let interval = number(service, INTERVAL, 8, (1, 300))?;
    let timeout = number(service, TIMEOUT, 1, (1, 300))?;
    if timeout > interval {
        return Err(ProviderError::invalid(
            TIMEOUT,
            format!("{timeout} s is longer than the interval ({interval} s)"),
        ));
    }
    Ok(HealthCheck {
        name,
        shared,
        port,
        path: "/healthz".into(),
        interval,
        timeout,
        healthy: number(service, HEALTHY, 1, (1, 10))?,
        unhealthy: number(service, UNHEALTHY, 3, (1, 10))?,
    })
}

/// `gce://project/zone/name` → the instance's URL.
pub fn instance_url(provider_id: &str) -> Option<String> {
    let rest = provider_id.strip_prefix("gce://")?;
    let mut parts = rest.split('/');
    let (project, zone, name) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || [project, zone, name].iter().any(|s| s.is_empty()) {
        return None;
    }
    Some(format!(
        "https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}/instances/{name}"
    ))
}

/// The pool's instances, and a warning per node whose providerID names no GCE instance.
pub fn instances(nodes: &[LbNode]) -> (Vec<String>, Vec<String>) {
    let mut urls = Vec::new();
    let mut warnings = Vec::new();
    for node in nodes {
        match instance_url(&node.provider_id) {
            Some(url) => urls.push(url),
            None => warnings.push(format!(
                "node {}: spec.providerID {:?} is not gce://project/zone/name; left out of the target pool",
                node.name, node.provider_id
            )),
        }
    }
    urls.sort();
    urls.dedup();
    (urls, warnings)
}

pub fn desired_lb(
    scope: &Scope,
    service: &Service,
    nodes: &[LbNode],
) -> Result<(DesiredLb, Vec<String>), ProviderError> {
    let uid = service
        .uid()
        .ok_or_else(|| ProviderError::invalid("metadata.uid", "the Service has no UID yet"))?;
    let name = lb_name(&uid);
    let spec = service.spec.clone().unwrap_or_default();
    let ports = spec.ports.unwrap_or_default();
    if ports.is_empty() {
        return Err(ProviderError::invalid("spec.ports", "no ports"));
    }
    let protocol = ports[0].protocol.clone().unwrap_or_else(|| "TCP".into());
    if ports
        .iter()
        .any(|p| p.protocol.as_deref().unwrap_or("TCP") != protocol)
    {
        return Err(ProviderError::invalid(
            "spec.ports[].protocol",
            "a target-pool load balancer serves one protocol; use one Service per protocol",
        ));
    }
    if protocol != "TCP" && protocol != "UDP" {
        return Err(ProviderError::invalid(
            "spec.ports[].protocol",
            format!("{protocol} is not served by a GCP network load balancer (TCP or UDP)"),
        ));
    }
    let numbers: Vec<i32> = ports.iter().map(|p| p.port).collect();
    let (low, high) = (
        numbers.iter().min().copied().unwrap_or(0),
        numbers.iter().max().copied().unwrap_or(0),
    );
    let mut port_list: Vec<String> = numbers.iter().map(|p| p.to_string()).collect();
    port_list.sort();
    port_list.dedup();
    let mut source_ranges = spec.load_balancer_source_ranges.unwrap_or_default();
    for range in &source_ranges {
        if range.parse::<ipnet::IpNet>().is_err() {
            return Err(ProviderError::invalid(
                "spec.loadBalancerSourceRanges",
                format!("{range:?} is not a CIDR"),
            ));
        }
    }
    if source_ranges.is_empty() {
        source_ranges.push("0.0.0.0/0".into());
    }
    source_ranges.sort();
    let health_check = health_check(scope, service, &name)?;
    let affinity = match spec.session_affinity.as_deref() {
        Some("ClientIP") => "CLIENT_IP",
        _ => "NONE",
    };
    let (instances, warnings) = instances(nodes);
    let lb = DesiredLb {
        description: description(&scope.cluster, service),
        requested_ip: spec.load_balancer_ip.filter(|ip| !ip.is_empty()),
        protocol: protocol.clone(),
        port_range: format!("{low}-{high}"),
        firewall: Firewall {
            name: firewall_name(&name),
            protocol: protocol.to_lowercase(),
            ports: port_list,
            source_ranges,
        },
        health_firewall: Firewall {
            name: health_firewall_name(&name),
            protocol: "tcp".into(),
            ports: vec![health_check.port.to_string()],
            source_ranges: HEALTH_CHECK_SOURCES.iter().map(|s| s.to_string()).collect(),
        },
        health_check,
        affinity: affinity.into(),
        instances,
        name,
    };
    Ok((lb, warnings))
}
