//! Which nodes hold a ready endpoint of each Local Service on a VIP: one pass over the slices
//! per plan, then a lookup per (VIP, node), instead of a scan of every slice for every VIP and
//! every node.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::view::SliceView;

/// Nodes with a ready endpoint, by Service (namespace, name).
pub struct ReadyNodes<'a> {
    by_service: HashMap<(&'a str, &'a str), HashSet<&'a str>>,
}

impl<'a> ReadyNodes<'a> {
    /// Indexes the slices of `services` only (a nil `ready` counts as ready, as the
    /// EndpointSlice API says consumers must read it; the view has resolved it so).
    pub fn of(slices: &'a [Arc<SliceView>], services: &BTreeSet<(&str, &str)>) -> Self {
        let mut by_service: HashMap<(&'a str, &'a str), HashSet<&'a str>> = HashMap::new();
        if services.is_empty() {
            return ReadyNodes { by_service };
        }
        for slice in slices {
            let Some(service) = slice.service.as_deref() else {
                continue;
            };
            let key = (&*slice.namespace, service);
            if !services.contains(&key) {
                continue;
            }
            let nodes = by_service.entry(key).or_default();
            for endpoint in slice.endpoints.iter().filter(|e| e.ready) {
                if let Some(node) = endpoint.node.as_deref() {
                    nodes.insert(node);
                }
            }
        }
        ReadyNodes { by_service }
    }

    /// Whether `node` holds a ready endpoint of the Service.
    pub fn holds(&self, (namespace, name): (&str, &str), node: &str) -> bool {
        self.by_service
            .get(&(namespace, name))
            .is_some_and(|nodes| nodes.contains(node))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use serde_json::json;

    use super::*;

    fn slice(namespace: &str, service: &str, endpoints: serde_json::Value) -> Arc<SliceView> {
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": format!("{service}-x"), "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "endpoints": endpoints,
        }))
        .unwrap();
        Arc::new(SliceView::from(&slice))
    }

    #[test]
    fn only_ready_endpoints_of_the_asked_services_count() {
        let slices = vec![
            slice(
                "shop",
                "web",
                json!([{"addresses": ["10.244.1.5"], "nodeName": "node-a"},
                       {"addresses": ["10.244.2.5"], "nodeName": "node-b",
                        "conditions": {"ready": false}}]),
            ),
            slice(
                "shop",
                "db",
                json!([{"addresses": ["10.244.3.5"], "nodeName": "node-c"}]),
            ),
            slice(
                "other",
                "web",
                json!([{"addresses": ["10.244.4.5"], "nodeName": "node-d"}]),
            ),
        ];
        let asked = BTreeSet::from([("shop", "web")]);
        let ready = ReadyNodes::of(&slices, &asked);
        assert!(ready.holds(("shop", "web"), "node-a"), "ready unset counts");
        assert!(!ready.holds(("shop", "web"), "node-b"), "not ready");
        assert!(
            !ready.holds(("shop", "web"), "node-d"),
            "another namespace's Service"
        );
        assert!(
            !ready.holds(("shop", "db"), "node-c"),
            "not asked for, not indexed"
        );
    }
}
