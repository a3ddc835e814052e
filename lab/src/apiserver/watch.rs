//! Watch streams: newline-delimited JSON events over a chunked response.
//!
//! ```text
//!   resourceVersion unset or "0"  ─▶ synthetic ADDED for the current state, then live
//!   sendInitialEvents=true        ─▶ the same, then a BOOKMARK marked initial-events-end
//!   resourceVersion N             ─▶ the retained changes after N, then live;
//!                                    an ERROR event with a 410 Expired Status if N is too old
//! ```
//! Each watch filters the shared change stream for its resource, namespace and selectors; an
//! object that stops matching arrives as DELETED, one that starts matching as ADDED, as the
//! watch cache does. A watch that falls too far behind is closed, and the client resumes.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::cluster::{Cluster, present};
use super::resources::ResourceType;
use super::respond::partial_metadata;
use super::selector::Selectors;
use super::status::ApiError;
use super::store::{Change, EventType};
use super::table;

pub struct WatchRequest {
    pub rt: Arc<ResourceType>,
    pub namespace: Option<String>,
    pub selectors: Selectors,
    /// None for unset or "0": start from the current state.
    pub resource_version: Option<u64>,
    pub send_initial_events: Option<bool>,
    pub allow_bookmarks: bool,
    pub timeout: Duration,
    pub bookmark_interval: Duration,
    /// `kubectl get -w`: each object as a one-row Table (`includeObject` value); the column
    /// definitions come with the first event only.
    pub table: Option<String>,
    pub headers_sent: AtomicBool,
    /// Metadata-only clients get `PartialObjectMetadata` objects.
    pub metadata_only: bool,
}

fn line(event: &str, object: &Value) -> Bytes {
    let mut bytes =
        serde_json::to_vec(&json!({"type": event, "object": object})).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn bookmark(rt: &ResourceType, rv: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": metadata}),
    )
}

impl WatchRequest {
    fn sees(&self, change: &Change) -> bool {
        change.resource == self.rt.storage_key()
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| *ns == change.namespace)
    }

    /// The event this watch reports for a change, if any.
    fn translate(&self, change: &Change) -> Option<Bytes> {
        if !self.sees(change) {
            return None;
        }
        let now = self.selectors.matches(&change.object);
        let before = change
            .previous
            .as_deref()
            .is_some_and(|p| self.selectors.matches(p));
        let event = match (change.event, before, now) {
            (EventType::Added, _, true) => EventType::Added,
            (EventType::Modified, true, true) => EventType::Modified,
            (EventType::Modified, false, true) => EventType::Added,
            (EventType::Modified, true, false) => EventType::Deleted,
            (EventType::Deleted, true, _) => EventType::Deleted,
            _ => return None,
        };
        if self.table.is_some() {
            return Some(self.table_line(event.as_str(), &change.object));
        }
        if self.metadata_only {
            return Some(line(event.as_str(), &partial_metadata(&change.object)));
        }
        let stored_version = change.object["apiVersion"].as_str() == Some(&self.rt.api_version());
        if event == change.event && stored_version {
            // The common case: one encoding shared by every watch.
            return Some(
                change
                    .encoded
                    .get_or_init(|| line(event.as_str(), &change.object))
                    .clone(),
            );
        }
        Some(line(event.as_str(), &present(&self.rt, &change.object)))
    }
}

impl WatchRequest {
    fn table_line(&self, event: &str, object: &Value) -> Bytes {
        let include = self.table.as_deref().unwrap_or("Metadata");
        let presented = present(&self.rt, object);
        let rv = presented["metadata"]["resourceVersion"].clone();
        let mut table = table::table(&self.rt, &[presented], &rv, &Value::Null, include);
        if self.headers_sent.swap(true, Ordering::Relaxed)
            && let Some(map) = table.as_object_mut()
        {
            map.remove("columnDefinitions");
        }
        line(event, &table)
    }

    /// An initial-state event.
    fn added(&self, object: &Value) -> Bytes {
        match self.table {
            Some(_) => self.table_line("ADDED", object),
            None if self.metadata_only => line("ADDED", &partial_metadata(object)),
            None => line("ADDED", &present(&self.rt, object)),
        }
    }
}

/// Opens a watch; the returned response streams until the timeout or the client leaves.
pub fn watch(cluster: &Cluster, request: WatchRequest) -> Result<Response, ApiError> {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut first: Vec<Bytes> = Vec::new();
    let receiver;
    let mut progress_rv;
    {
        let state = cluster.lock();
        progress_rv = state.store.resource_version();
        let rv = request.resource_version;
        if let Some(rv) = rv.filter(|rv| *rv > progress_rv) {
            return Err(super::options::too_large(rv, progress_rv));
        }
        match (request.send_initial_events, rv) {
            (Some(true), _) | (None, None) => {
                let gr = request.rt.storage_key();
                for object in state.store.list(&gr, request.namespace.as_deref()) {
                    if request.selectors.matches(object) {
                        first.push(request.added(object));
                    }
                }
                if request.send_initial_events == Some(true) {
                    first.push(bookmark(&request.rt, progress_rv, true));
                }
                receiver = state.store.subscribe();
            }
            (Some(false), None) => receiver = state.store.subscribe(),
            (_, Some(rv)) => match state.store.watch_from(rv) {
                Ok((replay, live)) => {
                    first.extend(replay.iter().filter_map(|c| request.translate(c)));
                    receiver = live;
                }
                Err(too_old) => {
                    let status = ApiError::gone(format!(
                        "too old resource version: {rv} ({})",
                        too_old.oldest
                    ))
                    .to_status();
                    first.push(line("ERROR", &status));
                    return Ok(stream_response(first, None));
                }
            },
        }
    }
    tokio::spawn(async move {
        for bytes in first {
            if tx.send(bytes).await.is_err() {
                return;
            }
        }
        forward(request, receiver, tx, &mut progress_rv).await;
    });
    Ok(stream_response(Vec::new(), Some(rx)))
}

async fn forward(
    request: WatchRequest,
    mut receiver: broadcast::Receiver<Arc<Change>>,
    tx: mpsc::Sender<Bytes>,
    progress_rv: &mut u64,
) {
    let start = Instant::now();
    let schedule = BookmarkSchedule::new(start, request.timeout, request.bookmark_interval);
    let deadline = tokio::time::sleep_until(start + request.timeout);
    tokio::pin!(deadline);
    let bookmark_due = tokio::time::sleep_until(schedule.next(start));
    tokio::pin!(bookmark_due);
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            _ = tx.closed() => return,
            _ = &mut bookmark_due, if request.allow_bookmarks => {
                if tx.send(bookmark(&request.rt, *progress_rv, false)).await.is_err() {
                    return;
                }
                bookmark_due.as_mut().reset(schedule.next(Instant::now()));
            }
            received = receiver.recv() => match received {
                Ok(change) => {
                    *progress_rv = change.rv;
                    if let Some(bytes) = request.translate(&change)
                        && tx.send(bytes).await.is_err()
                    {
                        return;
                    }
                }
                // Too slow to keep up, or shutting down: close, and the client resumes.
                Err(_) => return,
            },
        }
    }
}

/// When a watch that allows bookmarks gets them, as the watch cache sends them: every
/// `interval` (a minute), and once shortly before the timeout closes the watch, so that the
/// client resumes from a fresh resourceVersion instead of replaying or relisting.
struct BookmarkSchedule {
    before_close: Instant,
    interval: Duration,
}

impl BookmarkSchedule {
    /// Two seconds before the close, as upstream; half the timeout for shorter watches.
    fn new(start: Instant, timeout: Duration, interval: Duration) -> Self {
        let lead = Duration::from_secs(2).min(timeout / 2);
        BookmarkSchedule {
            before_close: start + timeout - lead,
            interval,
        }
    }

    /// The next bookmark after one sent (or the watch opened) at `now`.
    fn next(&self, now: Instant) -> Instant {
        let regular = now + self.interval;
        if self.before_close > now {
            regular.min(self.before_close)
        } else {
            regular
        }
    }
}

fn stream_response(first: Vec<Bytes>, rx: Option<mpsc::Receiver<Bytes>>) -> Response {
    let head = futures::stream::iter(first.into_iter().map(Ok::<_, Infallible>));
    let tail = futures::stream::unfold(rx, |rx| async move {
        let mut rx = rx?;
        let bytes = rx.recv().await?;
        Some((Ok::<_, Infallible>(bytes), Some(rx)))
    });
    let mut response = Response::new(Body::from_stream(futures::StreamExt::chain(head, tail)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_watch_gets_its_bookmark_before_it_closes_and_a_long_one_every_interval() {
        let start = Instant::now();
        let minute = Duration::from_secs(60);
        let short = BookmarkSchedule::new(start, Duration::from_secs(5), minute);
        assert_eq!(short.next(start), start + Duration::from_secs(3));
        // After the one before the close, the next would come after the close.
        assert!(short.next(start + Duration::from_secs(3)) > start + Duration::from_secs(5));
        let long = BookmarkSchedule::new(start, Duration::from_secs(1800), minute);
        assert_eq!(long.next(start), start + minute);
        let at = start + Duration::from_secs(1790);
        assert_eq!(long.next(at), start + Duration::from_secs(1798));
        let tiny = BookmarkSchedule::new(start, Duration::from_secs(1), minute);
        assert_eq!(tiny.next(start), start + Duration::from_millis(500));
    }
}
