//! `<state-dir>/state.json`: what `up` started (every PID, the namespace prefix, the addresses),
//! so that `down`, `scenario` and `kubectl` find the lab from another process.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One pod namespace of the lab.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PodState {
    pub ns: String,
    pub ip: Ipv4Addr,
}

/// One node namespace of the lab and its pods.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeState {
    pub name: String,
    pub ns: String,
    pub ip: Ipv4Addr,
    pub pods: Vec<PodState>,
}

/// A background process `up` started: stopped by `down`, newest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub name: String,
    pub pid: u32,
    /// The executable's file name, checked against /proc before a signal is sent, so a
    /// reused PID is never signalled.
    pub program: String,
    pub log: PathBuf,
}

/// Everything `down`, `scenario` and `kubectl` need to know about a running lab.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LabState {
    /// The namespace prefix (`ptl-<pid>-<seq>-`) of the netns holder.
    pub prefix: String,
    pub kubeconfig: PathBuf,
    pub lab_binary: PathBuf,
    pub client_ns: String,
    pub client_ip: Option<Ipv4Addr>,
    pub host_ip: Option<Ipv4Addr>,
    pub nodes: Vec<NodeState>,
    pub processes: Vec<ProcessRecord>,
    /// Set once `up` finished: a lab whose `up` was killed half way is not "already up".
    #[serde(default)]
    pub complete: bool,
    /// The lab cloud, when `up --provider` named a cloud.
    #[serde(default)]
    pub cloud: Option<CloudState>,
}

/// The cloud namespace and the lab cloud running in it (`up --provider aws`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CloudState {
    /// `aws` (the `--provider` value).
    pub provider: String,
    pub ns: String,
    pub load_balancer_range: ipnet::Ipv4Net,
    /// The lab cloud's directory (HAProxy's config and sockets, `view.json`).
    pub dir: PathBuf,
    /// The cloud API stand-in's endpoint (moto's URL).
    pub endpoint: String,
    /// The cloud's ID of each target (EC2 instance ID) → the lab node it is.
    #[serde(default)]
    pub targets: std::collections::BTreeMap<String, String>,
    /// The demo Services' health check: (interval in seconds, unhealthy threshold).
    #[serde(default)]
    pub check: (u64, u64),
}

pub fn state_file(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

impl LabState {
    pub fn load(dir: &Path) -> anyhow::Result<Option<Self>> {
        match std::fs::read_to_string(state_file(dir)) {
            Ok(text) => Ok(Some(serde_json::from_str(&text)?)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Written after every process start, so a failed or killed `up` can still be taken down.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let tmp = dir.join("state.json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)?)?;
        std::fs::rename(tmp, state_file(dir))?;
        Ok(())
    }

    pub fn node(&self, name: &str) -> anyhow::Result<&NodeState> {
        self.nodes
            .iter()
            .find(|node| node.name == name)
            .ok_or_else(|| anyhow::anyhow!("no node {name} in this lab"))
    }

    pub fn client_ip(&self) -> Ipv4Addr {
        self.client_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)
    }
}

impl ProcessRecord {
    /// Whether the recorded process still runs (not gone, not a zombie, same program).
    pub fn alive(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        // The state follows the parenthesised command name: `pid (comm) S ...`.
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']));
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.pid)).unwrap_or_default();
        // An empty cmdline is a process in the middle of exec (`ip netns exec` becoming the
        // program), not another process.
        !zombie && (cmdline.is_empty() || String::from_utf8_lossy(&cmdline).contains(&self.program))
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, &self.pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
    }

    /// SIGTERM, then SIGKILL after `grace`. Returns whether it had to be killed.
    pub fn stop(&self, grace: Duration) -> bool {
        if !self.alive() {
            return false;
        }
        self.signal("-TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.alive() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.alive() {
            self.signal("-KILL");
            std::thread::sleep(Duration::from_millis(100));
            return true;
        }
        false
    }
}
