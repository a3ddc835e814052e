//! A reflector (a cache of one kind kept by a watch) that wakes a `Notify` on every change:
//! how both binaries learn that something they depend on moved, without a Controller per kind.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::Notify;

use crate::watch_health::{WatchHealth, WatchReporter};

/// While a watch fails, how often to ask the API server whether it answers again: a resumed
/// watch yields no event until something changes, so success is not seen in the stream alone.
const RECOVERY_PROBE_EVERY: Duration = Duration::from_secs(5);

/// How a watch is named in logs and `/readyz`: its kind, and its selectors if any.
pub fn watch_name<K: kube::Resource<DynamicType = ()>>(config: &watcher::Config) -> String {
    let selectors: Vec<&str> = [&config.field_selector, &config.label_selector]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let kind = K::kind(&());
    if selectors.is_empty() {
        kind.into_owned()
    } else {
        format!("{kind} ({})", selectors.join(", "))
    }
}

/// Starts the watch in the background and returns its store; each of `changed` (none, one, or
/// one per consumer, as an `Option` or a `Vec`) is notified on every event. Watch errors are retried with backoff, never fatal, and reported to `watches`:
/// logged (rate-limited), and `/readyz` answers 503 naming the watch until it works again.
pub fn reflect_reported<K>(
    api: Api<K>,
    config: watcher::Config,
    changed: impl IntoIterator<Item = Arc<Notify>>,
    watches: &WatchHealth,
) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    reflect_reported_trimmed(api, config, changed, watches, |_| {})
}

/// As `reflect_reported`, with every object passed through `trim` before the store keeps it:
/// a store of only the fields its readers need (managedFields and annotations are often most of
/// an object's size).
pub fn reflect_reported_trimmed<K>(
    api: Api<K>,
    config: watcher::Config,
    changed: impl IntoIterator<Item = Arc<Notify>>,
    watches: &WatchHealth,
    trim: fn(&mut K),
) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let changed: Vec<Arc<Notify>> = changed.into_iter().collect();
    let (store, writer) = reflector::store();
    let reporter = watches.reporter(watch_name::<K>(&config));
    let stream = watcher(api.clone(), config)
        .default_backoff()
        .modify(trim)
        .reflect(writer)
        .touched_objects();
    let stream = reported(stream, api, reporter);
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            if item.is_ok() {
                for consumer in &changed {
                    consumer.notify_one();
                }
            }
        }
    });
    store
}

/// Passes a watch stream through, reporting its errors and its recovery to `reporter`. While
/// the watch fails, a one-item list of the same resource every few seconds tells when the API
/// server answers again (for any watch stream: plain, trimmed, or guarded).
pub fn reported<K, S, T, E>(
    stream: S,
    api: Api<K>,
    reporter: WatchReporter,
) -> impl futures::Stream<Item = Result<T, E>> + Send + 'static
where
    K: Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    S: futures::Stream<Item = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    futures::stream::unfold(
        (Box::pin(stream), api, reporter),
        |(mut stream, api, mut reporter)| async move {
            loop {
                let item = tokio::select! {
                    item = stream.next() => item,
                    answered = recovery_probe(&api, reporter.is_failing()) => {
                        if answered {
                            reporter.succeeded();
                        }
                        continue;
                    }
                };
                let item = item?;
                reporter.observe(&item);
                return Some((item, (stream, api, reporter)));
            }
        },
    )
}

/// Never resolves unless `failing`; then, after a pause, whether the API server lists the
/// resource again.
async fn recovery_probe<K>(api: &Api<K>, failing: bool) -> bool
where
    K: Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    if !failing {
        return std::future::pending().await;
    }
    tokio::time::sleep(RECOVERY_PROBE_EVERY).await;
    let one = ListParams::default().limit(1);
    let list = api.list_metadata(&one);
    matches!(
        tokio::time::timeout(RECOVERY_PROBE_EVERY, list).await,
        Ok(Ok(_))
    )
}
