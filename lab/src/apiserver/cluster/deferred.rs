//! What kube-controller-manager finishes after a DELETE has been answered, so clients see the
//! states in between as they do on a real cluster:
//!
//! ```text
//!   DELETE namespace ──▶ Terminating (answered) ──tick──▶ contents deleted ──▶ namespace gone
//!   DELETE ?propagationPolicy=Foreground ──▶ finalizer foregroundDeletion (answered)
//!                          ──tick──▶ dependents (ownerReferences.uid) deleted ──▶ owner gone
//! ```
//! The namespace controller and the garbage collector run on their own there; here one task
//! calls `Cluster::finish_deletions` every `DEFERRED_DELETION_TICK`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::super::meta::now_rfc3339;
use super::super::resources::ResourceType;
use super::super::store::key_of;
use super::delete::remove_locked;
use super::pipeline::finalizers;
use super::{Cluster, State};

/// How long after its DELETE a deletion is carried out (the real controllers take about as
/// long: a watch sees the Terminating state before the object goes).
pub const DEFERRED_DELETION_TICK: Duration = Duration::from_millis(250);

/// The finalizer a foreground deletion holds the owner with until its dependents are gone.
pub const FOREGROUND_DELETION: &str = "foregroundDeletion";

/// Deletions waiting for the next tick.
#[derive(Default)]
pub struct PendingDeletions {
    namespaces: Vec<String>,
    foreground: Vec<(Arc<ResourceType>, String, String)>,
}

impl PendingDeletions {
    pub fn namespace(&mut self, name: &str) {
        if !self.namespaces.iter().any(|n| n == name) {
            self.namespaces.push(name.to_owned());
        }
    }

    pub fn foreground(&mut self, rt: &Arc<ResourceType>, namespace: &str, name: &str) {
        self.foreground
            .push((rt.clone(), namespace.to_owned(), name.to_owned()));
    }

    fn is_empty(&self) -> bool {
        self.namespaces.is_empty() && self.foreground.is_empty()
    }
}

/// `object` marked as being deleted, as a DELETE on an object with finalizers leaves it.
pub(super) fn mark_deleted(object: &Value) -> Value {
    let mut marked = object.clone();
    marked["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
    marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    marked
}

/// Deletes `object` as a background DELETE would: at once, or marked while finalizers hold it.
fn delete_or_mark(state: &mut State, rt: &ResourceType, object: &Arc<Value>) {
    if finalizers(object).is_empty() {
        remove_locked(state, rt, object);
    } else if object["metadata"]["deletionTimestamp"].is_null() {
        state.store.put(&rt.storage_key(), mark_deleted(object));
    }
}

/// The kinds objects can live in, each storage once (events.k8s.io and core Events share one).
fn kinds(state: &State, namespaced: bool) -> Vec<Arc<ResourceType>> {
    let mut seen = std::collections::BTreeSet::new();
    state
        .registry
        .all()
        .iter()
        .filter(|t| !namespaced || t.namespaced)
        .filter(|t| seen.insert(t.storage_key()))
        .cloned()
        .collect()
}

impl Cluster {
    /// Carries out the deletions waiting since the last tick; those still held by finalizers
    /// finish when the finalizers go (namespaces) or at a later tick (foreground owners).
    pub fn finish_deletions(&self) {
        let mut state = self.lock();
        if state.pending.is_empty() {
            return;
        }
        for namespace in std::mem::take(&mut state.pending.namespaces) {
            delete_namespace_contents(&mut state, &namespace);
        }
        for (rt, namespace, name) in std::mem::take(&mut state.pending.foreground) {
            if !finish_foreground(&mut state, &rt, &namespace, &name) {
                state.pending.foreground(&rt, &namespace, &name);
            }
        }
    }
}

/// The namespace controller: everything in the namespace is deleted (objects with finalizers
/// stay, marked, until their controllers let go), and the namespace goes once it is empty.
fn delete_namespace_contents(state: &mut State, namespace: &str) {
    for kind in kinds(state, true) {
        let objects: Vec<Arc<Value>> = state
            .store
            .list(&kind.storage_key(), Some(namespace))
            .cloned()
            .collect();
        for object in objects {
            delete_or_mark(state, &kind, &object);
        }
    }
    super::delete::finish_namespace_if_empty(state, namespace);
}

/// The garbage collector's foreground deletion: the owner's dependents are deleted, and once
/// none is left the owner loses its `foregroundDeletion` finalizer (and goes, if that was the
/// last). Returns false while dependents held by finalizers remain.
fn finish_foreground(state: &mut State, rt: &ResourceType, namespace: &str, name: &str) -> bool {
    let Some(owner) = state.store.get(&rt.storage_key(), namespace, name) else {
        return true;
    };
    let uid = owner["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut waiting = false;
    for kind in kinds(state, rt.namespaced) {
        let scope = rt.namespaced.then_some(namespace);
        let dependents: Vec<Arc<Value>> = state
            .store
            .list(&kind.storage_key(), scope)
            .filter(|o| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid.as_str()))
            })
            .cloned()
            .collect();
        for dependent in dependents {
            delete_or_mark(state, &kind, &dependent);
            let (ns, dependent_name) = key_of(&dependent);
            waiting |= state
                .store
                .get(&kind.storage_key(), &ns, &dependent_name)
                .is_some();
        }
    }
    if waiting {
        return false;
    }
    let mut released = (*owner).clone();
    let remaining: Vec<Value> = finalizers(&owner)
        .into_iter()
        .filter(|f| f != FOREGROUND_DELETION)
        .collect();
    if remaining.is_empty() {
        remove_locked(state, rt, &owner);
    } else {
        released["metadata"]["finalizers"] = json!(remaining);
        state.store.put(&rt.storage_key(), released);
    }
    true
}
