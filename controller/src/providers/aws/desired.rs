//! The NLB a Service should have, worked out from the Service alone (no AWS calls): names, tags,
//! scheme, one target group per port with its health check, one listener per port.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use portico_api::keys::aws_tag;
use portico_api::keys::service as ann;
use sha2::{Digest, Sha256};

use crate::args::ClusterHealthCheck;
use crate::providers::ProviderError;

/// The agent's node health port (kube-proxy's `--healthz-bind-address` port).
pub const NODE_HEALTH_PORT: i32 = 10256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// `HTTP` or `TCP`.
    pub protocol: String,
    /// A port number, or `traffic-port`.
    pub port: String,
    /// Only for HTTP.
    pub path: Option<String>,
    pub interval: i32,
    pub timeout: i32,
    pub healthy: i32,
    pub unhealthy: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredTargetGroup {
    pub name: String,
    /// `TCP`, `UDP` or `TCP_UDP` (a port served on both).
    pub protocol: String,
    /// The listener's port (the Service port).
    pub port: i32,
    /// Where the targets receive traffic.
    pub node_port: i32,
    pub health: HealthCheck,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredLb {
    pub name: String,
    pub internal: bool,
    /// From the annotation; `None`: discover by the cluster tag.
    pub subnets: Option<Vec<String>>,
    pub eip_allocations: Vec<String>,
    pub tags: BTreeMap<String, String>,
    /// Sorted by port.
    pub target_groups: Vec<DesiredTargetGroup>,
}

fn hash_hex(input: &str) -> String {
    Sha256::digest(input.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// NLB names allow 32 characters: a hash of the cluster and the Service's UID.
pub fn lb_name(cluster: &str, uid: &str) -> String {
    format!("portico-{}", &hash_hex(&format!("{cluster}/{uid}"))[..24])
}

/// Target group names allow 32 characters and must be unique in the region: the same hash, the
/// port and the protocol (a target group's protocol cannot change, so a new one is a new name).
pub fn target_group_name(cluster: &str, uid: &str, port: i32, protocol: &str) -> String {
    let letter = match protocol {
        "UDP" => 'u',
        "TCP_UDP" => 'b',
        _ => 't',
    };
    format!(
        "portico-{}-{port}{letter}",
        &hash_hex(&format!("{cluster}/{uid}"))[..14]
    )
}

pub fn tags(cluster: &str, service: &Service) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            format!("{}{cluster}", aws_tag::CLUSTER_PREFIX),
            "owned".into(),
        ),
        (
            aws_tag::SERVICE_NAME.into(),
            format!(
                "{}/{}",
                service.namespace().unwrap_or_default(),
                service.name_any()
            ),
        ),
        (
            aws_tag::SERVICE_UID.into(),
            service.uid().unwrap_or_default(),
        ),
    ])
}

fn annotation<'a>(service: &'a Service, key: &str) -> Option<&'a str> {
    service.annotations().get(key).map(|v| v.trim())
}

fn list(service: &Service, key: &str) -> Option<Vec<String>> {
    annotation(service, key).map(|value| {
        value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    })
}

fn seconds(
    service: &Service,
    key: &str,
    default: i32,
    range: (i32, i32),
) -> Result<i32, ProviderError> {
    let Some(value) = annotation(service, key) else {
        return Ok(default);
    };
    match value.parse::<i32>() {
        Ok(n) if (range.0..=range.1).contains(&n) => Ok(n),
        _ => Err(ProviderError::invalid(
            key,
            format!(
                "{value:?} is not a whole number from {} to {} (AWS's limits)",
                range.0, range.1
            ),
        )),
    }
}

/// The health check for the Service: Local aims at its healthCheckNodePort, Cluster at the
/// agent's node health port (or TCP on the traffic port with `--aws-cluster-health-check`).
/// Defaults from DESIGN.md: Local 10 s / 6 s / 2 / 2 (aws-load-balancer-controller), Cluster
/// 30 s / 6 s / 3 / 3 (cloud-provider-aws's counts and interval).
pub fn health_check(
    service: &Service,
    cluster_check: ClusterHealthCheck,
) -> Result<HealthCheck, ProviderError> {
    let spec = service.spec.clone().unwrap_or_default();
    let local = spec.external_traffic_policy.as_deref() == Some("Local");
    let (protocol, port, path, defaults) = if local {
        let port = spec.health_check_node_port.ok_or_else(|| {
            ProviderError::invalid(
                "spec.healthCheckNodePort",
                "externalTrafficPolicy is Local but the API server gave no healthCheckNodePort yet",
            )
        })?;
        ("HTTP", port.to_string(), Some("/healthz"), (10, 6, 2, 2))
    } else if cluster_check == ClusterHealthCheck::Agent {
        (
            "HTTP",
            NODE_HEALTH_PORT.to_string(),
            Some("/healthz"),
            (30, 6, 3, 3),
        )
    } else {
        ("TCP", "traffic-port".to_string(), None, (30, 10, 3, 3))
    };
    let interval = seconds(service, ann::AWS_HEALTHCHECK_INTERVAL, defaults.0, (5, 300))?;
    let timeout = seconds(service, ann::AWS_HEALTHCHECK_TIMEOUT, defaults.1, (2, 120))?;
    if timeout >= interval {
        return Err(ProviderError::invalid(
            ann::AWS_HEALTHCHECK_TIMEOUT,
            format!("{timeout} s must be shorter than the interval ({interval} s)"),
        ));
    }
    Ok(HealthCheck {
        protocol: protocol.into(),
        port,
        path: path.map(String::from),
        interval,
        timeout,
        healthy: seconds(
            service,
            ann::AWS_HEALTHCHECK_HEALTHY_THRESHOLD,
            defaults.2,
            (2, 10),
        )?,
        unhealthy: seconds(
            service,
            ann::AWS_HEALTHCHECK_UNHEALTHY_THRESHOLD,
            defaults.3,
            (2, 10),
        )?,
    })
}

/// The whole desired NLB.
pub fn desired_lb(
    cluster: &str,
    service: &Service,
    cluster_check: ClusterHealthCheck,
) -> Result<DesiredLb, ProviderError> {
    let uid = service
        .uid()
        .ok_or_else(|| ProviderError::invalid("metadata.uid", "the Service has no UID"))?;
    let internal = match annotation(service, ann::AWS_INTERNAL) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ProviderError::invalid(
                ann::AWS_INTERNAL,
                format!("{other:?} is neither \"true\" nor \"false\""),
            ));
        }
    };
    let subnets = list(service, ann::AWS_SUBNETS);
    if let Some(bad) = subnets.iter().flatten().find(|s| !s.starts_with("subnet-")) {
        return Err(ProviderError::invalid(
            ann::AWS_SUBNETS,
            format!("{bad:?} is not a subnet ID (subnet-...)"),
        ));
    }
    let eip_allocations = list(service, ann::AWS_EIP_ALLOCATIONS).unwrap_or_default();
    if let Some(bad) = eip_allocations.iter().find(|s| !s.starts_with("eipalloc-")) {
        return Err(ProviderError::invalid(
            ann::AWS_EIP_ALLOCATIONS,
            format!("{bad:?} is not an allocation ID (eipalloc-...)"),
        ));
    }
    let health = health_check(service, cluster_check)?;
    // Ports by number: TCP and UDP on one number share a TCP_UDP target group and listener.
    let mut by_port: BTreeMap<i32, (Vec<String>, i32)> = BTreeMap::new();
    for port in service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
    {
        let protocol = port.protocol.clone().unwrap_or_else(|| "TCP".into());
        if protocol != "TCP" && protocol != "UDP" {
            return Err(ProviderError::invalid(
                "spec.ports.protocol",
                format!("port {}: an NLB does not forward {protocol}", port.port),
            ));
        }
        let node_port = port.node_port.ok_or_else(|| {
            ProviderError::invalid(
                "spec.ports.nodePort",
                format!("port {} has no nodePort (spec.allocateLoadBalancerNodePorts: false is not supported with instance targets)", port.port),
            )
        })?;
        let entry = by_port.entry(port.port).or_insert((Vec::new(), node_port));
        if entry.1 != node_port {
            return Err(ProviderError::invalid(
                "spec.ports.nodePort",
                format!(
                    "port {} is served on TCP and UDP with different nodePorts; one target group needs one",
                    port.port
                ),
            ));
        }
        entry.0.push(protocol);
    }
    let target_groups = by_port
        .into_iter()
        .map(|(port, (protocols, node_port))| {
            let protocol = if protocols.len() > 1 {
                "TCP_UDP".to_string()
            } else {
                protocols[0].clone()
            };
            let mut health = health.clone();
            if protocol == "UDP" && health.protocol == "TCP" {
                // A UDP target group cannot be checked with TCP on its own (UDP) port.
                health.protocol = "HTTP".into();
                health.port = NODE_HEALTH_PORT.to_string();
                health.path = Some("/healthz".into());
            }
            DesiredTargetGroup {
                name: target_group_name(cluster, &uid, port, &protocol),
                protocol,
                port,
                node_port,
                health,
            }
        })
        .collect();
    Ok(DesiredLb {
        name: lb_name(cluster, &uid),
        internal,
        subnets,
        eip_allocations,
        tags: tags(cluster, service),
        target_groups,
    })
}

/// The EC2 instance ID in a node's `spec.providerID` (`aws:///us-east-1a/i-0abc`).
pub fn instance_id(provider_id: &str) -> Option<&str> {
    let id = provider_id.strip_prefix("aws://")?.rsplit('/').next()?;
    (id.starts_with("i-") && id.len() > 2).then_some(id)
}

#[cfg(test)]
#[path = "desired_tests.rs"]
mod tests;
