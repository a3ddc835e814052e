//! Whether the dataplane is keeping up, as kube-proxy's proxier health judges it: unhealthy
//! once a requested sync has waited longer than the timeout (2 × sync period by default).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;

#[derive(Debug, Clone, Copy)]
struct Inner {
    /// When the oldest change still waiting for a sync was queued.
    oldest_pending: Option<Instant>,
    /// Wall-clock time of the last completed sync, for the JSON body.
    last_updated: Option<Timestamp>,
}

/// Shared between the sync loop (which reports) and the health servers (which ask).
#[derive(Debug, Clone)]
pub struct SyncHealth {
    inner: Arc<Mutex<Inner>>,
    timeout: Duration,
}

impl SyncHealth {
    pub fn new(timeout: Duration) -> Self {
        SyncHealth {
            inner: Arc::new(Mutex::new(Inner {
                oldest_pending: None,
                last_updated: None,
            })),
            timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding this lock leaves plain data behind; keep serving it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A change arrived that needs a sync; the first such change starts the clock.
    pub fn queued(&self, now: Instant) {
        let mut inner = self.lock();
        inner.oldest_pending.get_or_insert(now);
    }

    /// A sync completed: nothing is pending any more.
    pub fn updated(&self) {
        let mut inner = self.lock();
        inner.oldest_pending = None;
        inner.last_updated = Some(Timestamp::now());
    }

    pub fn healthy(&self, now: Instant) -> bool {
        self.lock()
            .oldest_pending
            .is_none_or(|queued| now.saturating_duration_since(queued) < self.timeout)
    }

    pub fn last_updated(&self) -> Option<Timestamp> {
        self.lock().last_updated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_until_a_queued_change_waits_longer_than_the_timeout() {
        let health = SyncHealth::new(Duration::from_secs(60));
        let start = Instant::now();
        assert!(health.healthy(start), "nothing pending");
        health.queued(start);
        health.queued(start + Duration::from_secs(50)); // later changes do not reset the clock
        assert!(health.healthy(start + Duration::from_secs(59)));
        assert!(!health.healthy(start + Duration::from_secs(61)));
        health.updated();
        assert!(health.healthy(start + Duration::from_secs(61)));
        assert!(health.last_updated().is_some());
    }
}
