//! When two Services may hold one address (annotation `portico.dev/allow-shared-ip`), with
//! MetalLB's rules: the same sharing key on both, no `(port, protocol)` in common, and the same
//! announcement needs (both `Cluster`, or both `Local` selecting the same pods, because a `Local`
//! address is announced only from nodes with a local endpoint).

use std::collections::BTreeMap;

use super::error::ShareRefusal;
use super::request::{ServicePort, ServiceRequest, TrafficPolicy};

/// What of a Service decides whether it may share an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ShareProfile {
    pub sharing_key: Option<String>,
    pub ports: Vec<ServicePort>,
    pub traffic_policy: TrafficPolicy,
    pub selector: BTreeMap<String, String>,
}

impl ShareProfile {
    pub(crate) fn of(request: &ServiceRequest) -> Self {
        ShareProfile {
            sharing_key: request.sharing_key.clone(),
            ports: request.ports.clone(),
            traffic_policy: request.traffic_policy,
            selector: request.selector.clone(),
        }
    }

    /// Whether `self` (the requester) may share an address with `holder`, and if not, why.
    pub(crate) fn can_share_with(&self, holder: &ShareProfile) -> Result<(), ShareRefusal> {
        let (requester_key, holder_key) = match (&self.sharing_key, &holder.sharing_key) {
            (_, None) => return Err(ShareRefusal::HolderDoesNotShare),
            (None, Some(_)) => return Err(ShareRefusal::RequesterDoesNotShare),
            (Some(requester), Some(holder)) => (requester, holder),
        };
        if requester_key != holder_key {
            return Err(ShareRefusal::DifferentKeys {
                requester: requester_key.clone(),
                holder: holder_key.clone(),
            });
        }
        if let Some(clash) = self.ports.iter().find(|port| holder.ports.contains(port)) {
            return Err(ShareRefusal::PortClash {
                port: clash.port,
                protocol: clash.protocol.clone(),
            });
        }
        match (self.traffic_policy, holder.traffic_policy) {
            (TrafficPolicy::Cluster, TrafficPolicy::Cluster) => Ok(()),
            (TrafficPolicy::Local, TrafficPolicy::Local) if self.selector == holder.selector => {
                Ok(())
            }
            (TrafficPolicy::Local, TrafficPolicy::Local) => Err(ShareRefusal::SelectorDiffers),
            (requester, holder) => Err(ShareRefusal::TrafficPolicyDiffers { requester, holder }),
        }
    }
}
