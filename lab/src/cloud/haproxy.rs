//! HAProxy (Debian's) as the lab cloud's load balancer: TCP mode, one frontend per listener,
//! real health checks with the target group's `inter`/`rise`/`fall`/`timeout check`, and the
//! client's address kept with `source 0.0.0.0 usesrc clientip` (TPROXY; the routing it needs is
//! in `transparent_setup`). Rendering the config and reading `show stat` are pure; `Haproxy`
//! runs the process (master-worker, reloaded with SIGUSR2) inside the cloud namespace.
//!
//! ```text
//!   render(Config) ─▶ haproxy.cfg ─▶ start / reload (servers' states carried over in a
//!                                     server-state file; new servers start DOWN, as a new
//!                                     NLB target starts `initial` and gets no traffic)
//!   stats socket ─▶ `show stat` ─▶ parse_stats ─▶ ServerStat (UP / DOWN per target)
//! ```

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::CloudError;
use crate::netns::NsChild;
use crate::netns::layout::ip;
use crate::netns::process::command_in;

/// How a target group checks its targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// `GET path`; 2xx and 3xx are healthy (AWS's default matcher for NLBs is 200-399).
    Http { path: String },
    /// A TCP connect.
    Tcp,
}

/// A target group's health check, in seconds and counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub kind: CheckKind,
    /// None: the traffic port (`traffic-port`).
    pub port: Option<u16>,
    pub interval_s: u32,
    pub timeout_s: u32,
    pub healthy: u32,
    pub unhealthy: u32,
}

/// One target: named by its instance ID, at `nodeIP:nodePort`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub name: String,
    pub addr: SocketAddrV4,
}

/// One target group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub name: String,
    pub check: Check,
    pub servers: Vec<Server>,
}

/// One listener: the load balancer's address and port, forwarding to a backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frontend {
    pub name: String,
    pub bind: SocketAddrV4,
    pub backend: String,
}

/// The whole load balancer configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub frontends: Vec<Frontend>,
    pub backends: Vec<Backend>,
}

impl Config {
    /// `backend/server` of every server, for telling new servers from known ones on reload.
    pub fn server_keys(&self) -> BTreeSet<(String, String)> {
        self.backends
            .iter()
            .flat_map(|b| b.servers.iter().map(|s| (b.name.clone(), s.name.clone())))
            .collect()
    }
}

/// Where the process keeps its files (one directory per lab cloud).
#[derive(Clone, Debug)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn config(&self) -> PathBuf {
        self.dir.join("haproxy.cfg")
    }
    pub fn stats_socket(&self) -> PathBuf {
        self.dir.join("stats.sock")
    }
    pub fn server_state(&self) -> PathBuf {
        self.dir.join("server-state")
    }
}

/// The port HAProxy's own statistics page listens on, on the cloud's loopback. It also keeps
/// one listener in the config when no load balancer exists (HAProxy refuses to run without).
pub const STATS_PAGE: &str = "127.0.0.1:8404";

/// The fwmark and table of the TPROXY routing.
const TPROXY_MARK: u32 = 1;
const TPROXY_TABLE: u32 = 100;

/// The config text for `config`.
pub fn render(config: &Config, paths: &Paths) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "# Written by portico-lab's lab cloud; rewritten whenever the cloud's API state changes.
global
    stats socket {stats} mode 600 level admin
    server-state-file {state}

defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    load-server-state-from-file global

listen lab-cloud-stats
    mode http
    bind {STATS_PAGE}
    stats enable
    stats uri /
",
        stats = paths.stats_socket().display(),
        state = paths.server_state().display(),
    );
    for frontend in &config.frontends {
        let _ = write!(
            out,
            "
frontend {}
    bind {}
    default_backend {}
",
            frontend.name, frontend.bind, frontend.backend
        );
    }
    for backend in &config.backends {
        out.push_str(&render_backend(backend));
    }
    out
}

fn render_backend(backend: &Backend) -> String {
    let check = &backend.check;
    let mut out = format!(
        "
backend {}
    balance roundrobin
    # The node sees the client's address, as behind an NLB with client IP preservation.
    source 0.0.0.0 usesrc clientip
    timeout check {}s
",
        backend.name, check.timeout_s
    );
    if let CheckKind::Http { path } = &check.kind {
        let _ = write!(
            out,
            "    option httpchk\n    http-check send meth GET uri {path}\n"
        );
    }
    let port = check
        .port
        .map(|port| format!(" port {port}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "    default-server check{port} inter {}s rise {} fall {}",
        check.interval_s, check.healthy, check.unhealthy
    );
    for server in &backend.servers {
        let _ = writeln!(out, "    server {} {}", server.name, server.addr);
    }
    out
}

/// The TPROXY plumbing of the cloud namespace, as argvs: answers from the nodes to a client
/// address belong to HAProxy's transparent sockets, so they are marked and delivered locally
/// instead of being forwarded to the client; the load-balancer range is local, so HAProxy can
/// bind any address of it.
pub fn transparent_setup(ns: &str, load_balancer_range: Ipv4Net) -> Vec<Vec<String>> {
    let nft = |args: &str| {
        let mut argv: Vec<String> = ["ip", "netns", "exec", ns, "nft"]
            .map(str::to_owned)
            .to_vec();
        argv.extend(args.split_whitespace().map(str::to_owned));
        argv
    };
    vec![
        ip(
            Some(ns),
            &format!("rule add fwmark {TPROXY_MARK} lookup {TPROXY_TABLE}"),
        ),
        ip(
            Some(ns),
            &format!("route replace local 0.0.0.0/0 dev lo table {TPROXY_TABLE}"),
        ),
        ip(
            Some(ns),
            &format!("route replace local {} dev lo", load_balancer_range.trunc()),
        ),
        nft("add table ip portico_lab_cloud"),
        nft(
            "add chain ip portico_lab_cloud prerouting { type filter hook prerouting priority mangle ; }",
        ),
        nft(&format!(
            "add rule ip portico_lab_cloud prerouting meta l4proto tcp socket transparent 1 meta mark set {TPROXY_MARK}"
        )),
    ]
}

/// One server's row of `show stat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerStat {
    pub backend: String,
    pub server: String,
    /// `UP`, `DOWN`, `UP 1/2` (going down), `DOWN 1/2` (going up), `MAINT`, `no check`.
    pub status: String,
    /// The last check's result (`L7OK`, `L7STS`, `L4TOUT`, `L4CON`, ...).
    pub check_status: String,
}

impl ServerStat {
    /// Whether HAProxy sends it traffic (UP, including UP but going down).
    pub fn in_service(&self) -> bool {
        self.status.starts_with("UP")
    }
}

/// The server rows of `show stat` CSV (the header line names the columns).
pub fn parse_stats(csv: &str) -> Vec<ServerStat> {
    let mut lines = csv.lines();
    let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
        return Vec::new();
    };
    let columns: Vec<&str> = header.split(',').collect();
    let column = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(px), Some(sv), Some(status), Some(check)) = (
        column("pxname"),
        column("svname"),
        column("status"),
        column("check_status"),
    ) else {
        return Vec::new();
    };
    lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|fields| fields.len() > status.max(check))
        .filter(|fields| !matches!(fields[sv], "FRONTEND" | "BACKEND"))
        .filter(|fields| fields[px] != "lab-cloud-stats")
        .map(|fields| ServerStat {
            backend: fields[px].to_owned(),
            server: fields[sv].to_owned(),
            status: fields[status].to_owned(),
            check_status: fields[check].to_owned(),
        })
        .collect()
}

/// Sends one command to a runtime API socket and returns the whole answer.
pub async fn runtime_command(socket: &Path, command: &str) -> Result<String, CloudError> {
    let io = |source| CloudError::Io {
        what: format!("HAProxy's runtime API at {}", socket.display()),
        source,
    };
    let exchange = async {
        let mut stream = tokio::net::UnixStream::connect(socket).await.map_err(io)?;
        stream
            .write_all(format!("{command}\n").as_bytes())
            .await
            .map_err(io)?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.map_err(io)?;
        Ok(answer)
    };
    tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .map_err(|_| CloudError::Haproxy(format!("no answer to {command:?} within 3 s")))?
}

/// The servers' health as HAProxy sees it.
pub async fn server_stats(socket: &Path) -> Result<Vec<ServerStat>, CloudError> {
    Ok(parse_stats(&runtime_command(socket, "show stat").await?))
}

/// The `haproxy` executable: on PATH, or in the sbin directories Debian puts it in (a user's
/// PATH may lack them).
pub fn find_haproxy() -> Result<PathBuf, CloudError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("haproxy"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            CloudError::Haproxy(
                "haproxy is not installed: the lab cloud runs it (Debian package haproxy; \
                 `scripts/install lab` installs it)"
                    .into(),
            )
        })
}

/// HAProxy running in the cloud namespace (its master process; workers come and go on reload).
pub struct Haproxy {
    master: NsChild,
    paths: Paths,
    servers: BTreeSet<(String, String)>,
}

impl Haproxy {
    /// Writes the config and starts HAProxy in `ns`; every server starts DOWN.
    pub async fn start(ns: &str, paths: Paths, config: &Config) -> Result<Self, CloudError> {
        std::fs::write(paths.config(), render(config, &paths)).map_err(|source| {
            CloudError::Io {
                what: format!("write {}", paths.config().display()),
                source,
            }
        })?;
        let _ = std::fs::remove_file(paths.server_state());
        let log_path = paths.dir.join("haproxy.log");
        let log = std::fs::File::create(&log_path).map_err(|source| CloudError::Io {
            what: format!("create {}", log_path.display()),
            source,
        })?;
        let mut command = command_in(ns, find_haproxy()?);
        command
            .args(["-W", "-db", "-f"])
            .arg(paths.config())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let master = NsChild::spawn(ns, command)?;
        let mut haproxy = Haproxy {
            master,
            paths,
            servers: BTreeSet::new(),
        };
        haproxy.wait_for_worker(None).await?;
        haproxy.mark_new_servers_down(config).await;
        Ok(haproxy)
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Rewrites the config and reloads; known servers keep their health, new ones start DOWN.
    pub async fn reload(&mut self, config: &Config) -> Result<(), CloudError> {
        let state = runtime_command(&self.paths.stats_socket(), "show servers state").await?;
        let write = |path: PathBuf, text: String| {
            std::fs::write(&path, text).map_err(|source| CloudError::Io {
                what: format!("write {}", path.display()),
                source,
            })
        };
        write(self.paths.server_state(), state)?;
        write(self.paths.config(), render(config, &self.paths))?;
        let old = self.worker_pid().await?;
        crate::netns::cmd::run_args(&["kill", "-USR2", &self.master.id().to_string()])?;
        self.wait_for_worker(Some(old)).await?;
        self.mark_new_servers_down(config).await;
        Ok(())
    }

    async fn worker_pid(&self) -> Result<String, CloudError> {
        let info = runtime_command(&self.paths.stats_socket(), "show info").await?;
        info.lines()
            .find_map(|line| line.strip_prefix("Pid: "))
            .map(str::to_owned)
            .ok_or_else(|| CloudError::Haproxy(format!("no Pid in `show info`: {info:?}")))
    }

    /// Waits until a worker other than `old` answers on the stats socket.
    async fn wait_for_worker(&mut self, old: Option<String>) -> Result<(), CloudError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(pid) = self.worker_pid().await
                && Some(&pid) != old.as_ref()
            {
                return Ok(());
            }
            if let Ok(Some(status)) = self.master.child_mut().try_wait() {
                return Err(CloudError::Haproxy(format!(
                    "haproxy exited ({status}); check {}",
                    self.paths.config().display()
                )));
            }
            if Instant::now() > deadline {
                return Err(CloudError::Haproxy(
                    "no worker answered on the stats socket within 10 s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn mark_new_servers_down(&mut self, config: &Config) {
        let now = config.server_keys();
        for (backend, server) in now.difference(&self.servers) {
            let command = format!("set server {backend}/{server} health down");
            if let Err(error) = runtime_command(&self.paths.stats_socket(), &command).await {
                tracing::warn!(%error, backend, server, "could not start a new target DOWN");
            }
        }
        self.servers = now;
    }
}

#[cfg(test)]
mod tests;
