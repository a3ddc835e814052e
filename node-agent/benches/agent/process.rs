//! The agent under test as a process: started in the node namespace, read through its
//! `/metrics` and `/proc`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portico_tests::cli::http_get;

use crate::NODE;
use crate::node_ns::NodeNs;

pub fn agent_binary() -> PathBuf {
    if let Ok(path) = std::env::var("BENCH_AGENT") {
        return path.into();
    }
    portico_tests::repo_root().join("target/release/portico-agent")
}

pub struct Agent {
    child: Child,
    admin: SocketAddr,
}

impl Agent {
    pub fn start(node: &NodeNs, kubeconfig: &Path, log: &Path) -> Agent {
        let admin = SocketAddr::new(node.node_ip, 9473);
        let extra = std::env::var("BENCH_AGENT_ARGS").unwrap_or_default();
        // BENCH_AGENT_LOG keeps the agent's debug log (both starts) at that path.
        let (level, log) = match std::env::var("BENCH_AGENT_LOG") {
            Ok(path) => ("info,portico_agent=debug", std::path::PathBuf::from(path)),
            Err(_) => ("warn", log.to_path_buf()),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &node.netns])
            .arg(agent_binary())
            .args(["--node-name", NODE, "--kubeconfig"])
            .arg(kubeconfig)
            .args(["--healthz-bind-address", &format!("{}:10256", node.node_ip)])
            .args(["--admin-addr", &admin.to_string()])
            .args(["--cluster-cidr", "10.244.0.0/16", "--log-level", level])
            .args(extra.split_whitespace())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("agent starts");
        Agent { child, admin }
    }

    fn metric_sum(&self, prefix: &str) -> f64 {
        let Ok((_, body)) = http_get(self.admin, "/metrics") else {
            return 0.0;
        };
        body.lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| line.split_whitespace().last()?.parse::<f64>().ok())
            .sum()
    }

    pub fn syncs(&self) -> f64 {
        self.metric_sum("portico_agent_sync_duration_seconds_count")
    }

    pub fn full_syncs(&self) -> f64 {
        self.metric_sum("portico_agent_sync_duration_seconds_count{kind=\"full\"}")
    }

    pub fn proc_status(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    }

    /// CPU of the agent and its children, in seconds: its own utime + stime, cutime + cstime
    /// of the children it reaped, and utime + stime of the children still running (an
    /// iptables-restore in progress at either end of a window is counted too).
    pub fn cpu_seconds(&self) -> f64 {
        let agent = self.child.id();
        let mut ticks = proc_stat(agent).map_or(0, |f| f[11..15].iter().sum::<u64>());
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(fields) = proc_stat(pid)
                && fields[1] == u64::from(agent)
            {
                ticks += fields[11..15].iter().sum::<u64>();
            }
        }
        ticks as f64 / 100.0
    }

    /// Waits for the first sync after `before` syncs; the time it took from `since`.
    pub async fn wait_sync(&self, before: f64, since: Instant) -> Duration {
        loop {
            if self.syncs() > before {
                return since.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fields of /proc/<pid>/stat from the state (field 3 of proc(5)) on: [1] is the parent,
/// [11..15] utime, stime, cutime, cstime in clock ticks of 1/100 s.
fn proc_stat(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    Some(
        after_comm
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}
