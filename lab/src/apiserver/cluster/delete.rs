//! DELETE: preconditions, finalizers (the object stays, marked, until they are gone), and
//! what a removal undoes (allocations, a CRD's kinds, a namespace's contents).

use std::sync::Arc;

use serde_json::{Value, json};

use super::super::meta::now_rfc3339;
use super::super::resources::ResourceType;
use super::super::selector::Selectors;
use super::super::status::ApiError;
use super::super::store::key_of;
use super::deferred::{FOREGROUND_DELETION, mark_deleted};
use super::pipeline::finalizers;
use super::{Cluster, State, present};

/// The preconditions of a DELETE body.
#[derive(Default)]
pub struct DeleteOptions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
    /// `propagationPolicy: Foreground`: the object stays, held by the `foregroundDeletion`
    /// finalizer, until the garbage collector has deleted its dependents.
    pub foreground: bool,
}

impl DeleteOptions {
    pub fn from_body(body: &Value) -> Self {
        let pre = &body["preconditions"];
        DeleteOptions {
            uid: pre["uid"].as_str().map(String::from),
            resource_version: pre["resourceVersion"].as_str().map(String::from),
            dry_run: body["dryRun"]
                .as_array()
                .is_some_and(|d| d.iter().any(|v| v == "All")),
            foreground: body["propagationPolicy"] == "Foreground",
        }
    }
}

impl Cluster {
    /// Deletes at once, or, with finalizers, marks the object deleted and keeps it until they
    /// are gone. Returns the object while it stays, a success Status once it is gone.
    pub fn delete(
        &self,
        rt: &Arc<ResourceType>,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        self.write(options.dry_run, |state| {
            let gr = rt.storage_key();
            let old = state.store.get(&gr, namespace.unwrap_or_default(), name).ok_or_else(|| ApiError::not_found(rt, name))?;
            if let Some(uid) = &options.uid
                && old["metadata"]["uid"].as_str() != Some(uid)
            {
                let why = format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", old["metadata"]["uid"].as_str().unwrap_or_default());
                return Err(ApiError::precondition_failed(rt, name, &why));
            }
            if let Some(rv) = &options.resource_version
                && old["metadata"]["resourceVersion"].as_str() != Some(rv)
            {
                let why = format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    old["metadata"]["resourceVersion"].as_str().unwrap_or_default()
                );
                return Err(ApiError::precondition_failed(rt, name, &why));
            }
            if rt.is("", "namespaces") {
                return Ok(present(rt, &terminate_namespace(state, rt, &old)));
            }
            if options.foreground {
                return Ok(present(rt, &delete_in_foreground(state, rt, &old)));
            }
            if rt.is("apiextensions.k8s.io", "customresourcedefinitions") && finalizers(&old).is_empty() {
                return Ok(present(rt, &terminate_crd(state, rt, &old)));
            }
            if !finalizers(&old).is_empty() {
                if !old["metadata"]["deletionTimestamp"].is_null() {
                    return Ok(present(rt, &old));
                }
                let marked = state.store.put(&gr, mark_deleted(&old));
                return Ok(present(rt, &marked));
            }
            let gone = remove_locked(state, rt, &old);
            if returns_deleted_object(rt) {
                return Ok(present(rt, &gone));
            }
            Ok(success_status(rt, &gone))
        })
    }

    /// DELETE on a collection: each matching object as a single DELETE would.
    pub fn delete_collection(
        &self,
        rt: &Arc<ResourceType>,
        namespace: Option<&str>,
        selectors: &Selectors,
    ) -> Result<Value, ApiError> {
        let matching: Vec<Arc<Value>> = {
            let state = self.lock();
            state
                .store
                .list(&rt.storage_key(), namespace)
                .filter(|o| selectors.matches(o))
                .cloned()
                .collect()
        };
        // The answer lists the deleted objects themselves, whatever a single DELETE answers.
        let mut items = Vec::new();
        for object in matching {
            let (ns, name) = key_of(&object);
            let ns = Some(ns).filter(|n| !n.is_empty());
            match self.delete(rt, ns.as_deref(), &name, &DeleteOptions::default()) {
                Ok(answer) if answer["kind"] == "Status" => items.push(present(rt, &object)),
                Ok(answer) => items.push(answer),
                Err(_) => {}
            }
        }
        Ok(json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": {},
            "items": items,
        }))
    }
}

/// Kinds whose storage answers a completed DELETE with the object (`ReturnDeletedObject`, or
/// a REST of its own that does); the rest answer a success Status naming it.
fn returns_deleted_object(rt: &ResourceType) -> bool {
    matches!(
        (rt.group.as_str(), rt.plural.as_str()),
        ("", "pods" | "services" | "serviceaccounts")
            | ("apiextensions.k8s.io", "customresourcedefinitions")
    )
}

fn success_status(rt: &ResourceType, gone: &Value) -> Value {
    let mut details = json!({"name": gone["metadata"]["name"], "kind": rt.plural, "uid": gone["metadata"]["uid"]});
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// Removes an object and undoes what it held: allocations, a CRD's kinds and objects, the
/// last object of a Terminating namespace (and so the namespace).
pub(super) fn remove_locked(state: &mut State, rt: &ResourceType, object: &Value) -> Arc<Value> {
    let (namespace, name) = key_of(object);
    let gone = state
        .store
        .remove(&rt.storage_key(), &namespace, &name)
        .unwrap_or_else(|| Arc::new(object.clone()));
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "services") => state.services.release(object),
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            let group = object["spec"]["group"].as_str().unwrap_or_default();
            let plural = object["spec"]["names"]["plural"]
                .as_str()
                .unwrap_or_default();
            let served = state
                .registry
                .all()
                .iter()
                .find(|t| t.is(group, plural) && t.printer_columns.is_some())
                .cloned();
            state.registry.set_custom(group, plural, Vec::new());
            if let Some(served) = served {
                let keys: Vec<_> = state
                    .store
                    .list(&served.storage_key(), None)
                    .map(|o| key_of(o))
                    .collect();
                for (ns, name) in keys {
                    state.store.remove(&served.storage_key(), &ns, &name);
                }
            }
        }
        _ => {}
    }
    if rt.namespaced {
        finish_namespace_if_empty(state, &namespace);
    }
    if rt.printer_columns.is_some() {
        finish_crd_if_empty(state, &rt.group, &rt.plural);
    }
    gone
}

/// A CRD deletion as the apiextensions finalizer carries it out: the CRD turns Terminating, its
/// objects are deleted (those with finalizers stay, marked, until released), and the CRD and
/// its kind go once none is left.
fn terminate_crd(state: &mut State, rt: &ResourceType, crd: &Arc<Value>) -> Arc<Value> {
    let group = crd["spec"]["group"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let plural = crd["spec"]["names"]["plural"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = crd["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let marked = if crd["metadata"]["deletionTimestamp"].is_null() {
        let mut marked = mark_deleted(crd);
        if let Some(conditions) = marked["status"]["conditions"].as_array_mut() {
            conditions.push(json!({
                "type": "Terminating", "status": "True", "lastTransitionTime": now_rfc3339(),
                "reason": "InstanceDeletionInProgress", "message": "CustomResource deletion is in progress",
            }));
        }
        state.store.put(&rt.storage_key(), marked)
    } else {
        crd.clone()
    };
    let served = state
        .registry
        .all()
        .iter()
        .find(|t| t.is(&group, &plural) && t.printer_columns.is_some())
        .cloned();
    if let Some(served) = served {
        let objects: Vec<Arc<Value>> = state
            .store
            .list(&served.storage_key(), None)
            .cloned()
            .collect();
        for object in objects {
            if finalizers(&object).is_empty() {
                remove_locked(state, &served, &object);
            } else if object["metadata"]["deletionTimestamp"].is_null() {
                state
                    .store
                    .put(&served.storage_key(), mark_deleted(&object));
            }
        }
    }
    finish_crd_if_empty(state, &group, &plural);
    state
        .store
        .get(&rt.storage_key(), "", &name)
        .unwrap_or(marked)
}

/// Removes a Terminating CRD (and stops serving its kind) once it has no objects left.
fn finish_crd_if_empty(state: &mut State, group: &str, plural: &str) {
    let Some(crds) = state
        .registry
        .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    else {
        return;
    };
    let Some(crd) = state
        .store
        .get(&crds.storage_key(), "", &format!("{plural}.{group}"))
    else {
        return;
    };
    if crd["metadata"]["deletionTimestamp"].is_null() {
        return;
    }
    let served = state
        .registry
        .all()
        .iter()
        .find(|t| t.is(group, plural) && t.printer_columns.is_some())
        .cloned();
    if served.is_none_or(|t| state.store.list(&t.storage_key(), None).next().is_none()) {
        remove_locked(state, &crds, &crd);
    }
}

/// Whether a custom kind's CRD is being deleted (creating its objects is then refused).
pub(super) fn crd_terminating(state: &State, rt: &ResourceType) -> bool {
    state
        .registry
        .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .and_then(|crds| {
            state.store.get(
                &crds.storage_key(),
                "",
                &format!("{}.{}", rt.plural, rt.group),
            )
        })
        .is_some_and(|crd| !crd["metadata"]["deletionTimestamp"].is_null())
}

/// A namespace deletion: the namespace turns Terminating at once (creating in it is then
/// forbidden), and the namespace controller (`deferred`) deletes its contents and then it.
fn terminate_namespace(state: &mut State, rt: &ResourceType, namespace: &Arc<Value>) -> Arc<Value> {
    if !namespace["metadata"]["deletionTimestamp"].is_null() {
        return namespace.clone();
    }
    let mut marked = mark_deleted(namespace);
    marked["status"]["phase"] = json!("Terminating");
    let name = key_of(namespace).1;
    state.pending.namespace(&name);
    state.store.put(&rt.storage_key(), marked)
}

/// A foreground deletion: the object is marked and held by the `foregroundDeletion` finalizer
/// until the garbage collector (`deferred`) has deleted its dependents.
fn delete_in_foreground(
    state: &mut State,
    rt: &Arc<ResourceType>,
    object: &Arc<Value>,
) -> Arc<Value> {
    if !object["metadata"]["deletionTimestamp"].is_null() {
        return object.clone();
    }
    let mut marked = mark_deleted(object);
    let mut held = finalizers(object);
    held.push(json!(FOREGROUND_DELETION));
    marked["metadata"]["finalizers"] = json!(held);
    let (namespace, name) = key_of(object);
    state.pending.foreground(rt, &namespace, &name);
    state.store.put(&rt.storage_key(), marked)
}

/// Removes a Terminating namespace once nothing is left in it.
pub(super) fn finish_namespace_if_empty(state: &mut State, namespace: &str) {
    let Some(namespaces) = state.registry.find("", "v1", "namespaces") else {
        return;
    };
    let Some(ns) = state.store.get(&namespaces.storage_key(), "", namespace) else {
        return;
    };
    if ns["metadata"]["deletionTimestamp"].is_null() {
        return;
    }
    let empty = state
        .registry
        .all()
        .iter()
        .filter(|t| t.namespaced)
        .all(|t| {
            state
                .store
                .list(&t.storage_key(), Some(namespace))
                .next()
                .is_none()
        });
    if empty {
        state.store.remove(&namespaces.storage_key(), "", namespace);
    }
}
