//! The AWS lab cloud's I/O: follows moto every second with `moto_state.py watch` (boto3 in
//! moto's own virtual environment: the lab and test builds then need no second compile of the
//! AWS SDK, whose features differ between their dependency graphs and the controller's), and
//! turns each change into HAProxy's config, the client's hosts file and `view.json`.
//!
//! ```text
//!   start ─▶ TPROXY plumbing in the cloud ns ─▶ HAProxy (stats only) ─▶ loop {
//!     JSON line ─▶ assign_addresses ─▶ plan ─▶ hosts file, view.json ─▶ reload if the config changed }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use ipnet::Ipv4Net;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

use super::CloudError;
use super::aws::{self, LbView, Snapshot, TargetHealth};
use super::haproxy::{self, Config, Haproxy, Paths};

/// The script that reads moto (shared with the tests, which call its other commands).
pub const MOTO_STATE_PY: &str = include_str!("../../../tests/aws/moto_state.py");
/// How often the script reads moto.
const POLL_SECONDS: &str = "1";

/// Where and what the AWS lab cloud follows.
#[derive(Clone, Debug)]
pub struct AwsCloudConfig {
    pub moto_endpoint: String,
    /// A Python with boto3 (moto's virtual environment has it).
    pub python: PathBuf,
    pub cloud_ns: String,
    pub client_ns: String,
    /// EC2 instance ID → the lab node's IP.
    pub instances: BTreeMap<String, Ipv4Addr>,
    pub load_balancer_range: Ipv4Net,
    /// HAProxy's config and sockets, `view.json`, the watcher's log.
    pub dir: PathBuf,
}

/// A running AWS lab cloud; stop it with `stop`. Dropping it aborts the follower, which kills
/// HAProxy and the watcher too, but leaves the hosts file to the topology's teardown.
pub struct AwsCloud {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    dir: PathBuf,
}

impl AwsCloud {
    pub async fn start(config: AwsCloudConfig) -> Result<Self, CloudError> {
        std::fs::create_dir_all(&config.dir).map_err(|source| CloudError::Io {
            what: format!("create {}", config.dir.display()),
            source,
        })?;
        for argv in haproxy::transparent_setup(&config.cloud_ns, config.load_balancer_range) {
            crate::netns::cmd::run(&argv)?;
        }
        let paths = Paths {
            dir: config.dir.clone(),
        };
        let haproxy = Haproxy::start(&config.cloud_ns, paths, &Config::default()).await?;
        write_view(&config.dir, &[])?;
        let log = config.dir.join("moto-watch.log");
        let log = std::fs::File::create(&log).map_err(|source| CloudError::Io {
            what: format!("create {}", log.display()),
            source,
        })?;
        let mut watcher = tokio::process::Command::new(&config.python)
            .args([
                "-c",
                MOTO_STATE_PY,
                &config.moto_endpoint,
                "watch",
                POLL_SECONDS,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| CloudError::Io {
                what: format!("start {} (moto_state.py watch)", config.python.display()),
                source,
            })?;
        let lines = BufReader::new(watcher.stdout.take().expect("piped")).lines();
        let (stop, stopped) = watch::channel(false);
        let dir = config.dir.clone();
        let task = tokio::spawn(follow(config, haproxy, watcher, lines, stopped));
        Ok(AwsCloud {
            stop,
            task: Some(task),
            dir,
        })
    }

    /// Every target of every NLB as HAProxy's checks see it now.
    pub async fn target_health(&self) -> Result<Vec<TargetHealth>, CloudError> {
        read_target_health(&self.dir).await
    }

    /// Stops HAProxy and the watcher and removes the client's hosts file.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for AwsCloud {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The lab cloud's view from its directory (`view.json` and HAProxy's stats socket), for a
/// lab cloud running in this process or in another (the demo's).
pub async fn read_target_health(dir: &Path) -> Result<Vec<TargetHealth>, CloudError> {
    let stats = haproxy::server_stats(&Paths { dir: dir.into() }.stats_socket()).await?;
    Ok(aws::target_health(&read_view(dir)?, &stats))
}

/// The NLBs the lab cloud serves (name, DNS name, address, listeners).
pub fn read_view(dir: &Path) -> Result<Vec<LbView>, CloudError> {
    let path = dir.join("view.json");
    let text = std::fs::read_to_string(&path).map_err(|source| CloudError::Io {
        what: format!("read {}", path.display()),
        source,
    })?;
    serde_json::from_str(&text)
        .map_err(|error| CloudError::CloudApi(format!("{}: {error}", path.display())))
}

fn write_view(dir: &Path, view: &[LbView]) -> Result<(), CloudError> {
    let path = dir.join("view.json");
    let text = serde_json::to_string_pretty(view).expect("plain data");
    write_atomically(&path, &text)
}

fn write_atomically(path: &Path, text: &str) -> Result<(), CloudError> {
    let io = |source| CloudError::Io {
        what: format!("write {}", path.display()),
        source,
    };
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, text).map_err(io)?;
    std::fs::rename(&temp, path).map_err(io)
}

/// `/etc/netns/<ns>/hosts`: `ip netns exec` binds it over /etc/hosts for every process it
/// starts in the client namespace.
pub fn client_hosts_path(client_ns: &str) -> PathBuf {
    Path::new("/etc/netns").join(client_ns).join("hosts")
}

async fn follow(
    config: AwsCloudConfig,
    mut haproxy: Haproxy,
    _watcher: tokio::process::Child,
    mut lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    mut stopped: watch::Receiver<bool>,
) {
    let hosts_path = client_hosts_path(&config.client_ns);
    let mut addresses = BTreeMap::new();
    let mut current = Config::default();
    let mut hosts = String::new();
    let mut view = Vec::new();
    let mut logged: BTreeSet<String> = BTreeSet::new();
    loop {
        let line = tokio::select! {
            _ = stopped.changed() => break,
            line = lines.next_line() => line,
        };
        let line = match line {
            Ok(Some(line)) => line,
            Ok(None) | Err(_) => {
                tracing::error!(
                    "moto_state.py watch exited; see moto-watch.log in the lab cloud's directory"
                );
                break;
            }
        };
        let snapshot: Snapshot = match serde_json::from_str(&line) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::warn!(%error, line, "moto_state.py printed something else than a snapshot");
                continue;
            }
        };
        if let Some(error) = &snapshot.error {
            tracing::warn!(error, "could not read moto this time");
            continue;
        }
        let names: Vec<&str> = snapshot
            .load_balancers
            .iter()
            .map(|lb| lb.name.as_str())
            .collect();
        addresses = aws::assign_addresses(&addresses, &names, config.load_balancer_range);
        let plan = aws::plan(&snapshot, &config.instances, &addresses);
        let skipped: BTreeSet<String> = plan.skipped.iter().cloned().collect();
        for reason in skipped.difference(&logged) {
            tracing::info!(reason, "the lab cloud does not serve this");
        }
        logged = skipped;
        let new_hosts = aws::hosts_file(&plan.load_balancers);
        if new_hosts != hosts {
            if let Some(parent) = hosts_path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            match write_atomically(&hosts_path, &new_hosts) {
                Ok(()) => hosts = new_hosts,
                Err(error) => tracing::warn!(%error, "could not write the client's hosts file"),
            }
        }
        if plan.config != current {
            match haproxy.reload(&plan.config).await {
                Ok(()) => {
                    tracing::info!(
                        frontends = plan.config.frontends.len(),
                        backends = plan.config.backends.len(),
                        "lab cloud reloaded"
                    );
                    current = plan.config.clone();
                }
                Err(error) => tracing::warn!(%error, "could not reload HAProxy; trying again"),
            }
        }
        if plan.load_balancers != view {
            view = plan.load_balancers.clone();
            if let Err(error) = write_view(&config.dir, &view) {
                tracing::warn!(%error, "could not write view.json");
            }
        }
    }
    let _ = std::fs::remove_file(&hosts_path);
    if let Some(parent) = hosts_path.parent() {
        let _ = std::fs::remove_dir(parent);
    }
    drop(haproxy);
}
