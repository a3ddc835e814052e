//! An EndpointSlice as the dataplane and the announcer read it.

use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::Interner;
use crate::dataplane::build::SERVICE_NAME_LABEL;
use crate::dataplane::slice_problems::{SliceProblem, slice_problems};
use crate::dataplane::{IpFamily, Protocol};

/// What the agent uses of one EndpointSlice. A slice of no Service (no
/// `kubernetes.io/service-name` label) or of an address type the dataplane does not serve
/// (FQDN) keeps no ports or endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceView {
    pub namespace: Arc<str>,
    pub name: Box<str>,
    /// The Service the slice belongs to.
    pub service: Option<Arc<str>>,
    /// From `addressType`; `None` for FQDN and unknown types.
    pub family: Option<IpFamily>,
    /// In the slice's order (the first port matching a Service port's name and protocol wins).
    pub ports: Vec<SlicePortView>,
    /// Endpoints whose first address is an IP of the slice's family: the ones that can be served.
    pub endpoints: Vec<EndpointView>,
    /// What the dataplane leaves out of this version of the slice, judged once when it arrived;
    /// `None` (no allocation) for a slice without problems.
    pub problems: Option<Box<SliceProblems>>,
}

/// A slice port with a known protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlicePortView {
    /// Empty for an unnamed port.
    pub name: Box<str>,
    pub protocol: Protocol,
    /// `None` when the slice gives no usable number: the endpoints are not served on it.
    pub port: Option<u16>,
}

/// One endpoint, its conditions resolved as kube-proxy resolves them (ready unset → true,
/// serving unset → ready, terminating unset → false).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointView {
    /// The first address (every address of an endpoint is the same pod; kube-proxy uses it).
    pub ip: IpAddr,
    /// `nodeName`, shared between endpoints of the same node.
    pub node: Option<Arc<str>>,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

/// The problems of one version of a slice (`crate::slice_warnings` reports each once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceProblems {
    /// `resourceVersion`, else `generation`: a new version is judged and reported anew.
    pub version: String,
    pub problems: Vec<SliceProblem>,
}

impl From<&EndpointSlice> for SliceView {
    fn from(slice: &EndpointSlice) -> Self {
        SliceView::project(slice, &mut Interner::default())
    }
}

impl SliceView {
    /// The view of `slice`; `strings` shares namespaces and node names between views.
    pub fn project(slice: &EndpointSlice, strings: &mut Interner) -> Self {
        let meta = &slice.metadata;
        let problems = slice_problems(slice);
        let mut view = SliceView {
            namespace: strings.get(meta.namespace.as_deref().unwrap_or_default()),
            name: Box::from(meta.name.as_deref().unwrap_or_default()),
            service: meta
                .labels
                .as_ref()
                .and_then(|labels| labels.get(SERVICE_NAME_LABEL))
                .map(|service| Arc::from(service.as_str())),
            family: match slice.address_type.as_str() {
                "IPv4" => Some(IpFamily::V4),
                "IPv6" => Some(IpFamily::V6),
                _ => None,
            },
            ports: Vec::new(),
            endpoints: Vec::new(),
            problems: (!problems.is_empty()).then(|| {
                let version = (meta.resource_version.clone())
                    .or_else(|| meta.generation.map(|g| g.to_string()))
                    .unwrap_or_default();
                Box::new(SliceProblems { version, problems })
            }),
        };
        let (Some(family), Some(_)) = (view.family, &view.service) else {
            return view;
        };
        view.ports = (slice.ports.iter().flatten())
            .filter_map(|port| {
                Some(SlicePortView {
                    name: Box::from(port.name.as_deref().unwrap_or_default()),
                    protocol: Protocol::from_k8s(port.protocol.as_deref())?,
                    port: port.port.and_then(|number| u16::try_from(number).ok()),
                })
            })
            .collect();
        view.endpoints = (slice.endpoints.iter())
            .filter_map(|endpoint| {
                let ip = endpoint.addresses.first()?.parse::<IpAddr>().ok()?;
                if IpFamily::of(&ip) != family {
                    return None;
                }
                let conditions = endpoint.conditions.as_ref();
                let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
                Some(EndpointView {
                    ip,
                    node: endpoint.node_name.as_deref().map(|node| strings.get(node)),
                    ready,
                    serving: conditions.and_then(|c| c.serving).unwrap_or(ready),
                    terminating: conditions.and_then(|c| c.terminating).unwrap_or(false),
                })
            })
            .collect();
        view
    }
}
