//! Measures how long a client's traffic to a VIP is interrupted: a new TCP request (the echo
//! server's answer) is started from the client's namespace every `every`, whatever became of the
//! earlier ones, so the resolution is `every` and not a probe's timeout. What happened to each
//! request is kept with the time it was started.
//!
//! ```text
//!   start ─▶ every 25 ms: probe (own process in the namespace, 1 s timeout) ─▶ Sample
//!   the event (kill, link down) at `mark` ─▶ stop() ─▶ outage_after(mark, through_new_owner)
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::probe::{ProbeMode, probe_name_from};

/// One request: when it was started and the echo body, or None when it failed (and then why:
/// refused, reset, or no answer within the timeout).
#[derive(Clone, Debug)]
pub struct Sample {
    pub started: Instant,
    pub answer: Option<String>,
    pub error: Option<String>,
    /// From the start to the answer or the failure.
    pub took: Duration,
}

/// What the client saw after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    /// From the event to the start of the first request that was answered as `recovered`
    /// says (for example through the new owner).
    pub interrupted: Duration,
    /// Requests started after the event that failed.
    pub failed: usize,
    /// Requests started after the event (up to the end of sampling).
    pub sent: usize,
}

/// Requests under way in the background.
pub struct Sampler {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Starts requesting `target` from `ns` every `every`; each request gives up after `timeout`.
    pub fn start(
        lab_binary: PathBuf,
        ns: String,
        target: SocketAddr,
        every: Duration,
        timeout: Duration,
    ) -> Sampler {
        Self::start_to(lab_binary, ns, target.to_string(), every, timeout)
    }

    /// `start` for `connect` = `name:port` resolved in `ns` (a load balancer's DNS name).
    pub fn start_to(
        lab_binary: PathBuf,
        ns: String,
        connect: String,
        every: Duration,
        timeout: Duration,
    ) -> Sampler {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let samples = Arc::new(Mutex::new(Vec::new()));
            let mut running = JoinSet::new();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let (lab_binary, ns, samples) = (lab_binary.clone(), ns.clone(), samples.clone());
                let connect = connect.clone();
                running.spawn(async move {
                    let started = Instant::now();
                    let result =
                        probe_name_from(&lab_binary, &ns, &connect, ProbeMode::Tcp, "/", timeout)
                            .await;
                    let took = started.elapsed();
                    let (answer, error) = match result {
                        Ok(answer) => (Some(answer), None),
                        Err(e) => (None, Some(e.to_string())),
                    };
                    samples.lock().expect("no panic holding it").push(Sample {
                        started,
                        answer,
                        error,
                        took,
                    });
                });
            }
            while running.join_next().await.is_some() {}
            let mut samples = std::mem::take(&mut *samples.lock().expect("no panic holding it"));
            samples.sort_by_key(|s| s.started);
            samples
        });
        Sampler { stop, task }
    }

    /// Stops sending, waits for the requests under way and returns every sample by start time.
    pub async fn stop(self) -> Vec<Sample> {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

/// The outage after `mark`: None when no request started after it was answered as `recovered`
/// says.
pub fn outage_after(
    samples: &[Sample],
    mark: Instant,
    recovered: impl Fn(&str) -> bool,
) -> Option<Outage> {
    let after: Vec<&Sample> = samples.iter().filter(|s| s.started >= mark).collect();
    let first = after
        .iter()
        .find(|s| s.answer.as_deref().is_some_and(&recovered))?;
    Some(Outage {
        interrupted: first.started - mark,
        failed: after.iter().filter(|s| s.answer.is_none()).count(),
        sent: after.len(),
    })
}

/// The longest time the client went without an answer around `mark`: between the starts of
/// two answered requests in a row, from the last one answered before `mark` on (with a request
/// every 25 ms, 25 ms when nothing was lost). None when nothing after `mark` was answered.
pub fn longest_gap(samples: &[Sample], mark: Instant) -> Option<Duration> {
    let answered: Vec<Instant> = samples
        .iter()
        .filter(|s| s.answer.is_some())
        .map(|s| s.started)
        .collect();
    answered
        .windows(2)
        .filter(|pair| pair[1] >= mark)
        .map(|pair| pair[1] - pair[0])
        .max()
}

/// Requests that failed in `samples` (all of them, for a window with no event in it).
pub fn failed(samples: &[Sample]) -> usize {
    samples.iter().filter(|s| s.answer.is_none()).count()
}

/// The first line of each failed request's error, in start order (for reports and messages).
pub fn error_lines(samples: &[Sample]) -> Vec<&str> {
    samples
        .iter()
        .filter_map(|s| s.error.as_deref()?.lines().next())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outage_runs_from_the_mark_to_the_first_request_answered_by_the_new_owner() {
        let t0 = Instant::now();
        let at = |ms: u64, answer: Option<&str>| Sample {
            started: t0 + Duration::from_millis(ms),
            answer: answer.map(str::to_owned),
            error: answer.is_none().then(|| "refused".to_owned()),
            took: Duration::from_millis(1),
        };
        let samples = [
            at(0, Some("old")),
            at(100, Some("old")),
            at(200, None),
            at(300, Some("old")),
            at(400, None),
            at(500, Some("new")),
            at(600, Some("new")),
        ];
        let mark = t0 + Duration::from_millis(50);
        let outage = outage_after(&samples, mark, |a| a == "new").unwrap();
        assert_eq!(outage.interrupted, Duration::from_millis(450));
        assert_eq!((outage.failed, outage.sent), (2, 6));
        assert!(outage_after(&samples, mark, |a| a == "other").is_none());
        assert_eq!(failed(&samples), 2);
        // 100 → 300 (200 failed), then 300 → 500 (400 failed).
        assert_eq!(
            longest_gap(&samples, mark),
            Some(Duration::from_millis(200))
        );
        assert_eq!(longest_gap(&samples, t0 + Duration::from_secs(1)), None);
    }
}
