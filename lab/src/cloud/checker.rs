//! The lab cloud's health checker: what a cloud load balancer's checker decides about each
//! target, as a pure state machine, and (in `prober`) the thin part that probes with real HTTP
//! from the cloud namespace.
//!
//! ```text
//!   CheckSpec (port, path, interval, timeout, thresholds) ─┐
//!   prober: every interval, GET host:port/path, timeout ───┴─▶ TargetHealth::record(success)
//!                                                               └─▶ Healthy / Unhealthy
//! ```
//!
//! GCP's semantics (legacy HTTP health checks of target pools, and health checks in general):
//! a probe succeeds when it gets HTTP 200 within `timeoutSec`; a target that is so far unhealthy
//! becomes healthy after `healthyThreshold` consecutive successes, a healthy one unhealthy after
//! `unhealthyThreshold` consecutive failures. A new target starts unhealthy: it takes traffic
//! only once it has passed `healthyThreshold` probes.

pub mod prober;

use std::time::Duration;

/// How one target is checked: HTTP GET `path` on `port`, every `interval`, each probe given
/// `timeout`; the thresholds count consecutive results.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckSpec {
    pub port: u16,
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

impl CheckSpec {
    /// The HTTP health check GCP gives a target pool when the API leaves a field out
    /// (`port` 80, `requestPath` `/`, 5 s, 5 s, 2 healthy, 2 unhealthy).
    pub fn gcp_default() -> CheckSpec {
        CheckSpec {
            port: 80,
            path: "/".into(),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Health {
    Healthy,
    Unhealthy,
}

impl Health {
    /// The word GCP's `getHealth` uses.
    pub fn gcp_state(self) -> &'static str {
        match self {
            Health::Healthy => "HEALTHY",
            Health::Unhealthy => "UNHEALTHY",
        }
    }
}

/// One target's verdict and the run of equal results that leads to the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetHealth {
    health: Health,
    /// Consecutive results that disagree with `health` (successes while unhealthy, failures
    /// while healthy); a result that agrees resets it.
    streak: u32,
    probes: u64,
}

impl Default for TargetHealth {
    fn default() -> Self {
        TargetHealth::new()
    }
}

impl TargetHealth {
    /// A new target: unhealthy until it has passed `healthyThreshold` probes.
    pub fn new() -> TargetHealth {
        TargetHealth {
            health: Health::Unhealthy,
            streak: 0,
            probes: 0,
        }
    }

    pub fn health(&self) -> Health {
        self.health
    }

    /// How many probe results this target has seen.
    pub fn probes(&self) -> u64 {
        self.probes
    }

    /// Takes one probe result under `spec`'s thresholds (a threshold below 1 counts as 1);
    /// returns the new verdict when this result changed it.
    pub fn record(&mut self, success: bool, spec: &CheckSpec) -> Option<Health> {
        self.probes += 1;
        let (agrees, threshold, next) = match self.health {
            Health::Unhealthy => (!success, spec.healthy_threshold, Health::Healthy),
            Health::Healthy => (success, spec.unhealthy_threshold, Health::Unhealthy),
        };
        if agrees {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        if self.streak < threshold.max(1) {
            return None;
        }
        self.health = next;
        self.streak = 0;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(healthy: u32, unhealthy: u32) -> CheckSpec {
        CheckSpec {
            healthy_threshold: healthy,
            unhealthy_threshold: unhealthy,
            ..CheckSpec::gcp_default()
        }
    }

    /// Feeds `results` ('+' success, '-' failure) and returns the verdict after each.
    fn run(target: &mut TargetHealth, spec: &CheckSpec, results: &str) -> String {
        results
            .chars()
            .map(|c| {
                target.record(c == '+', spec);
                match target.health() {
                    Health::Healthy => 'H',
                    Health::Unhealthy => 'U',
                }
            })
            .collect()
    }

    /// Each row feeds its results ('+' success, '-' failure) to a new target under its healthy
    /// and unhealthy thresholds and names the verdict after each probe.
    const VERDICTS: &str = "
        healthy unhealthy results    verdicts
        # A new target is unhealthy until it passes `healthy` probes in a row.
        1       3         +          H
        2       2         ++         UH
        3       3         +++        UUH
        2       2         -+-+       UUUU
        2       2         +-++       UUUH
        10      1         +++++++++- UUUUUUUUUU
        # Once healthy, it turns unhealthy only after `unhealthy` failures in a row.
        1       3         +--        HHH
        1       3         +---       HHHU
        1       3         +--+--     HHHHHH
        1       3         +--+---    HHHHHHU
        2       2         ++--       UHHU
        1       1         +-+-       HUHU
    ";

    #[test]
    fn the_verdict_changes_only_after_threshold_probes_in_a_row() {
        assert_eq!(TargetHealth::new().health(), Health::Unhealthy);
        let rows = VERDICTS.lines().map(str::trim).filter(|line| {
            !line.is_empty() && !line.starts_with('#') && !line.starts_with("healthy")
        });
        let mut checked = 0;
        for row in rows {
            let cells: Vec<&str> = row.split_whitespace().collect();
            let (healthy, unhealthy) = (cells[0].parse().unwrap(), cells[1].parse().unwrap());
            let mut target = TargetHealth::new();
            assert_eq!(
                run(&mut target, &spec(healthy, unhealthy), cells[2]),
                cells[3],
                "{cells:?}"
            );
            checked += 1;
        }
        assert_eq!(checked, 12, "every row of the table is read");
    }

    #[test]
    fn record_reports_only_the_transitions() {
        let spec = spec(2, 2);
        let mut target = TargetHealth::new();
        let transitions: Vec<Option<Health>> = "++++--+--"
            .chars()
            .map(|c| target.record(c == '+', &spec))
            .collect();
        assert_eq!(
            transitions,
            [
                None,
                Some(Health::Healthy),
                None,
                None,
                None,
                Some(Health::Unhealthy),
                None,
                None,
                None,
            ]
        );
        assert_eq!(target.probes(), 9);
    }

    #[test]
    fn the_thresholds_in_force_at_each_probe_count_and_zero_counts_as_one() {
        let mut target = TargetHealth::new();
        // One success under healthy=3, then the check is changed to healthy=2: the streak so far
        // counts towards the new threshold, as it would on a running checker.
        target.record(true, &spec(3, 3));
        assert_eq!(target.record(true, &spec(2, 3)), Some(Health::Healthy));
        let mut target = TargetHealth::new();
        assert_eq!(target.record(true, &spec(0, 0)), Some(Health::Healthy));
        assert_eq!(target.record(false, &spec(0, 0)), Some(Health::Unhealthy));
    }

    #[test]
    fn gcp_state_words_are_the_apis() {
        assert_eq!(Health::Healthy.gcp_state(), "HEALTHY");
        assert_eq!(Health::Unhealthy.gcp_state(), "UNHEALTHY");
    }
}
