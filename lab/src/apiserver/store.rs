//! The object store: every object as JSON, one cluster-wide resourceVersion counter (etcd's
//! revision), a bounded history of changes for watches that resume, and a broadcast channel
//! that fans each change out to the open watches.
//!
//! ```text
//!   write ──▶ rv += 1 ──▶ objects[gr][(ns, name)]
//!                    └──▶ history (last N events) ──▶ watch resume / 410 Gone
//!                    └──▶ broadcast ──▶ every open watch filters for itself
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use tokio::sync::broadcast;

use super::resources::GroupResource;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, shared by every watch that sees it.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub resource: GroupResource,
    pub namespace: String,
    pub event: EventType,
    pub object: Arc<Value>,
    /// The object before the change, so a watch with a selector can turn "stopped matching"
    /// into DELETED and "started matching" into ADDED, as the watch cache does.
    pub previous: Option<Arc<Value>>,
    /// The encoded watch event line, computed once for all watches of the stored version.
    pub encoded: OnceLock<axum::body::Bytes>,
}

pub type Key = (String, String);

/// The changes to replay on resume, and the live stream after them.
pub type Resume = (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>);

/// The resourceVersion asked for is older than the retained history.
#[derive(Debug)]
pub struct TooOld {
    pub oldest: u64,
}

pub struct Store {
    rv: u64,
    objects: HashMap<GroupResource, BTreeMap<Key, Arc<Value>>>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// The newest revision no longer in `history`: a resume from below it cannot be served.
    compacted: u64,
    tx: broadcast::Sender<Arc<Change>>,
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Store {
            rv: 1,
            objects: HashMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 1,
            tx,
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, gr: &GroupResource, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.objects
            .get(gr)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Objects of a resource in key order, in one namespace or all.
    pub fn list<'a>(
        &'a self,
        gr: &GroupResource,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Arc<Value>> + 'a {
        self.objects
            .get(gr)
            .into_iter()
            .flat_map(move |objects| objects.iter())
            .filter(move |((ns, _), _)| namespace.is_none_or(|want| ns == want))
            .map(|(_, object)| object)
    }

    /// Stores an object (created or updated), stamping the next resourceVersion on it.
    pub fn put(&mut self, gr: &GroupResource, mut object: Value) -> Arc<Value> {
        self.rv += 1;
        object["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
        let key = key_of(&object);
        let namespace = key.0.clone();
        let object = Arc::new(object);
        let previous = self
            .objects
            .entry(gr.clone())
            .or_default()
            .insert(key, object.clone());
        let event = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(gr, namespace, event, object.clone(), previous);
        object
    }

    /// Removes an object for good; the DELETED event carries the deletion's resourceVersion.
    pub fn remove(
        &mut self,
        gr: &GroupResource,
        namespace: &str,
        name: &str,
    ) -> Option<Arc<Value>> {
        let key = (namespace.to_string(), name.to_string());
        let previous = self.objects.get_mut(gr)?.remove(&key)?;
        self.rv += 1;
        let mut last = (*previous).clone();
        last["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
        let last = Arc::new(last);
        self.record(
            gr,
            namespace.to_string(),
            EventType::Deleted,
            last.clone(),
            Some(previous),
        );
        Some(last)
    }

    fn record(
        &mut self,
        gr: &GroupResource,
        namespace: String,
        event: EventType,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) {
        let change = Arc::new(Change {
            rv: self.rv,
            resource: gr.clone(),
            namespace,
            event,
            object,
            previous,
            encoded: OnceLock::new(),
        });
        if self.history.len() == self.history_limit
            && let Some(dropped) = self.history.pop_front()
        {
            self.compacted = dropped.rv;
        }
        self.history.push_back(change.clone());
        // No receiver is fine: nobody is watching.
        let _ = self.tx.send(change);
    }

    /// The retained changes after `rv`, and a receiver for everything after them. Taken under
    /// the store's lock, so no change falls between the replay and the live stream.
    pub fn watch_from(&self, rv: u64) -> Result<Resume, TooOld> {
        if rv < self.compacted {
            return Err(TooOld {
                oldest: self.compacted,
            });
        }
        let replay = self.history.iter().filter(|c| c.rv > rv).cloned().collect();
        Ok((replay, self.tx.subscribe()))
    }

    /// The objects of a resource as they were at `rv` (a list with `resourceVersionMatch=Exact`):
    /// today's objects with the retained changes after `rv` undone, newest first.
    pub fn list_at(
        &self,
        gr: &GroupResource,
        rv: u64,
    ) -> Result<BTreeMap<Key, Arc<Value>>, TooOld> {
        if rv < self.compacted {
            return Err(TooOld {
                oldest: self.compacted,
            });
        }
        let mut objects = self.objects.get(gr).cloned().unwrap_or_default();
        for change in self.history.iter().rev().take_while(|c| c.rv > rv) {
            if change.resource != *gr {
                continue;
            }
            let key = key_of(&change.object);
            match (change.event, &change.previous) {
                (EventType::Added, _) => {
                    objects.remove(&key);
                }
                (_, Some(previous)) => {
                    objects.insert(key, previous.clone());
                }
                (_, None) => {}
            }
        }
        Ok(objects)
    }

    /// A copy for a dry run: the same objects and counter, no history, nobody listening.
    pub fn scratch(&self) -> Store {
        let (tx, _) = broadcast::channel(1);
        Store {
            rv: self.rv,
            objects: self.objects.clone(),
            history: VecDeque::new(),
            history_limit: 1,
            compacted: self.rv,
            tx,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }
}

pub fn key_of(object: &Value) -> Key {
    let meta = &object["metadata"];
    (
        meta["namespace"].as_str().unwrap_or_default().to_string(),
        meta["name"].as_str().unwrap_or_default().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gr() -> GroupResource {
        GroupResource(Arc::from("services"))
    }

    #[test]
    fn every_write_takes_the_next_cluster_wide_resource_version() {
        let mut store = Store::new(10);
        let a = store.put(
            &gr(),
            json!({"metadata": {"name": "a", "namespace": "default"}}),
        );
        let b = store.put(
            &GroupResource(Arc::from("pods")),
            json!({"metadata": {"name": "b", "namespace": "default"}}),
        );
        assert_eq!(a["metadata"]["resourceVersion"], "2");
        assert_eq!(b["metadata"]["resourceVersion"], "3");
    }

    #[test]
    fn resuming_below_the_retained_history_is_too_old() {
        let mut store = Store::new(2);
        for name in ["a", "b", "c", "d"] {
            store.put(
                &gr(),
                json!({"metadata": {"name": name, "namespace": "default"}}),
            );
        }
        assert!(store.watch_from(2).is_err());
        let (replay, _) = store.watch_from(3).expect("rv 3 is still resumable");
        assert_eq!(replay.len(), 2);
    }

    #[test]
    fn a_list_at_an_older_revision_undoes_the_later_changes() {
        let mut store = Store::new(10);
        let ns = |name: &str, v: u64| json!({"metadata": {"name": name, "namespace": "default"}, "v": v});
        store.put(&gr(), ns("a", 1));
        store.put(&gr(), ns("b", 1));
        let rv = store.resource_version();
        store.put(&gr(), ns("a", 2));
        store.remove(&gr(), "default", "b");
        store.put(&gr(), ns("c", 1));
        let then = store.list_at(&gr(), rv).unwrap();
        let names: Vec<(&str, u64)> = then
            .values()
            .map(|o| {
                (
                    o["metadata"]["name"].as_str().unwrap(),
                    o["v"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(names, [("a", 1), ("b", 1)]);
        assert!(Store::new(1).list_at(&gr(), 0).is_err());
    }
}
