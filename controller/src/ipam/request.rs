//! What one Service asks of the allocator, parsed once from the `Service` object so that the
//! allocator itself never sees Kubernetes types and every malformed input fails here, with the
//! annotation or field named and its value quoted.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use portico_api::IpFamily;
pub use portico_api::ServiceKey;
use portico_api::keys::service::{ADDRESS_POOL, ALLOW_SHARED_IP, LOAD_BALANCER_IPS};

use super::error::IpamError;

/// `spec.externalTrafficPolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrafficPolicy {
    #[default]
    Cluster,
    Local,
}

impl fmt::Display for TrafficPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrafficPolicy::Cluster => "Cluster",
            TrafficPolicy::Local => "Local",
        })
    }
}

/// `spec.ipFamilyPolicy`; unset means `SingleStack`, as the API server defaults it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IpFamilyPolicy {
    #[default]
    SingleStack,
    PreferDualStack,
    RequireDualStack,
}

impl fmt::Display for IpFamilyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpFamilyPolicy::SingleStack => "SingleStack",
            IpFamilyPolicy::PreferDualStack => "PreferDualStack",
            IpFamilyPolicy::RequireDualStack => "RequireDualStack",
        })
    }
}

/// One `(port, protocol)` of `spec.ports`: what two sharing Services must not both use.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServicePort {
    pub port: i32,
    /// `TCP`, `UDP` or `SCTP`, as the API spells it.
    pub protocol: String,
}

impl ServicePort {
    pub fn new(port: i32, protocol: &str) -> Self {
        ServicePort {
            port,
            protocol: protocol.to_owned(),
        }
    }
}

/// Where a Service's requested addresses come from, named in every message about them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RequestedBy {
    /// Annotation `portico.dev/load-balancer-ips`.
    #[default]
    Annotation,
    /// The deprecated `spec.loadBalancerIP`, when the annotation is not set.
    LoadBalancerIp,
}

impl fmt::Display for RequestedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestedBy::Annotation => write!(f, "annotation {LOAD_BALANCER_IPS}"),
            RequestedBy::LoadBalancerIp => f.write_str("spec.loadBalancerIP"),
        }
    }
}

/// Everything about one Service the allocator decides on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceRequest {
    pub key: ServiceKey,
    /// The Service's labels, for `serviceAllocation.serviceSelectors`.
    pub labels: BTreeMap<String, String>,
    /// Its namespace's labels, for `serviceAllocation.namespaceSelectors`.
    pub namespace_labels: BTreeMap<String, String>,
    /// Annotation `portico.dev/address-pool`.
    pub pool: Option<String>,
    /// Annotation `portico.dev/load-balancer-ips`, else `spec.loadBalancerIP`; at most one per family.
    pub requested_ips: Vec<IpAddr>,
    /// Which of the two `requested_ips` come from.
    pub requested_by: RequestedBy,
    /// Annotation `portico.dev/allow-shared-ip`.
    pub sharing_key: Option<String>,
    pub ports: Vec<ServicePort>,
    pub traffic_policy: TrafficPolicy,
    /// `spec.selector`: Local Services may share only when they select the same pods.
    pub selector: BTreeMap<String, String>,
    /// `spec.ipFamilies`, in order; empty means "whatever the pool gives" (the API server
    /// always fills it, so this only happens for hand-built requests).
    pub ip_families: Vec<IpFamily>,
    pub ip_family_policy: IpFamilyPolicy,
    /// The addresses in `status.loadBalancer.ingress`, for restoring after a restart.
    pub current_ips: Vec<IpAddr>,
}

impl ServiceRequest {
    /// A request with nothing asked for: any pool, any address, IPv4 single stack by default.
    pub fn new(key: ServiceKey) -> Self {
        ServiceRequest {
            key,
            ..ServiceRequest::default()
        }
    }

    /// Reads a Service (and its namespace's labels). Fails on the first malformed annotation or
    /// field, naming it and quoting its value.
    pub fn from_service(
        service: &Service,
        namespace_labels: &BTreeMap<String, String>,
    ) -> Result<Self, IpamError> {
        let metadata = &service.metadata;
        let annotations = metadata.annotations.clone().unwrap_or_default();
        let spec = service.spec.clone().unwrap_or_default();

        let pool = annotations
            .get(ADDRESS_POOL)
            .map(|value| non_empty_annotation(ADDRESS_POOL, value, "must name an AddressPool"))
            .transpose()?;
        let sharing_key = annotations
            .get(ALLOW_SHARED_IP)
            .map(|value| {
                non_empty_annotation(ALLOW_SHARED_IP, value, "must be a non-empty sharing key")
            })
            .transpose()?;
        let (requested_ips, requested_by) = requested_ips(
            annotations.get(LOAD_BALANCER_IPS),
            spec.load_balancer_ip.as_deref(),
        )?;

        let ip_families = spec
            .ip_families
            .iter()
            .flatten()
            .map(|family| parse_family(family))
            .collect::<Result<Vec<_>, _>>()?;
        let ip_family_policy = match spec.ip_family_policy.as_deref() {
            None | Some("SingleStack") => IpFamilyPolicy::SingleStack,
            Some("PreferDualStack") => IpFamilyPolicy::PreferDualStack,
            Some("RequireDualStack") => IpFamilyPolicy::RequireDualStack,
            Some(other) => {
                return Err(malformed_field(
                    "spec.ipFamilyPolicy",
                    other,
                    "is not one of SingleStack, PreferDualStack, RequireDualStack",
                ));
            }
        };
        let traffic_policy = match spec.external_traffic_policy.as_deref() {
            None | Some("Cluster") => TrafficPolicy::Cluster,
            Some("Local") => TrafficPolicy::Local,
            Some(other) => {
                return Err(malformed_field(
                    "spec.externalTrafficPolicy",
                    other,
                    "is not one of Cluster, Local",
                ));
            }
        };
        let ports = spec
            .ports
            .iter()
            .flatten()
            .map(|p| ServicePort::new(p.port, p.protocol.as_deref().unwrap_or("TCP")))
            .collect();
        // The status is the controller's own output; an entry that does not parse (or a hostname
        // from another implementation) is not an address to keep, so it is skipped, not fatal.
        let current_ips = service
            .status
            .iter()
            .filter_map(|status| status.load_balancer.as_ref())
            .flat_map(|lb| lb.ingress.iter().flatten())
            .filter_map(|ingress| ingress.ip.as_deref()?.parse().ok())
            .collect();

        Ok(ServiceRequest {
            key: ServiceKey::new(
                metadata.namespace.clone().unwrap_or_default(),
                metadata.name.clone().unwrap_or_default(),
            ),
            labels: metadata.labels.clone().unwrap_or_default(),
            namespace_labels: namespace_labels.clone(),
            pool,
            requested_ips,
            requested_by,
            sharing_key,
            ports,
            traffic_policy,
            selector: spec.selector.unwrap_or_default(),
            ip_families,
            ip_family_policy,
            current_ips,
        })
    }
}

fn malformed_field(field: &'static str, value: &str, reason: &str) -> IpamError {
    IpamError::MalformedField {
        field,
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn malformed_annotation(key: &'static str, value: &str, reason: impl Into<String>) -> IpamError {
    IpamError::MalformedAnnotation {
        key,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

fn non_empty_annotation(key: &'static str, value: &str, reason: &str) -> Result<String, IpamError> {
    match value.trim() {
        "" => Err(malformed_annotation(key, value, reason)),
        trimmed => Ok(trimmed.to_owned()),
    }
}

fn parse_family(value: &str) -> Result<IpFamily, IpamError> {
    match value {
        "IPv4" => Ok(IpFamily::V4),
        "IPv6" => Ok(IpFamily::V6),
        other => Err(malformed_field(
            "spec.ipFamilies",
            other,
            "is not one of IPv4, IPv6",
        )),
    }
}

/// The annotation's addresses (at most one per family), or else `spec.loadBalancerIP`. Both may be
/// set only when they agree, because silently preferring one hides the user's mistake.
fn requested_ips(
    annotation: Option<&String>,
    load_balancer_ip: Option<&str>,
) -> Result<(Vec<IpAddr>, RequestedBy), IpamError> {
    let from_field =
        match load_balancer_ip.map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(text.parse::<IpAddr>().map_err(|_| {
                malformed_field("spec.loadBalancerIP", text, "is not an IP address")
            })?),
        };
    let Some(value) = annotation else {
        return Ok((
            from_field.into_iter().collect(),
            RequestedBy::LoadBalancerIp,
        ));
    };
    let mut addrs: Vec<IpAddr> = Vec::with_capacity(2);
    for entry in value.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err(malformed_annotation(
                LOAD_BALANCER_IPS,
                value,
                "has an empty entry; write addresses separated by single commas",
            ));
        }
        let addr: IpAddr = entry
            .parse()
            .map_err(|_| malformed_annotation(LOAD_BALANCER_IPS, entry, "is not an IP address"))?;
        if let Some(first) = addrs
            .iter()
            .find(|a| IpFamily::of(**a) == IpFamily::of(addr))
        {
            return Err(IpamError::TwoAddressesOfOneFamily {
                source_name: LOAD_BALANCER_IPS,
                family: IpFamily::of(addr),
                first: *first,
                second: addr,
            });
        }
        addrs.push(addr);
    }
    if let Some(field_addr) = from_field
        && !addrs.contains(&field_addr)
    {
        return Err(IpamError::ConflictingRequests {
            annotation: LOAD_BALANCER_IPS,
            annotation_value: value.clone(),
            load_balancer_ip: field_addr,
        });
    }
    Ok((addrs, RequestedBy::Annotation))
}
