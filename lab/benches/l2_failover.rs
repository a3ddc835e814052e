//! L2 failover benchmark (a bench, not a timed test): how long a client's TCP traffic to a VIP
//! stops when the node announcing it fails, Portico's announcer side by side with keepalived
//! (VRRP, the Debian package, default 1 s advertisements) failing over one VIP between two node
//! namespaces of the same lab, in the same run. Needs root and keepalived
//! (`scripts/install bench`); release binaries:
//!
//!   cargo build --release -p portico-agent -p portico-controller -p portico-lab
//!   cargo bench -p portico-lab --bench l2_failover            # 20 runs of each
//!   PORTICO_BENCH_RUNS=5 cargo bench -p portico-lab --bench l2_failover
//!
//! Each run: a request every 25 ms from the client; the owner fails (agent or keepalived
//! SIGKILLed; or the owner's link down); "until answered via new owner" is from the failure to the first request
//! answered through the new owner. Then as many graceful agent restarts (SIGTERM, started again at
//! once), whose failed requests must be 0; and as many again right after the Service's
//! EndpointSlice was deleted and recreated (a node's proxier may not have caught up when it
//! takes the VIP over: the announcer's takeover gate waits for it), also 0.
//!
//! ```text
//!   portico-lab up (release) ─▶ per run: Portico SIGKILL │ keepalived SIGKILL │ Portico link
//!   down │ keepalived link down ─▶ median / worst table ; graceful restarts, then graceful
//!   restarts right after the EndpointSlice is recreated ─▶ failed requests
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portico_lab::demo::failover::{self, Failure, SAMPLE_EVERY, SAMPLE_TIMEOUT};
use portico_lab::demo::l2::{self, LAN_INTERFACE};
use portico_lab::demo::report::render_table;
use portico_lab::demo::state::LabState;
use portico_lab::netns::cmd;
use portico_lab::netns::echo::echo_field;
use portico_lab::netns::process::{NsChild, command_in};
use portico_lab::netns::sampler::{Sampler, failed, outage_after};

const NODE_SUBNET: &str = "198.18.50.0/24";
const API_PORT: &str = "16450";
/// keepalived's VIP: in the lab's pool range (on-link for the client), above the Services'.
const KEEPALIVED_VIP: Ipv4Addr = Ipv4Addr::new(198, 19, 50, 14);
const KEEPALIVED_PORT: u16 = 8081;
const GIVE_UP: Duration = Duration::from_secs(15);

fn lab_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_portico-lab"))
}

fn lab(args: &[&str], dir: &Path) -> String {
    let output = Command::new(lab_binary())
        .args(args)
        .arg("--state-dir")
        .arg(dir)
        .output()
        .expect("portico-lab runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "portico-lab {args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// keepalived in one node namespace: MASTER by priority on node-0, BACKUP on node-1.
struct Keepalived {
    dir: PathBuf,
    ns: String,
    priority: u8,
    child: Option<Child>,
}

impl Keepalived {
    fn start(dir: &Path, ns: &str, priority: u8) -> Keepalived {
        let mut k = Keepalived {
            dir: dir.to_path_buf(),
            ns: ns.to_owned(),
            priority,
            child: None,
        };
        k.spawn();
        k
    }

    fn spawn(&mut self) {
        let conf = self.dir.join(format!("keepalived-{}.conf", self.ns));
        std::fs::write(
            &conf,
            format!(
                "global_defs {{\n  router_id {ns}\n}}\n\
                 vrrp_instance bench {{\n  state BACKUP\n  interface {LAN_INTERFACE}\n  \
                 virtual_router_id 50\n  priority {priority}\n  advert_int 1\n  \
                 virtual_ipaddress {{\n    {KEEPALIVED_VIP}/32 dev {LAN_INTERFACE}\n  }}\n}}\n",
                ns = self.ns,
                priority = self.priority
            ),
        )
        .unwrap();
        let log =
            std::fs::File::create(self.dir.join(format!("keepalived-{}.log", self.ns))).unwrap();
        let pid = |name: &str| self.dir.join(format!("{name}-{}.pid", self.ns));
        let child = command_in(&self.ns, "keepalived")
            .args(["--dont-fork", "--log-console", "--vrrp", "--use-file"])
            .arg(&conf)
            .arg("--pid")
            .arg(pid("keepalived"))
            .arg("--vrrp_pid")
            .arg(pid("vrrp"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("keepalived (Debian package keepalived; scripts/install bench) starts");
        self.child = Some(child);
    }

    /// SIGKILL to keepalived and its VRRP child: the VIP stays on the interface, as after a
    /// crash, and the node goes on answering until the backup's gratuitous ARP.
    fn kill(&mut self) {
        // The VRRP child first: killed after its parent, it would be told (parent-death signal)
        // and hand over gracefully (priority 0 advert), which is not a crash.
        let mut pids = pids_named(&self.ns, "keepalived");
        pids.sort_by_key(|pid| std::cmp::Reverse(pid.parse::<u32>().unwrap_or(0)));
        if !pids.is_empty() {
            let _ = Command::new("kill").arg("-KILL").args(&pids).status();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Started again, without the address the killed one left behind.
    fn restart(&mut self) {
        let _ = cmd::run_args(&[
            "ip",
            "-n",
            &self.ns,
            "addr",
            "del",
            &format!("{KEEPALIVED_VIP}/32"),
            "dev",
            LAN_INTERFACE,
        ]);
        self.spawn();
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pids_named(ns: &str, name: &str) -> Vec<String> {
    let pids = cmd::run_args(&["ip", "netns", "pids", ns]).unwrap_or_default();
    pids.split_whitespace()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .map(str::to_owned)
        .collect()
}

fn link_down(ns: &str) -> Vec<String> {
    let routes = cmd::run_args(&["ip", "-n", ns, "-4", "route", "show"]).unwrap_or_default();
    cmd::run_args(&["ip", "-n", ns, "link", "set", LAN_INTERFACE, "down"]).unwrap();
    routes.lines().map(str::to_owned).collect()
}

fn link_up(ns: &str, routes: &[String]) {
    cmd::run_args(&["ip", "-n", ns, "link", "set", LAN_INTERFACE, "up"]).unwrap();
    for route in routes {
        let mut args = vec!["ip", "-n", ns, "-4", "route", "replace"];
        args.extend(route.split_whitespace());
        let _ = cmd::run_args(&args);
    }
}

/// The namespace of the echo server that answered a request to keepalived's VIP.
async fn keepalived_answer(state: &LabState) -> Option<String> {
    let body = portico_lab::netns::probe::probe_from(
        &state.lab_binary,
        &state.client_ns,
        SocketAddr::from((KEEPALIVED_VIP, KEEPALIVED_PORT)),
        portico_lab::netns::probe::ProbeMode::Tcp,
        "/",
        SAMPLE_TIMEOUT,
    )
    .await
    .ok()?;
    echo_field(&body, "namespace").map(str::to_owned)
}

async fn until(deadline: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// One keepalived failover: (interrupted, failed requests), None when it never moved.
async fn keepalived_run(
    state: &LabState,
    master: &mut Keepalived,
    backup_ns: &str,
    failure: Failure,
) -> Option<(Duration, usize)> {
    let master_ns = master.ns.clone();
    assert!(
        until(GIVE_UP, async || keepalived_answer(state).await.as_deref()
            == Some(&master_ns))
        .await,
        "keepalived's VIP is not answered by {master_ns}"
    );
    let sampler = Sampler::start(
        state.lab_binary.clone(),
        state.client_ns.clone(),
        SocketAddr::from((KEEPALIVED_VIP, KEEPALIVED_PORT)),
        SAMPLE_EVERY,
        SAMPLE_TIMEOUT,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mark = Instant::now();
    let routes = match failure {
        Failure::LinkDown => link_down(&master_ns),
        _ => {
            master.kill();
            Vec::new()
        }
    };
    let backup_mac = l2::mac_of(backup_ns, LAN_INTERFACE).unwrap();
    until(GIVE_UP, async || {
        l2::neighbour_mac(&state.client_ns, KEEPALIVED_VIP).as_deref() == Some(&backup_mac)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let samples = sampler.stop().await;
    match failure {
        Failure::LinkDown => link_up(&master_ns, &routes),
        _ => master.restart(),
    }
    let outage = outage_after(&samples, mark, |body| {
        echo_field(body, "namespace") == Some(backup_ns)
    });
    // The master takes the VIP back (higher priority, preemption).
    let master_mac = l2::mac_of(&master_ns, LAN_INTERFACE).unwrap();
    until(GIVE_UP, async || {
        l2::neighbour_mac(&state.client_ns, KEEPALIVED_VIP).as_deref() == Some(&master_mac)
    })
    .await;
    outage.map(|o| (o.interrupted, failed(&samples)))
}

#[derive(Default)]
struct Series {
    interrupted: Vec<Duration>,
    failed_requests: usize,
    never: usize,
}

impl Series {
    fn add(&mut self, run: Option<(Duration, usize)>) {
        match run {
            Some((interrupted, failed)) => {
                self.interrupted.push(interrupted);
                self.failed_requests += failed;
            }
            None => self.never += 1,
        }
    }

    fn row(&self, what: &str) -> Vec<String> {
        let mut sorted = self.interrupted.clone();
        sorted.sort();
        let ms = |d: Option<&Duration>| d.map_or("-".into(), |d| format!("{} ms", d.as_millis()));
        vec![
            what.to_owned(),
            (sorted.len() + self.never).to_string(),
            ms(sorted.get(sorted.len() / 2)),
            ms(sorted.last()),
            self.never.to_string(),
            self.failed_requests.to_string(),
        ]
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let uid = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if !uid
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    {
        eprintln!("l2_failover: needs root (network namespaces)");
        std::process::exit(1);
    }
    if Command::new("keepalived")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "l2_failover: keepalived is missing: scripts/install bench (Debian package keepalived)"
        );
        std::process::exit(1);
    }
    let runs: usize = std::env::var("PORTICO_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("lab");
    eprintln!(
        "portico-lab up (release binaries next to {})",
        lab_binary().display()
    );
    lab(
        &["up", "--node-subnet", NODE_SUBNET, "--port", API_PORT],
        &dir,
    );
    let mut state = LabState::load(&dir).unwrap().expect("state.json");
    let (slices, vip) = failover::prepare(&state).await.unwrap();

    // keepalived between node-0 (master) and node-1, each with an echo server on its own port.
    let (ns0, ns1) = (state.nodes[0].ns.clone(), state.nodes[1].ns.clone());
    let mut echo = Vec::new();
    for ns in [&ns0, &ns1] {
        let mut command = command_in(ns, lab_binary());
        command
            .args([
                "echo-server",
                "--listen",
                &format!("0.0.0.0:{KEEPALIVED_PORT}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut child = NsChild::spawn(ns, command).unwrap();
        child
            .wait_for_line("echo-server", Duration::from_secs(10))
            .unwrap();
        echo.push(child);
    }
    let mut master = Keepalived::start(temp.path(), &ns0, 150);
    let _backup = Keepalived::start(temp.path(), &ns1, 100);

    let mut series: Vec<(String, Series)> = [
        "Portico, agent SIGKILL",
        "keepalived, SIGKILL",
        "Portico, link down",
        "keepalived, link down",
    ]
    .iter()
    .map(|s| (s.to_string(), Series::default()))
    .collect();
    for run in 0..runs {
        for (index, failure) in [Failure::AgentKilled, Failure::LinkDown]
            .into_iter()
            .enumerate()
        {
            let portico = failover::measure(&dir, &mut state, &slices, vip, failure)
                .await
                .unwrap();
            eprintln!(
                "run {run}: {} {:?}",
                portico.row().join("  "),
                portico.failures
            );
            series[index * 2]
                .1
                .add(portico.outage.map(|o| (o.interrupted, portico.failed)));
            let keepalived = keepalived_run(&state, &mut master, &ns1, failure).await;
            let what = if failure == Failure::LinkDown {
                "link down"
            } else {
                "SIGKILL"
            };
            eprintln!("run {run}: keepalived {what}: {keepalived:?}");
            series[index * 2 + 1].1.add(keepalived);
        }
    }
    let mut restarts = Series::default();
    for run in 0..runs {
        let restart = failover::measure(&dir, &mut state, &slices, vip, Failure::AgentRestarted)
            .await
            .unwrap();
        eprintln!(
            "restart {run}: {} {:?}",
            restart.row().join("  "),
            restart.failures
        );
        restarts.add(Some((
            restart.outage.map_or(GIVE_UP, |o| o.interrupted),
            restart.failed,
        )));
    }
    let mut churned = Series::default();
    for run in 0..runs {
        failover::recreate_endpoint_slice(&state, &slices, vip)
            .await
            .unwrap();
        let restart = failover::measure(&dir, &mut state, &slices, vip, Failure::AgentRestarted)
            .await
            .unwrap();
        eprintln!(
            "restart after the slice was recreated {run}: {} {:?}",
            restart.row().join("  "),
            restart.failures
        );
        churned.add(Some((
            restart.outage.map_or(GIVE_UP, |o| o.interrupted),
            restart.failed,
        )));
    }
    drop(master);
    drop(echo);
    lab(&["down"], &dir);

    println!(
        "\nL2 failover: from the owner's failure to the first request answered through the new \
         owner (a request every {} ms)",
        SAMPLE_EVERY.as_millis()
    );
    let mut rows: Vec<Vec<String>> = series.iter().map(|(what, s)| s.row(what)).collect();
    rows.push(restarts.row("Portico, graceful agent restart (over and back)"));
    rows.push(churned.row("Portico, graceful restart just after the slice is recreated"));
    print!(
        "{}",
        render_table(
            &[
                "failover",
                "runs",
                "median until answered via new owner",
                "worst",
                "never moved",
                "requests that failed"
            ],
            &rows
        )
    );
}
