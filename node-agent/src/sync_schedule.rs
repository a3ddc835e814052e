//! When the dataplane syncs (kube-proxy's bounded-frequency runner): changes are applied at
//! most once per `--min-sync-period`, so a burst of events costs one restore, and everything is
//! rewritten at least every `--sync-period`, so drift (someone flushing a chain) is repaired.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct SyncSchedule {
    min_interval: Duration,
    max_interval: Duration,
    last_sync: Option<Instant>,
    last_full_sync: Option<Instant>,
    pending: bool,
}

/// What the next sync should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncRequest {
    /// Apply what changed.
    Changes,
    /// Rewrite everything (the period elapsed, or nothing was ever written).
    Full,
}

impl SyncSchedule {
    pub fn new(min_interval: Duration, max_interval: Duration) -> Self {
        SyncSchedule {
            min_interval,
            max_interval,
            last_sync: None,
            last_full_sync: None,
            pending: true,
        }
    }

    /// A change arrived that the dataplane must reflect.
    pub fn request(&mut self) {
        self.pending = true;
    }

    /// When the next sync is due.
    pub fn next_at(&self, now: Instant) -> Instant {
        let full_due = self
            .last_full_sync
            .map_or(now, |last| last + self.max_interval);
        if !self.pending {
            return full_due;
        }
        let earliest = self.last_sync.map_or(now, |last| last + self.min_interval);
        earliest.max(now)
    }

    /// What to run when `next_at` has come.
    pub fn kind(&self, now: Instant) -> SyncRequest {
        match self.last_full_sync {
            Some(last) if now < last + self.max_interval => SyncRequest::Changes,
            _ => SyncRequest::Full,
        }
    }

    /// A sync of `kind` finished (successfully or not: a failed one is retried after the
    /// minimum interval, since `failed` keeps the change pending).
    pub fn finished(&mut self, kind: SyncRequest, now: Instant, failed: bool) {
        self.last_sync = Some(now);
        if kind == SyncRequest::Full && !failed {
            self.last_full_sync = Some(now);
        }
        self.pending = failed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);

    #[test]
    fn the_first_sync_is_full_and_immediate() {
        let start = Instant::now();
        let schedule = SyncSchedule::new(MIN, MAX);
        assert_eq!(schedule.next_at(start), start);
        assert_eq!(schedule.kind(start), SyncRequest::Full);
    }

    #[test]
    fn bursts_of_changes_wait_for_the_minimum_interval() {
        let start = Instant::now();
        let mut schedule = SyncSchedule::new(MIN, MAX);
        schedule.finished(SyncRequest::Full, start, false);
        let soon = start + Duration::from_millis(100);
        schedule.request();
        schedule.request();
        assert_eq!(
            schedule.next_at(soon),
            start + MIN,
            "one sync for the burst, after 1 s"
        );
        assert_eq!(schedule.kind(start + MIN), SyncRequest::Changes);
        let later = start + Duration::from_secs(5);
        schedule.finished(SyncRequest::Changes, start + MIN, false);
        schedule.request();
        assert_eq!(
            schedule.next_at(later),
            later,
            "quiet for long enough: at once"
        );
    }

    #[test]
    fn without_changes_a_full_sync_comes_every_period() {
        let start = Instant::now();
        let mut schedule = SyncSchedule::new(MIN, MAX);
        schedule.finished(SyncRequest::Full, start, false);
        assert_eq!(schedule.next_at(start + MIN), start + MAX);
        assert_eq!(schedule.kind(start + MAX), SyncRequest::Full);
    }

    #[test]
    fn a_failed_sync_is_retried_after_the_minimum_interval() {
        let start = Instant::now();
        let mut schedule = SyncSchedule::new(MIN, MAX);
        schedule.finished(SyncRequest::Full, start, true);
        assert_eq!(schedule.next_at(start), start + MIN);
        assert_eq!(
            schedule.kind(start + MIN),
            SyncRequest::Full,
            "still never fully synced"
        );
    }
}
