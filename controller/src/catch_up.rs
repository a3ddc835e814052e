//! When the controller has caught up, so `/readyz` may answer 200: the addresses Services
//! already had are restored (before the Controller starts) and every Service of the initial list
//! has been reconciled once. A rollout relies on it: a new replica is ready once it has looked
//! at everything that existed when it started, not when it merely reached the API server.
//!
//! ```text
//!   reconcile ──reconciled(key)──▶ CatchUp ◀──listed(keys)── Service store ready
//!                                     │  ◀──forget(gone)──── Services deleted meanwhile
//!                                     └─▶ is_caught_up() ─▶ Readiness
//! ```
//! Pure bookkeeping; `wait` polls it against the store.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::runtime::reflector::Store;
use portico_runtime::Readiness;
use tokio::sync::watch;

use crate::ipam::ServiceKey;
use crate::reconcile::{lock, service_key};

/// How often the waiter looks again while catching up.
const POLL: Duration = Duration::from_millis(100);

/// What is left to reconcile of the initial list.
#[derive(Debug, Default)]
pub struct CatchUp {
    /// The initial list's keys not reconciled yet; `None` until the list is known.
    expected: Option<HashSet<ServiceKey>>,
    /// Reconciled before the list was known (the Controller starts on the first objects listed).
    early: HashSet<ServiceKey>,
    caught_up: bool,
}

impl CatchUp {
    /// A reconcile of `key` finished (with any result: the Service has been looked at).
    pub fn reconciled(&mut self, key: &ServiceKey) {
        if self.caught_up {
            return;
        }
        match &mut self.expected {
            Some(expected) => {
                expected.remove(key);
            }
            None => {
                self.early.insert(key.clone());
            }
        }
        self.check();
    }

    /// The initial list is complete: these Services must each be reconciled once.
    pub fn listed(&mut self, keys: impl IntoIterator<Item = ServiceKey>) {
        let early = std::mem::take(&mut self.early);
        self.expected = Some(keys.into_iter().filter(|k| !early.contains(k)).collect());
        self.check();
    }

    /// Services deleted before their first reconcile are never reconciled; stop waiting for them.
    pub fn forget_gone(&mut self, exists: impl Fn(&ServiceKey) -> bool) {
        if let Some(expected) = &mut self.expected {
            expected.retain(|key| exists(key));
        }
        self.check();
    }

    pub fn is_caught_up(&self) -> bool {
        self.caught_up
    }

    /// How many of the initial list are still to be reconciled (for the log).
    pub fn remaining(&self) -> Option<usize> {
        self.expected.as_ref().map(HashSet::len)
    }

    fn check(&mut self) {
        if self.expected.as_ref().is_some_and(HashSet::is_empty) {
            self.caught_up = true;
            self.expected = None;
        }
    }
}

/// Marks the replica ready once the Service store holds the initial list (`listed` turns true)
/// and every Service in it has been reconciled.
///
/// `listed` comes from the watch stream itself: `Store::wait_until_ready` wakes only the last of
/// several waiters, and the Controller already waits on it.
pub async fn wait(
    catch_up: &Mutex<CatchUp>,
    services: Store<Service>,
    mut listed: watch::Receiver<bool>,
    readiness: Readiness,
) {
    if listed.wait_for(|listed| *listed).await.is_err() {
        return;
    }
    lock(catch_up).listed(services.state().iter().map(|s| service_key(s)));
    tracing::debug!(remaining = ?lock(catch_up).remaining(), "the initial list of Services is known");
    loop {
        {
            let mut catch_up = lock(catch_up);
            catch_up.forget_gone(|key| {
                services
                    .get(
                        &kube::runtime::reflector::ObjectRef::new(&key.name).within(&key.namespace),
                    )
                    .is_some()
            });
            if catch_up.is_caught_up() {
                break;
            }
        }
        tokio::time::sleep(POLL).await;
    }
    tracing::info!("caught up: restored and reconciled every Service of the initial list; ready");
    readiness.set(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ServiceKey {
        ServiceKey::new("default", name)
    }

    #[test]
    fn caught_up_once_every_listed_service_was_reconciled() {
        let mut catch_up = CatchUp::default();
        assert!(!catch_up.is_caught_up(), "the list is not known yet");
        catch_up.reconciled(&key("a"));
        assert!(!catch_up.is_caught_up());
        catch_up.listed([key("a"), key("b"), key("c")]);
        assert_eq!(catch_up.remaining(), Some(2), "a was reconciled early");
        catch_up.reconciled(&key("b"));
        catch_up.reconciled(&key("new"));
        assert!(!catch_up.is_caught_up(), "c is still to be looked at");
        catch_up.reconciled(&key("c"));
        assert!(catch_up.is_caught_up());
    }

    #[test]
    fn an_empty_cluster_is_caught_up_at_once_and_deleted_services_are_not_waited_for() {
        let mut empty = CatchUp::default();
        empty.listed([]);
        assert!(empty.is_caught_up());

        let mut catch_up = CatchUp::default();
        catch_up.listed([key("a"), key("deleted")]);
        catch_up.reconciled(&key("a"));
        assert!(!catch_up.is_caught_up());
        catch_up.forget_gone(|k| k.name != "deleted");
        assert!(catch_up.is_caught_up());
    }
}
