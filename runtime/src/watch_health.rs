//! Which of a binary's watches are failing, told to the operator twice: a warning in the log
//! (the first failure at once, then at most one line per watch every `LOG_EVERY`, so a long
//! outage neither floods the log nor goes silent) and `/readyz`, which answers 503 naming the
//! failing watches until they work again.
//!
//! ```text
//!   watch stream items ─▶ WatchReporter ─┬─ FailureLog (pure: log now? outage over?) ─▶ log
//!   (and recovery probes)                └─ WatchHealth (shared) ─▶ /readyz 503 + names
//! ```

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// At most one warning per failing watch in this period.
pub const LOG_EVERY: Duration = Duration::from_secs(30);

/// When to log a failing watch: pure, so the rate limit is tested with given instants.
#[derive(Clone, Debug, Default)]
pub struct FailureLog {
    failing_since: Option<Instant>,
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl FailureLog {
    /// A failure at `now`. Some(failures not logged since the last line) when this one is to be
    /// logged: the first of an outage at once, later ones once `LOG_EVERY` has passed.
    pub fn failed(&mut self, now: Instant) -> Option<u64> {
        self.failing_since.get_or_insert(now);
        match self.last_logged {
            Some(logged) if now.saturating_duration_since(logged) < LOG_EVERY => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last_logged = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }

    /// A success at `now`: Some(how long it failed) when this ends an outage.
    pub fn recovered(&mut self, now: Instant) -> Option<Duration> {
        let since = self.failing_since.take()?;
        self.last_logged = None;
        self.suppressed = 0;
        Some(now.saturating_duration_since(since))
    }

    pub fn is_failing(&self) -> bool {
        self.failing_since.is_some()
    }
}

/// A watch that is failing now, as `/readyz` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailingWatch {
    /// What is watched: the kind, and the selector if any (`Node metadata.name=node-0`).
    pub watch: String,
    pub since: Instant,
    pub last_error: String,
}

/// The failing watches of one process; cheap to clone, shared by its watches and `/readyz`.
#[derive(Clone, Debug, Default)]
pub struct WatchHealth {
    failing: Arc<Mutex<BTreeMap<u64, FailingWatch>>>,
    next_id: Arc<AtomicU64>,
}

impl WatchHealth {
    /// A reporter for one watch, named as the operator should read it.
    pub fn reporter(&self, watch: impl Into<String>) -> WatchReporter {
        WatchReporter {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            watch: watch.into(),
            health: self.clone(),
            log: FailureLog::default(),
        }
    }

    /// The watches failing now, by name.
    pub fn failing(&self) -> Vec<FailingWatch> {
        let failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        let mut list: Vec<FailingWatch> = failing.values().cloned().collect();
        list.sort_by(|a, b| a.watch.cmp(&b.watch));
        list
    }

    fn set(&self, id: u64, watch: Option<FailingWatch>) {
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        match watch {
            Some(watch) => failing.insert(id, watch),
            None => failing.remove(&id),
        };
    }
}

/// Reports one watch's failures and recoveries; owned by the task that drives the watch.
#[derive(Debug)]
pub struct WatchReporter {
    id: u64,
    watch: String,
    health: WatchHealth,
    log: FailureLog,
}

impl WatchReporter {
    /// Feeds one item of the watch stream: an error is a failure, anything else a success.
    pub fn observe<T, E: Display>(&mut self, item: &Result<T, E>) {
        match item {
            Ok(_) => self.succeeded(),
            Err(e) => self.failed(e),
        }
    }

    pub fn failed(&mut self, error: &dyn Display) {
        let now = Instant::now();
        let since = *self.log.failing_since.get_or_insert(now);
        if let Some(suppressed) = self.log.failed(now) {
            tracing::warn!(
                watch = %self.watch,
                error = %error,
                failing_for = ?now.saturating_duration_since(since),
                failures_not_logged = suppressed,
                "the watch of {} is failing (is the API server reachable?); retrying",
                self.watch
            );
        }
        self.health.set(
            self.id,
            Some(FailingWatch {
                watch: self.watch.clone(),
                since,
                last_error: error.to_string(),
            }),
        );
    }

    pub fn succeeded(&mut self) {
        if let Some(outage) = self.log.recovered(Instant::now()) {
            tracing::info!(watch = %self.watch, failed_for = ?outage, "the watch of {} works again", self.watch);
            self.health.set(self.id, None);
        }
    }

    pub fn is_failing(&self) -> bool {
        self.log.is_failing()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_logged_at_once_then_once_per_period() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut log = FailureLog::default();
        assert_eq!(log.failed(at(0)), Some(0), "the first at once");
        assert_eq!(log.failed(at(1)), None);
        assert_eq!(log.failed(at(20)), None);
        assert_eq!(
            log.failed(at(30)),
            Some(2),
            "then with the count it skipped"
        );
        assert_eq!(log.failed(at(31)), None);
        assert_eq!(log.recovered(at(40)), Some(Duration::from_secs(40)));
        assert_eq!(log.recovered(at(41)), None, "no outage to end");
        assert_eq!(log.failed(at(42)), Some(0), "a new outage is told at once");
    }

    #[test]
    fn failing_watches_are_listed_until_they_succeed() {
        let health = WatchHealth::default();
        let mut slices = health.reporter("EndpointSlice");
        let mut services = health.reporter("Service");
        slices.observe(&Err::<(), _>("connection refused"));
        services.observe(&Ok::<_, String>(()));
        let failing = health.failing();
        assert_eq!(failing.len(), 1);
        assert_eq!(failing[0].watch, "EndpointSlice");
        assert_eq!(failing[0].last_error, "connection refused");
        slices.observe(&Err::<(), _>("connection reset"));
        assert_eq!(health.failing()[0].last_error, "connection reset");
        assert_eq!(
            health.failing()[0].since,
            failing[0].since,
            "since the first"
        );
        slices.succeeded();
        assert!(health.failing().is_empty());
    }
}
