//! Which watch events come from this controller's own writes and need no reconcile:
//!
//! ```text
//!   reconcile ─predicts─▶ "finalizer added", "status written" ─▶ OwnWrites ◀─is_own?── watch event
//!                                                                                   (no: reconcile)
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Service;
use kube::Resource;

use crate::ipam::ServiceKey;
use crate::reconcile::{lock, service_key};
use crate::status::current_ingress;

/// The states this controller's own writes will bring each Service to (the finalizer added; the
/// status written), predicted before the write. The watch event that brings such a state back
/// needs no reconcile: the reconcile that wrote it went on with the written object. Predicted
/// rather than taken from the answer, because the watch often delivers the new version before the
/// write's answer arrives. Without this, every new Service took two or three reconciles, which
/// a burst of thousands pays for in latency.
#[derive(Debug, Default)]
pub struct OwnWrites(Mutex<HashMap<ServiceKey, Vec<u64>>>);

impl OwnWrites {
    /// At most this many predictions are kept per Service (two per reconcile, normally).
    const KEPT: usize = 4;

    pub fn expect(&self, service: &Service) {
        let mut writes = lock(&self.0);
        let expected = writes.entry(service_key(service)).or_default();
        if expected.len() == Self::KEPT {
            expected.remove(0);
        }
        expected.push(own_state(service));
    }

    /// Whether this version of the Service is in a state this controller wrote (forgotten once seen).
    pub fn is_own(&self, service: &Service) -> bool {
        let key = service_key(service);
        let mut writes = lock(&self.0);
        if service.meta().deletion_timestamp.is_some() {
            writes.remove(&key);
            return false;
        }
        let Some(expected) = writes.get_mut(&key) else {
            return false;
        };
        let state = own_state(service);
        let Some(position) = expected.iter().position(|s| *s == state) else {
            return false;
        };
        // Earlier predictions were passed by (or never happened): forget them too.
        expected.drain(..=position);
        if expected.is_empty() {
            writes.remove(&key);
        }
        true
    }
}

/// A hash of what a reconcile reads from a Service (metadata a user may change, the spec, the
/// ingress), ignoring what it never reads (managedFields, kubectl's last applied copy).
fn own_state(service: &Service) -> u64 {
    use std::hash::{Hash, Hasher};
    let meta = &service.metadata;
    let mut annotations = meta.annotations.clone().unwrap_or_default();
    annotations.remove(crate::run::LAST_APPLIED);
    let state = serde_json::json!([
        meta.labels,
        annotations,
        meta.finalizers,
        meta.deletion_timestamp,
        service.spec,
        current_ingress(service),
    ]);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    state.to_string().hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ServiceStatus};
    use kube::api::ObjectMeta;

    use super::*;

    fn mk_service(finalizers: &[&str], ip: Option<&str>) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("shop".into()),
                finalizers: Some(finalizers.iter().map(|f| f.to_string()).collect()),
                resource_version: Some("7".into()),
                ..Default::default()
            },
            status: ip.map(|ip| ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(vec![LoadBalancerIngress {
                        ip: Some(ip.into()),
                        ..Default::default()
                    }]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_states_it_wrote_are_its_own_once_and_others_are_not() {
        let own = OwnWrites::default();
        let finalized = mk_service(&["portico.dev/load-balancer-cleanup"], None);
        let written = mk_service(&["portico.dev/load-balancer-cleanup"], Some("198.19.0.1"));
        own.expect(&finalized);
        own.expect(&written);
        assert!(own.is_own(&finalized));
        let mut edited = written.clone();
        edited.metadata.annotations = Some([("a".to_string(), "b".to_string())].into());
        assert!(!own.is_own(&edited), "a user's change is not ours");
        let mut other_version = written.clone();
        other_version.metadata.resource_version = Some("9".into());
        other_version.metadata.managed_fields = Some(vec![]);
        assert!(
            own.is_own(&other_version),
            "what a reconcile reads is what counts"
        );
        assert!(!own.is_own(&written), "seen once, then forgotten");
    }

    #[test]
    fn seeing_a_later_state_forgets_the_earlier_ones() {
        let own = OwnWrites::default();
        let finalized = mk_service(&["portico.dev/load-balancer-cleanup"], None);
        let written = mk_service(&["portico.dev/load-balancer-cleanup"], Some("198.19.0.1"));
        own.expect(&finalized);
        own.expect(&written);
        assert!(own.is_own(&written));
        assert!(!own.is_own(&finalized), "passed by");
    }
}
