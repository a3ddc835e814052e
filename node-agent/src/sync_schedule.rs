//! When the dataplane syncs, and how much it does (kube-proxy's bounded-frequency runner, plus
//! its hourly full sync of k/k#129329):
//!
//! ```text
//!   change ──▶ at most once per --min-sync-period ──▶ Changes (rewrite what changed)
//!   every --sync-period ──────────────────────────▶ Check   (cheap drift check, repair only drift)
//!   every --full-sync-period ─────────────────────▶ Full    (rewrite everything)
//! ```
//!
//! Periods run from the start of a sync, not its end, so a slow sync does not stretch them. A
//! failed sync keeps its work pending and is retried after the minimum interval; the syncer
//! itself makes the retry a full one, since the kernel's state is then unknown.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct SyncSchedule {
    min_interval: Duration,
    check_interval: Duration,
    full_interval: Duration,
    /// Start of the last sync of any kind.
    last_sync: Option<Instant>,
    /// Start of the last successful sync that checked for drift (a check or a full sync).
    last_check: Option<Instant>,
    /// Start of the last successful full sync.
    last_full_sync: Option<Instant>,
    pending: bool,
}

/// What the next sync should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncRequest {
    /// Apply what changed.
    Changes,
    /// Apply what changed, and check that Portico's jumps and top chains are in place,
    /// repairing only what drifted.
    Check,
    /// Rewrite everything (the full period elapsed, or nothing was ever written).
    Full,
}

impl SyncSchedule {
    pub fn new(min_interval: Duration, check_interval: Duration, full_interval: Duration) -> Self {
        SyncSchedule {
            min_interval,
            check_interval,
            full_interval,
            last_sync: None,
            last_check: None,
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
        if self.pending {
            let earliest = self.last_sync.map_or(now, |last| last + self.min_interval);
            return earliest.max(now);
        }
        let check_due = self
            .last_check
            .map_or(now, |last| last + self.check_interval);
        let full_due = self
            .last_full_sync
            .map_or(now, |last| last + self.full_interval);
        check_due.min(full_due)
    }

    /// What to run when `next_at` has come.
    pub fn kind(&self, now: Instant) -> SyncRequest {
        let due = |last: Option<Instant>, interval: Duration| {
            last.is_none_or(|last| now >= last + interval)
        };
        if due(self.last_full_sync, self.full_interval) {
            SyncRequest::Full
        } else if due(self.last_check, self.check_interval) {
            SyncRequest::Check
        } else {
            SyncRequest::Changes
        }
    }

    /// A sync of `kind` that began at `started` finished (successfully or not: a failed one is
    /// retried after the minimum interval, since `failed` keeps the work pending).
    pub fn finished(&mut self, kind: SyncRequest, started: Instant, failed: bool) {
        self.last_sync = Some(started);
        self.pending = failed;
        if failed {
            return;
        }
        if kind == SyncRequest::Full {
            self.last_full_sync = Some(started);
        }
        if kind != SyncRequest::Changes {
            self.last_check = Some(started);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(1);
    const CHECK: Duration = Duration::from_secs(30);
    const FULL: Duration = Duration::from_secs(3600);

    fn schedule() -> SyncSchedule {
        SyncSchedule::new(MIN, CHECK, FULL)
    }

    #[test]
    fn the_first_sync_is_full_and_immediate() {
        let start = Instant::now();
        let schedule = schedule();
        assert_eq!(schedule.next_at(start), start);
        assert_eq!(schedule.kind(start), SyncRequest::Full);
    }

    #[test]
    fn bursts_of_changes_wait_for_the_minimum_interval() {
        let start = Instant::now();
        let mut schedule = schedule();
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
    fn without_changes_a_check_comes_every_sync_period_and_not_a_full_sync() {
        let start = Instant::now();
        let mut schedule = schedule();
        schedule.finished(SyncRequest::Full, start, false);
        assert_eq!(schedule.next_at(start + MIN), start + CHECK);
        assert_eq!(schedule.kind(start + CHECK), SyncRequest::Check);
        schedule.finished(SyncRequest::Check, start + CHECK, false);
        assert_eq!(schedule.next_at(start + CHECK), start + CHECK * 2);
        assert_eq!(schedule.kind(start + CHECK * 2), SyncRequest::Check);
    }

    #[test]
    fn a_full_sync_comes_every_full_sync_period() {
        let start = Instant::now();
        let mut schedule = schedule();
        schedule.finished(SyncRequest::Full, start, false);
        let mut at = start;
        while at + CHECK < start + FULL {
            at += CHECK;
            assert_eq!(schedule.kind(at), SyncRequest::Check, "at {:?}", at - start);
            schedule.finished(SyncRequest::Check, at, false);
        }
        assert_eq!(schedule.next_at(at), start + FULL);
        assert_eq!(schedule.kind(start + FULL), SyncRequest::Full);
    }

    #[test]
    fn periods_run_from_the_start_of_a_sync_not_its_end() {
        let start = Instant::now();
        let mut schedule = schedule();
        // A full sync that took 6 s: the next check is 30 s after it began, not 36 s.
        schedule.finished(SyncRequest::Full, start, false);
        assert_eq!(
            schedule.next_at(start + Duration::from_secs(6)),
            start + CHECK
        );
    }

    #[test]
    fn a_change_sync_does_not_postpone_the_check() {
        let start = Instant::now();
        let mut schedule = schedule();
        schedule.finished(SyncRequest::Full, start, false);
        schedule.request();
        schedule.finished(SyncRequest::Changes, start + Duration::from_secs(20), false);
        assert_eq!(
            schedule.next_at(start + Duration::from_secs(21)),
            start + CHECK
        );
    }

    #[test]
    fn a_failed_sync_is_retried_after_the_minimum_interval() {
        let start = Instant::now();
        let mut schedule = schedule();
        schedule.finished(SyncRequest::Full, start, true);
        assert_eq!(schedule.next_at(start), start + MIN);
        assert_eq!(
            schedule.kind(start + MIN),
            SyncRequest::Full,
            "still never fully synced"
        );
        schedule.finished(SyncRequest::Full, start + MIN, false);
        schedule.finished(SyncRequest::Check, start + CHECK, true);
        assert_eq!(
            schedule.next_at(start + CHECK),
            start + CHECK + MIN,
            "a failed check is retried soon, not a period later"
        );
        assert_eq!(schedule.kind(start + CHECK + MIN), SyncRequest::Check);
    }
}
