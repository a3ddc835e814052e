//! The cluster's state behind one lock: the kinds served, the objects, and the Service
//! allocator. Verbs take and release the lock once each, so every request is atomic, like a
//! single etcd transaction. Writes live in `cluster/write.rs`.

use std::sync::{Arc, Mutex, MutexGuard};

use ipnet::Ipv4Net;
use serde_json::{Value, json};

use super::resources::{Registry, ResourceType};
use super::selector::Selectors;
use super::services::ServiceAllocator;
use super::status::ApiError;
use super::store::Store;

mod decode;
mod deferred;
mod delete;
mod pipeline;
mod write;

pub use decode::FieldValidation;
pub use deferred::{DEFERRED_DELETION_TICK, PendingDeletions};
pub use delete::DeleteOptions;
pub use write::{ObjectRef, WriteContext};

pub struct State {
    pub registry: Registry,
    pub store: Store,
    pub services: ServiceAllocator,
    /// Deletions that the cluster's controllers finish after the request returned.
    pub pending: PendingDeletions,
}

pub struct Cluster {
    state: Mutex<State>,
}

/// The namespaces a fresh cluster has.
const INITIAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// A `limit`/`continue` request.
#[derive(Default)]
pub struct Page {
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    /// The resourceVersion the list must be at least as new as (or, with `exact`, at).
    pub resource_version: Option<u64>,
    pub exact: bool,
}

/// Hex keeps the continue token opaque and URL-safe without another dependency.
fn encode_token(rv: u64, namespace: &str, name: &str) -> String {
    format!("{rv}/{namespace}/{name}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_token(token: &str) -> Option<(u64, String, String)> {
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let mut parts = text.splitn(3, '/');
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.to_string(),
        parts.next()?.to_string(),
    ))
}

/// Sets `apiVersion` and `kind` for the version the client asked through (one stored object
/// serves every version of a custom resource, as with the `None` conversion strategy).
pub fn present(rt: &ResourceType, object: &Value) -> Value {
    let mut object = super::conversion::from_storage(rt, object);
    object["apiVersion"] = json!(rt.api_version());
    object["kind"] = json!(rt.kind);
    object
}

impl Cluster {
    pub fn new(
        service_cidr: Ipv4Net,
        node_ports: std::ops::RangeInclusive<u16>,
        history: usize,
    ) -> Self {
        let state = State {
            registry: Registry::default(),
            store: Store::new(history),
            services: ServiceAllocator::new(service_cidr, node_ports),
            pending: PendingDeletions::default(),
        };
        let cluster = Cluster {
            state: Mutex::new(state),
        };
        cluster.bootstrap();
        cluster
    }

    /// What every cluster has before anyone writes: its namespaces and the `kubernetes` Service
    /// on the first address of the service CIDR.
    fn bootstrap(&self) {
        let ctx = WriteContext::system();
        let namespaces = self.resource("", "v1", "namespaces").expect("built in");
        for ns in INITIAL_NAMESPACES {
            let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            self.create(&namespaces, None, object, &ctx)
                .expect("fresh store takes the initial namespaces");
        }
        let services = self.resource("", "v1", "services").expect("built in");
        let first_ip = {
            let state = self.lock();
            let cidr = state.services.cidr();
            std::net::Ipv4Addr::from(u32::from(cidr.network()) + 1).to_string()
        };
        let kubernetes = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": first_ip, "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
        });
        self.create(&services, Some("default"), kubernetes, &ctx)
            .expect("fresh store takes the kubernetes Service");
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs a write on the state, or, for a dry run (`dryRun=All`), on a copy that is then
    /// dropped: every check and default runs, nothing is stored, allocated or announced.
    pub fn write<R>(
        &self,
        dry_run: bool,
        write: impl FnOnce(&mut State) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let mut state = self.lock();
        if dry_run {
            let mut scratch = State {
                registry: state.registry.clone(),
                store: state.store.scratch(),
                services: state.services.clone(),
                pending: PendingDeletions::default(),
            };
            write(&mut scratch)
        } else {
            write(&mut state)
        }
    }

    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.lock().registry.find(group, version, plural)
    }

    pub fn get(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let state = self.lock();
        let object = state
            .store
            .get(&rt.storage_key(), namespace.unwrap_or_default(), name)
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        Ok(present(rt, &object))
    }

    /// A `...List` of the matching objects at the current resourceVersion.
    pub fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        selectors: &Selectors,
        page: &Page,
    ) -> Result<Value, ApiError> {
        let state = self.lock();
        let current = state.store.resource_version();
        if let Some(rv) = page.resource_version.filter(|rv| *rv > current) {
            return Err(super::options::too_large(rv, current));
        }
        let (list_rv, after) = match page.continue_token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => {
                let (rv, ns, name) = decode_token(token)
                    .ok_or_else(|| ApiError::bad_request("continue key is not valid"))?;
                (rv, Some((ns, name)))
            }
            None => (current, None),
        };
        let objects: Vec<Arc<Value>> = match page.resource_version.filter(|_| page.exact) {
            Some(rv) => state
                .store
                .list_at(&rt.storage_key(), rv)
                .map_err(|_| {
                    ApiError::gone(format!(
                        "The resourceVersion for the provided list is too old. (resourceVersion {rv})"
                    ))
                })?
                .into_iter()
                .filter(|((ns, _), _)| namespace.is_none_or(|want| ns == want))
                .map(|(_, object)| object)
                .collect(),
            None => state
                .store
                .list(&rt.storage_key(), namespace)
                .cloned()
                .collect(),
        };
        let list_rv = match page.resource_version.filter(|_| page.exact) {
            Some(rv) => rv,
            None => list_rv,
        };
        let custom = rt.printer_columns.is_some();
        let mut items = Vec::new();
        let mut next = None;
        let mut remaining = 0usize;
        for object in &objects {
            let key = super::store::key_of(object);
            if after.as_ref().is_some_and(|after| key <= *after) || !selectors.matches(object) {
                continue;
            }
            if page
                .limit
                .is_some_and(|limit| limit > 0 && items.len() == limit)
            {
                if next.is_none() {
                    let last: &Value = items.last().expect("limit > 0");
                    let (ns, name) = super::store::key_of(last);
                    next = Some(encode_token(list_rv, &ns, &name));
                }
                remaining += 1;
                continue;
            }
            // Built-in lists carry their items without TypeMeta, custom ones with it.
            let item = if custom {
                present(rt, object)
            } else {
                let mut item = super::conversion::from_storage(rt, object);
                if let Some(map) = item.as_object_mut() {
                    map.remove("apiVersion");
                    map.remove("kind");
                }
                item
            };
            items.push(item);
        }
        let mut metadata = json!({"resourceVersion": list_rv.to_string()});
        if let Some(next) = next {
            metadata["continue"] = json!(next);
            metadata["remainingItemCount"] = json!(remaining);
        }
        Ok(json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let token = encode_token(42, "default", "web");
        assert_eq!(
            decode_token(&token),
            Some((42, "default".into(), "web".into()))
        );
    }

    #[test]
    fn a_fresh_cluster_has_its_namespaces_and_the_kubernetes_service() {
        let cluster = Cluster::new("10.96.0.0/16".parse().unwrap(), 30000..=32767, 100);
        let services = cluster.resource("", "v1", "services").unwrap();
        let kubernetes = cluster
            .get(&services, Some("default"), "kubernetes")
            .unwrap();
        assert_eq!(kubernetes["spec"]["clusterIP"], "10.96.0.1");
        let namespaces = cluster.resource("", "v1", "namespaces").unwrap();
        assert!(cluster.get(&namespaces, None, "kube-system").is_ok());
    }
}
