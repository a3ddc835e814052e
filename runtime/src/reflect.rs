//! A reflector (a cache of one kind kept by a watch) that wakes a `Notify` on every change:
//! how both binaries learn that something they depend on moved, without a Controller per kind.

use std::sync::Arc;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::Notify;

/// Starts the watch in the background and returns its store; `changed` (if any) is notified on
/// every event. Watch errors are logged and retried with backoff, never fatal.
pub fn reflect<K>(api: Api<K>, config: watcher::Config, changed: Option<Arc<Notify>>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, config)
        .default_backoff()
        .reflect(writer)
        .touched_objects();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(_) => {
                    if let Some(changed) = &changed {
                        changed.notify_one();
                    }
                }
                Err(e) => tracing::warn!(error = %e, "watch error"),
            }
        }
    });
    store
}

/// A stream that yields once per wake-up of `notify` (bursts coalesce into one item).
pub fn notifications(notify: Arc<Notify>) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(notify, |notify| async move {
        notify.notified().await;
        Some(((), notify))
    })
}
