//! What in an EndpointSlice the dataplane cannot use. `build` leaves such data out (as
//! kube-proxy does); this names it, so the agent can tell the operator once per slice version
//! instead of serving less than the slice says in silence.
//!
//! Pure: a slice in, its problems out; `crate::slice_warnings` logs and counts them.

use std::collections::HashMap;
use std::net::IpAddr;

use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::build::SERVICE_NAME_LABEL;

/// Why part of a slice is left out; the label of the problem metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemReason {
    /// `addressType: FQDN`: kube-proxy does not serve these, nor does the agent.
    Fqdn,
    /// A port without a usable number: no endpoint of the slice is reachable on it.
    MissingPort,
    /// An endpoint without an address, or one that is no IP of the slice's address type.
    InvalidAddress,
    /// The same address twice in one slice: only one of them is used.
    DuplicateEndpoint,
    /// No `nodeName`: the endpoint never counts as local (Local policy, health checks).
    MissingNodeName,
}

impl ProblemReason {
    pub fn label(self) -> &'static str {
        match self {
            ProblemReason::Fqdn => "fqdn",
            ProblemReason::MissingPort => "missing_port",
            ProblemReason::InvalidAddress => "invalid_address",
            ProblemReason::DuplicateEndpoint => "duplicate_endpoint",
            ProblemReason::MissingNodeName => "missing_node_name",
        }
    }
}

/// One problem: which field of the slice, and what the agent does about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceProblem {
    pub reason: ProblemReason,
    /// The field path inside the slice, as `kubectl explain` spells it: `endpoints[2].nodeName`.
    pub field: String,
    pub message: String,
}

impl SliceProblem {
    fn new(reason: ProblemReason, field: String, message: impl Into<String>) -> Self {
        SliceProblem {
            reason,
            field,
            message: message.into(),
        }
    }
}

/// The problems of one slice, in field order. Slices that belong to no Service (no
/// `kubernetes.io/service-name` label) are not the agent's to judge and have none.
pub fn slice_problems(slice: &EndpointSlice) -> Vec<SliceProblem> {
    let owned = slice
        .metadata
        .labels
        .as_ref()
        .is_some_and(|labels| labels.contains_key(SERVICE_NAME_LABEL));
    if !owned {
        return Vec::new();
    }
    let family = match slice.address_type.as_str() {
        "IPv4" => IpAddr::is_ipv4,
        "IPv6" => IpAddr::is_ipv6,
        "FQDN" => {
            return vec![SliceProblem::new(
                ProblemReason::Fqdn,
                "addressType".into(),
                "FQDN slices are not served; the Service gets no endpoints from this slice",
            )];
        }
        other => {
            return vec![SliceProblem::new(
                ProblemReason::InvalidAddress,
                "addressType".into(),
                format!("unknown address type {other:?}; the slice is not served"),
            )];
        }
    };
    let mut problems = Vec::new();
    for (i, port) in slice.ports.iter().flatten().enumerate() {
        let usable = port
            .port
            .is_some_and(|number| u16::try_from(number).is_ok_and(|n| n != 0));
        if !usable {
            let name = port.name.as_deref().unwrap_or_default();
            problems.push(SliceProblem::new(
                ProblemReason::MissingPort,
                format!("ports[{i}].port"),
                format!("port {name:?} has no usable number; its endpoints are not served"),
            ));
        }
    }
    let mut first_seen: HashMap<IpAddr, usize> = HashMap::new();
    for (i, endpoint) in slice.endpoints.iter().enumerate() {
        // The dataplane uses an endpoint's first address (every address is the same pod).
        let field = format!("endpoints[{i}].addresses[0]");
        let Some(address) = endpoint.addresses.first() else {
            problems.push(SliceProblem::new(
                ProblemReason::InvalidAddress,
                format!("endpoints[{i}].addresses"),
                "no address; the endpoint is not served",
            ));
            continue;
        };
        let Some(ip) = address.parse::<IpAddr>().ok().filter(&family) else {
            problems.push(SliceProblem::new(
                ProblemReason::InvalidAddress,
                field,
                format!(
                    "{address:?} is not an {} address; the endpoint is not served",
                    slice.address_type
                ),
            ));
            continue;
        };
        if let Some(first) = first_seen.get(&ip) {
            problems.push(SliceProblem::new(
                ProblemReason::DuplicateEndpoint,
                field,
                format!("{ip} is already endpoints[{first}]; only one of them is used"),
            ));
        } else {
            first_seen.insert(ip, i);
        }
        if endpoint.node_name.as_deref().is_none_or(str::is_empty) {
            problems.push(SliceProblem::new(
                ProblemReason::MissingNodeName,
                format!("endpoints[{i}].nodeName"),
                format!(
                    "{ip} names no node; it never counts as local (Local traffic policy, health checks)"
                ),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort};
    use kube::api::ObjectMeta;

    use super::*;

    fn mk_endpoint(ip: &str, node: Option<&str>) -> Endpoint {
        Endpoint {
            addresses: vec![ip.into()],
            node_name: node.map(Into::into),
            ..Default::default()
        }
    }

    fn mk_slice(address_type: &str, port: Option<i32>, endpoints: Vec<Endpoint>) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                name: Some("echo-abc".into()),
                namespace: Some("default".into()),
                labels: Some(BTreeMap::from([(
                    SERVICE_NAME_LABEL.to_owned(),
                    "echo".to_owned(),
                )])),
                ..Default::default()
            },
            address_type: address_type.into(),
            endpoints,
            ports: Some(vec![EndpointPort {
                name: Some("http".into()),
                port,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
        }
    }

    fn fields(problems: &[SliceProblem]) -> Vec<(ProblemReason, &str)> {
        problems
            .iter()
            .map(|p| (p.reason, p.field.as_str()))
            .collect()
    }

    #[test]
    fn a_well_formed_slice_has_no_problems() {
        let slice = mk_slice(
            "IPv4",
            Some(8080),
            vec![
                mk_endpoint("10.244.0.5", Some("node-0")),
                mk_endpoint("10.244.1.5", Some("node-1")),
            ],
        );
        assert_eq!(slice_problems(&slice), vec![]);
    }

    #[test]
    fn each_unusable_field_is_named() {
        let slice = mk_slice(
            "IPv4",
            None,
            vec![
                mk_endpoint("10.244.0.5", Some("node-0")),
                mk_endpoint("10.244.0.6", None),
                mk_endpoint("10.244.0.5", Some("node-0")),
                mk_endpoint("fd00::1", Some("node-0")),
                Endpoint::default(),
            ],
        );
        let problems = slice_problems(&slice);
        assert_eq!(
            fields(&problems),
            vec![
                (ProblemReason::MissingPort, "ports[0].port"),
                (ProblemReason::MissingNodeName, "endpoints[1].nodeName"),
                (
                    ProblemReason::DuplicateEndpoint,
                    "endpoints[2].addresses[0]"
                ),
                (ProblemReason::InvalidAddress, "endpoints[3].addresses[0]"),
                (ProblemReason::InvalidAddress, "endpoints[4].addresses"),
            ]
        );
        assert!(
            problems[2].message.contains("endpoints[0]"),
            "{:?}",
            problems[2]
        );
    }

    #[test]
    fn an_fqdn_slice_is_one_problem() {
        let slice = mk_slice(
            "FQDN",
            Some(80),
            vec![
                mk_endpoint("example.com", None),
                mk_endpoint("example.org", None),
            ],
        );
        assert_eq!(
            fields(&slice_problems(&slice)),
            vec![(ProblemReason::Fqdn, "addressType")]
        );
    }

    #[test]
    fn port_zero_is_no_port_and_slices_of_no_service_are_not_judged() {
        let slice = mk_slice("IPv4", Some(0), vec![mk_endpoint("10.244.0.5", Some("n"))]);
        assert_eq!(
            fields(&slice_problems(&slice)),
            vec![(ProblemReason::MissingPort, "ports[0].port")]
        );
        let mut unowned = mk_slice("FQDN", None, vec![]);
        unowned.metadata.labels = None;
        assert_eq!(slice_problems(&unowned), vec![]);
    }
}
