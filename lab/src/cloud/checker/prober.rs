//! The checker's I/O: one task per target that sends `GET path` to `ip:port` every interval with
//! the timeout (200 = success) and feeds the result to the target's `TargetHealth`. It runs
//! wherever its process runs: the lab cloud runs inside the cloud namespace, so probes come from
//! there, as a cloud's checkers come from its own ranges.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::{CheckSpec, Health, TargetHealth};

/// One probed thing: a node's address and the check's port and path. A change of port or path
/// is a new target (it starts unhealthy); a change of interval, timeout or thresholds is not.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub path: String,
}

impl Target {
    pub fn new(ip: Ipv4Addr, spec: &CheckSpec) -> Target {
        Target {
            ip,
            port: spec.port,
            path: spec.path.clone(),
        }
    }
}

struct Entry {
    spec: CheckSpec,
    health: TargetHealth,
    task: tokio::task::AbortHandle,
}

type Entries = Arc<Mutex<BTreeMap<Target, Entry>>>;

/// The running checker: targets in, verdicts out. Dropping it stops every probe.
pub struct Checker {
    entries: Entries,
    changed: watch::Sender<u64>,
}

impl Default for Checker {
    fn default() -> Self {
        Checker::new()
    }
}

impl Checker {
    pub fn new() -> Checker {
        Checker {
            entries: Arc::default(),
            changed: watch::channel(0).0,
        }
    }

    fn lock(entries: &Entries) -> MutexGuard<'_, BTreeMap<Target, Entry>> {
        entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bumped whenever a target's verdict changes (wake the route programmer at once).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Probes exactly these targets from now on: new ones start (unhealthy), gone ones stop,
    /// kept ones take the new interval, timeout and thresholds. A target listed twice keeps
    /// the last spec.
    pub fn set_targets(&self, targets: &[(Ipv4Addr, CheckSpec)]) {
        let wanted: BTreeMap<Target, CheckSpec> = targets
            .iter()
            .map(|(ip, spec)| (Target::new(*ip, spec), spec.clone()))
            .collect();
        let mut entries = Self::lock(&self.entries);
        entries.retain(|target, entry| {
            let keep = wanted.contains_key(target);
            if !keep {
                entry.task.abort();
            }
            keep
        });
        for (target, spec) in wanted {
            if let Some(entry) = entries.get_mut(&target) {
                entry.spec = spec;
                continue;
            }
            let task = tokio::spawn(probe_loop(
                target.clone(),
                self.entries.clone(),
                self.changed.clone(),
            ))
            .abort_handle();
            entries.insert(
                target,
                Entry {
                    spec,
                    health: TargetHealth::new(),
                    task,
                },
            );
        }
    }

    /// The verdict on a target; `None` when it is not being checked.
    pub fn health(&self, target: &Target) -> Option<Health> {
        Self::lock(&self.entries)
            .get(target)
            .map(|entry| entry.health.health())
    }

    /// Every target's verdict and how many probes it took so far.
    pub fn snapshot(&self) -> BTreeMap<Target, (Health, u64)> {
        Self::lock(&self.entries)
            .iter()
            .map(|(target, entry)| {
                (
                    target.clone(),
                    (entry.health.health(), entry.health.probes()),
                )
            })
            .collect()
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        for entry in Self::lock(&self.entries).values() {
            entry.task.abort();
        }
    }
}

async fn probe_loop(target: Target, entries: Entries, changed: watch::Sender<u64>) {
    let addr = SocketAddr::from((target.ip, target.port));
    loop {
        let Some(spec) = Checker::lock(&entries).get(&target).map(|e| e.spec.clone()) else {
            return;
        };
        let started = tokio::time::Instant::now();
        let success = http_probe(addr, &spec.path, spec.timeout).await;
        let transition = {
            let mut entries = Checker::lock(&entries);
            let Some(entry) = entries.get_mut(&target) else {
                return;
            };
            entry.health.record(success, &entry.spec)
        };
        if let Some(health) = transition {
            tracing::info!(%addr, path = %spec.path, ?health, "lab cloud: target health changed");
            changed.send_modify(|generation| *generation += 1);
        }
        tokio::time::sleep_until(started + spec.interval.max(Duration::from_millis(50))).await;
    }
}

/// One health-check probe: `GET path` to `addr`, success when the status is 200 within
/// `timeout` (connect, request and status line together).
pub async fn http_probe(addr: SocketAddr, path: &str, timeout: Duration) -> bool {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: GoogleHC/1.0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut head = Vec::new();
        let mut buf = [0u8; 512];
        // The status line is all a verdict needs.
        while !head.contains(&b'\n') && head.len() < 4096 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(status_of(&head))
    };
    matches!(
        tokio::time::timeout(timeout, exchange).await,
        Ok(Ok(Some(200)))
    )
}

/// The status code of an HTTP/1.x status line.
fn status_of(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    words.next().filter(|v| v.starts_with("HTTP/1."))?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn the_status_comes_from_the_status_line() {
        assert_eq!(status_of(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            status_of(b"HTTP/1.0 503 Service Unavailable\r\nx: y"),
            Some(503)
        );
        assert_eq!(status_of(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_of(b""), None);
    }

    /// Serves `status` to every connection; with `None`, accepts and never answers.
    async fn server(status: Option<u16>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = stream.read(&mut buf).await;
                    match status {
                        Some(code) => {
                            let reply = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
                            let _ = stream.write_all(reply.as_bytes()).await;
                        }
                        None => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn only_200_within_the_timeout_is_a_success() {
        let timeout = Duration::from_millis(300);
        assert!(http_probe(server(Some(200)).await, "/healthz", timeout).await);
        assert!(!http_probe(server(Some(503)).await, "/healthz", timeout).await);
        assert!(!http_probe(server(None).await, "/healthz", timeout).await);
        // Nothing listens on a port just released.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        assert!(!http_probe(addr, "/healthz", timeout).await);
    }

    #[tokio::test]
    async fn the_checker_turns_a_target_healthy_after_its_threshold_and_forgets_removed_ones() {
        let addr = server(Some(200)).await;
        let spec = CheckSpec {
            port: addr.port(),
            path: "/healthz".into(),
            interval: Duration::from_millis(50),
            timeout: Duration::from_millis(200),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
        };
        let checker = Checker::new();
        let mut changed = checker.subscribe();
        let ip = Ipv4Addr::LOCALHOST;
        checker.set_targets(&[(ip, spec.clone())]);
        let target = Target::new(ip, &spec);
        assert_eq!(checker.health(&target), Some(Health::Unhealthy));
        tokio::time::timeout(Duration::from_secs(10), changed.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(checker.health(&target), Some(Health::Healthy));
        assert!(checker.snapshot()[&target].1 >= 2);
        checker.set_targets(&[]);
        assert_eq!(checker.health(&target), None);
    }
}
