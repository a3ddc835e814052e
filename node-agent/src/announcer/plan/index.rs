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
