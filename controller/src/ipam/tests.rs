//! Table-driven tests of the allocator, one file per behaviour, sharing the builders below.

mod dual_stack;
mod exhaustion;
mod malformed;
mod pool_choice;
mod requests;
mod sharing;
mod stability;

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use portico_api::{AddressPool, AddressPoolSpec, IpFamily, ServiceAllocation};

use super::{
    Allocator, IpFamilyPolicy, IpamError, PoolStats, RequestedBy, ServiceKey, ServicePort,
    ServiceRequest, TrafficPolicy,
};

pub(super) fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|_| panic!("test address {text:?}"))
}

pub(super) fn ips(texts: &[&str]) -> Vec<IpAddr> {
    texts.iter().map(|text| ip(text)).collect()
}

/// A pool with `autoAssign: true` and no restrictions.
pub(super) fn mk_pool(name: &str, addresses: &[&str]) -> AddressPool {
    AddressPool::new(
        name,
        AddressPoolSpec {
            addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
            auto_assign: true,
            avoid_buggy_ips: false,
            service_allocation: None,
        },
    )
}

/// A pool changed by `edit`.
pub(super) fn mk_pool_with(
    name: &str,
    addresses: &[&str],
    edit: impl FnOnce(&mut AddressPoolSpec),
) -> AddressPool {
    let mut pool = mk_pool(name, addresses);
    edit(&mut pool.spec);
    pool
}

/// A `serviceAllocation` with only a priority.
pub(super) fn priority(value: i32) -> Option<ServiceAllocation> {
    Some(ServiceAllocation {
        priority: Some(value),
        ..ServiceAllocation::default()
    })
}

/// `matchLabels` with one pair.
pub(super) fn selector(key: &str, value: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels(&[(key, value)])),
        match_expressions: None,
    }
}

/// One `matchExpressions` entry.
pub(super) fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelector {
    LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: key.to_owned(),
            operator: operator.to_owned(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
        }]),
    }
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub(super) fn allocator(pools: &[AddressPool]) -> Allocator {
    let mut allocator = Allocator::new();
    allocator.set_pools(pools);
    allocator
}

/// A Service `namespace/name` asking for nothing in particular, with port 80/TCP.
pub(super) fn mk_service(key: &str) -> ServiceRequest {
    let (namespace, name) = key.split_once('/').unwrap_or(("default", key));
    ServiceRequest {
        ports: vec![ServicePort::new(80, "TCP")],
        ..ServiceRequest::new(ServiceKey::new(namespace, name))
    }
}

/// Builders for the cases: each sets one thing a Service asks for.
impl ServiceRequest {
    pub(super) fn in_pool(mut self, pool: &str) -> Self {
        self.pool = Some(pool.to_owned());
        self
    }

    pub(super) fn asking_for(mut self, addrs: &[&str]) -> Self {
        self.requested_ips = ips(addrs);
        self
    }

    pub(super) fn sharing(mut self, key: &str) -> Self {
        self.sharing_key = Some(key.to_owned());
        self
    }

    pub(super) fn ports(mut self, ports: &[(i32, &str)]) -> Self {
        self.ports = ports
            .iter()
            .map(|(p, proto)| ServicePort::new(*p, proto))
            .collect();
        self
    }

    pub(super) fn local(mut self, pod_selector: &[(&str, &str)]) -> Self {
        self.traffic_policy = TrafficPolicy::Local;
        self.selector = labels(pod_selector);
        self
    }

    pub(super) fn families(mut self, families: &[IpFamily], policy: IpFamilyPolicy) -> Self {
        self.ip_families = families.to_vec();
        self.ip_family_policy = policy;
        self
    }

    pub(super) fn labelled(mut self, pairs: &[(&str, &str)]) -> Self {
        self.labels = labels(pairs);
        self
    }

    pub(super) fn namespace_labelled(mut self, pairs: &[(&str, &str)]) -> Self {
        self.namespace_labels = labels(pairs);
        self
    }

    pub(super) fn with_status(mut self, addrs: &[&str]) -> Self {
        self.current_ips = ips(addrs);
        self
    }
}

/// The addresses assigned, as text, or the error's label: what the tables compare.
pub(super) fn outcome(
    result: Result<super::Allocation, IpamError>,
) -> Result<Vec<String>, &'static str> {
    result
        .map(|allocation| allocation.ips().iter().map(ToString::to_string).collect())
        .map_err(|e| e.label())
}

/// `Ok` with the given addresses, for tables.
pub(super) fn got(addrs: &[&str]) -> Result<Vec<String>, &'static str> {
    Ok(addrs.iter().map(|a| (*a).to_owned()).collect())
}
