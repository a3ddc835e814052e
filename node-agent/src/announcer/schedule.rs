//! When the owner of a VIP sends unsolicited announcements (gratuitous ARP, unsolicited NA):
//! at once on takeover, then every 1.1 s for 5 s (MetalLB's schedule, which outlasts a lost
//! frame or two and a switch's learning delay), then every refresh period, if one is set, so
//! that neighbours and switches whose entries age out keep pointing at the owner.
//! Pure: the caller passes the time in.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub const BURST_EVERY: Duration = Duration::from_millis(1100);
pub const BURST_FOR: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug)]
struct Due {
    taken_over: Instant,
    next: Instant,
}

#[derive(Debug)]
pub struct AnnounceSchedule {
    refresh: Option<Duration>,
    vips: BTreeMap<IpAddr, Due>,
}

impl AnnounceSchedule {
    /// `refresh`: the period after the burst; `None` sends nothing after it.
    pub fn new(refresh: Option<Duration>) -> Self {
        AnnounceSchedule {
            refresh,
            vips: BTreeMap::new(),
        }
    }

    /// Sets the owned VIPs: new ones are due at once, dropped ones are forgotten (a later
    /// takeover starts a fresh burst), kept ones keep their place in the schedule.
    pub fn set_owned(&mut self, owned: &BTreeSet<IpAddr>, now: Instant) {
        self.vips.retain(|vip, _| owned.contains(vip));
        for vip in owned {
            self.vips.entry(*vip).or_insert(Due {
                taken_over: now,
                next: now,
            });
        }
    }

    /// The VIPs due by `now`, each once, and moves each to its next time.
    pub fn take_due(&mut self, now: Instant) -> Vec<IpAddr> {
        let mut due = Vec::new();
        let refresh = self.refresh;
        self.vips.retain(|vip, entry| {
            if entry.next > now {
                return true;
            }
            due.push(*vip);
            let in_burst = entry.next + BURST_EVERY <= entry.taken_over + BURST_FOR;
            if in_burst {
                entry.next += BURST_EVERY;
                true
            } else if let Some(period) = refresh {
                entry.next = now + period;
                true
            } else {
                // Still owned, nothing more to send: keep it so that it is not "new" again.
                entry.next = far_future(now);
                true
            }
        });
        due
    }

    /// When `take_due` next has something, if ever.
    pub fn next_at(&self, now: Instant) -> Option<Instant> {
        self.vips
            .values()
            .map(|entry| entry.next)
            .filter(|next| *next < far_future(now))
            .min()
    }
}

fn far_future(now: Instant) -> Instant {
    now + Duration::from_secs(86_400 * 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// Runs the schedule from `start` to `until`, returning the offsets (ms) at which `vip` was sent.
    fn sends(schedule: &mut AnnounceSchedule, start: Instant, until: Duration) -> Vec<u128> {
        let mut times = Vec::new();
        let mut now = start;
        while let Some(next) = schedule.next_at(now) {
            if next > start + until {
                break;
            }
            now = now.max(next);
            for _ in schedule.take_due(now) {
                times.push((now - start).as_millis());
            }
        }
        times
    }

    #[test]
    fn takeover_sends_at_once_then_every_1100ms_for_5s_then_refreshes() {
        let start = Instant::now();
        let mut schedule = AnnounceSchedule::new(Some(Duration::from_secs(30)));
        schedule.set_owned(&BTreeSet::from([vip("198.18.0.200")]), start);
        assert_eq!(
            sends(&mut schedule, start, Duration::from_secs(65)),
            [0, 1100, 2200, 3300, 4400, 34400, 64400]
        );
    }

    #[test]
    fn without_refresh_only_the_burst_is_sent() {
        let start = Instant::now();
        let mut schedule = AnnounceSchedule::new(None);
        schedule.set_owned(&BTreeSet::from([vip("fd00::200")]), start);
        assert_eq!(
            sends(&mut schedule, start, Duration::from_secs(600)),
            [0, 1100, 2200, 3300, 4400]
        );
        assert_eq!(schedule.next_at(start), None);
    }

    #[test]
    fn a_lost_vip_is_forgotten_and_a_new_takeover_bursts_again() {
        let start = Instant::now();
        let mut schedule = AnnounceSchedule::new(None);
        let owned = BTreeSet::from([vip("198.18.0.200"), vip("198.18.0.201")]);
        schedule.set_owned(&owned, start);
        assert_eq!(schedule.take_due(start).len(), 2);
        let later = start + Duration::from_millis(500);
        schedule.set_owned(&BTreeSet::from([vip("198.18.0.201")]), later);
        // The kept VIP keeps its schedule: nothing is due before 1.1 s.
        assert!(schedule.take_due(later).is_empty());
        schedule.set_owned(&owned, later);
        assert_eq!(schedule.take_due(later), vec![vip("198.18.0.200")]);
        schedule.set_owned(&BTreeSet::new(), later);
        assert_eq!(schedule.next_at(later), None);
    }
}
