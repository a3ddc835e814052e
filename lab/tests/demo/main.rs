//! The one-command demo end to end: the real `portico-lab up` (namespaces, API server,
//! controller, agents, echo pods) prints the source-IP tables; `scenario source-ip` replays the
//! tutorial; `down` leaves no namespace and no process behind. Needs root; under CI a missing
//! root or binary is a failure, not a skip.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use std::time::Duration;

use ipnet::Ipv4Net;
use portico_lab::demo::state::LabState;
use portico_lab::demo::{l2, report};

mod aws;
mod cloud;
mod gcp;
mod install;

/// Its own /24 and pool, so that it runs beside the other namespace tests.
const NODE_SUBNET: &str = "198.18.40.0/24";
const POOL: &str = "198.19.40.0/28";
const CLIENT_IP: &str = "198.18.40.2";

fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("Uid:"))?;
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// False (with a note) when the test cannot run here; a panic under CI.
fn can_run(why_not: Option<String>) -> bool {
    let Some(why) = why_not else { return true };
    assert!(!under_ci(), "{why}; under CI this is a failure, not a skip");
    eprintln!("SKIPPED: {why}");
    false
}

fn lab_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_portico-lab"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn run_lab(args: &[&str], state_dir: &Path) -> (Output, String) {
    let output = Command::new(lab_binary())
        .args(args)
        .arg("--state-dir")
        .arg(state_dir)
        .output()
        .expect("portico-lab runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "portico-lab {args:?} failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output, stdout)
}

/// Takes the lab down even when an assertion failed half way.
struct DownOnDrop(PathBuf);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        if self.0.join("state.json").exists() {
            let _ = Command::new(lab_binary())
                .arg("down")
                .arg("--state-dir")
                .arg(&self.0)
                .status();
        }
    }
}

/// A lab in a temporary state dir on a free API port, taken down when dropped.
struct Lab {
    // Dropped first: `down` needs the state dir inside `_temp`.
    _down: DownOnDrop,
    state_dir: PathBuf,
    port: String,
    _temp: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let temp = tempfile::tempdir().unwrap();
        let state_dir = temp.path().join("lab");
        Lab {
            _down: DownOnDrop(state_dir.clone()),
            state_dir,
            port: free_port().to_string(),
            _temp: temp,
        }
    }

    /// `portico-lab up` on `node_subnet` and the lab's port, with `extra` flags; prints and
    /// returns its stdout.
    fn up(&self, node_subnet: &str, extra: &[&str]) -> String {
        let mut args = vec![
            "up",
            "--node-subnet",
            node_subnet,
            "--port",
            self.port.as_str(),
        ];
        args.extend(extra);
        let (_, stdout) = run_lab(&args, &self.state_dir);
        println!("{stdout}");
        stdout
    }
}

/// The rows of the traffic tables: (target kind, policy, via, client_address or "no").
fn traffic_rows(section: &str) -> Vec<(String, String, String, String)> {
    section
        .lines()
        .filter(|line| line.starts_with("vip:") || line.starts_with("nodeport:"))
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let kind = cells[0].split(':').next().unwrap().to_owned();
            (
                kind,
                cells[1].to_owned(),
                cells[2].to_owned(),
                cells[3].to_owned(),
            )
        })
        .collect()
}

/// The rows of the health table: (node, status, localEndpoints).
fn health_rows(section: &str) -> Vec<(String, String, String)> {
    section
        .lines()
        .filter(|line| line.starts_with("node-"))
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            (
                cells[0].to_owned(),
                cells[2].to_owned(),
                cells[3].to_owned(),
            )
        })
        .collect()
}

/// The text between the `==>` header containing `title` and the next header.
fn section<'a>(stdout: &'a str, title: &str) -> &'a str {
    let start = stdout
        .find(&format!("==> {title}"))
        .unwrap_or_else(|| panic!("no section {title:?} in:\n{stdout}"));
    let rest = &stdout[start + 4..];
    rest.find("\n==> ").map_or(rest, |end| &rest[..end])
}

/// `<vip> (<service>) owned by <node>` lines, in order.
fn vip_owners(section: &str) -> Vec<(Ipv4Addr, String)> {
    section
        .lines()
        .filter(|line| line.contains(" owned by "))
        .map(|line| {
            let vip = line.split_whitespace().next().unwrap().parse().unwrap();
            (vip, line.rsplit(' ').next().unwrap().to_owned())
        })
        .collect()
}

/// Three ARP requests from the client: every reply comes from `owner`'s MAC, one per request.
fn assert_one_answer_from(state: &LabState, vip: Ipv4Addr, owner: &str) {
    let node = state
        .nodes
        .iter()
        .find(|n| n.name == owner)
        .expect("a node");
    let owner_mac = l2::mac_of(&node.ns, l2::LAN_INTERFACE).unwrap();
    let macs = l2::arping_reply_macs(&state.client_ns, vip, 3).unwrap();
    assert!(!macs.is_empty(), "nobody answered ARP for {vip}");
    assert!(
        macs.len() <= 3,
        "{vip}: more replies than requests: {macs:?}"
    );
    assert!(
        macs.iter().all(|mac| *mac == owner_mac),
        "{vip}: replies from {macs:?}, only {owner} ({owner_mac}) should answer"
    );
}

fn is_node_ip(address: &str) -> bool {
    let subnet: Ipv4Net = NODE_SUBNET.parse().unwrap();
    address
        .parse::<Ipv4Addr>()
        .is_ok_and(|ip| subnet.contains(&ip) && ip.octets()[3] >= 10)
}

#[test]
fn up_shows_the_source_ip_table_and_down_leaves_nothing_behind() {
    if !can_run((!is_root()).then(|| "this test needs root (network namespaces)".to_owned())) {
        return;
    }
    let bin_dir = lab_binary().parent().unwrap().to_path_buf();
    let missing: Vec<_> = ["portico-controller", "portico-agent"]
        .iter()
        .filter(|name| !bin_dir.join(name).is_file())
        .collect();
    if !can_run((!missing.is_empty()).then(|| {
        format!(
            "{missing:?} not built in {} (cargo build -p portico-controller -p portico-agent)",
            bin_dir.display()
        )
    })) {
        return;
    }
    let lab = Lab::new();
    let state_dir = &lab.state_dir;
    let up = lab.up(NODE_SUBNET, &[]);

    // kubectl get svc: both Services have an EXTERNAL-IP from the pool.
    let pool: Ipv4Net = POOL.parse().unwrap();
    let svc = section(&up, "kubectl get svc");
    for name in ["echo-cluster", "echo-local"] {
        let line = svc
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{svc}"));
        let external: Ipv4Addr = line.split_whitespace().nth(3).unwrap().parse().unwrap();
        assert!(pool.contains(&external), "{line}");
    }

    // What the client sees: Local keeps its address, Cluster shows a node's.
    let rows = traffic_rows(section(&up, "what a client outside the nodes"));
    assert_eq!(rows.len(), 8, "{rows:?}");
    let find = |kind: &str, policy: &str, via: &str| {
        rows.iter()
            .find(|r| r.0 == kind && r.1 == policy && r.2 == via)
            .map(|r| r.3.clone())
            .unwrap_or_else(|| panic!("no row {kind} {policy} {via} in {rows:?}"))
    };
    // The Local VIP can only be owned by node-0, the node with its endpoint; the Cluster VIP
    // by whichever node the hash picks.
    assert_eq!(find("vip", "Local", "node-0"), CLIENT_IP);
    let owners = vip_owners(section(&up, "the VIPs, announced by ARP"));
    assert_eq!(owners.len(), 2, "{owners:?}");
    let (cluster_vip, cluster_owner) = owners[0].clone();
    assert_eq!(owners[1].1, "node-0", "{owners:?}");
    assert!(
        is_node_ip(&find("vip", "Cluster", &cluster_owner)),
        "{rows:?}"
    );
    // arping from the client: each request gets exactly one reply, from the owner's MAC.
    let state = LabState::load(state_dir).unwrap().expect("state.json");
    for (vip, owner) in &owners {
        assert_one_answer_from(&state, *vip, owner);
    }
    assert_eq!(find("nodeport", "Local", "node-0"), CLIENT_IP);
    assert_eq!(find("nodeport", "Local", "node-1"), "no");
    assert!(
        is_node_ip(&find("nodeport", "Cluster", "node-2")),
        "{rows:?}"
    );

    // Health checks: 200 with one local endpoint on the endpoint's node, 503 elsewhere.
    let health = health_rows(section(&up, "each node's health check"));
    let health: Vec<_> = health
        .iter()
        .map(|(n, s, l)| (n.as_str(), s.as_str(), l.as_str()))
        .collect();
    assert_eq!(
        health,
        [
            ("node-0", "200", "1"),
            ("node-1", "503", "0"),
            ("node-2", "503", "0")
        ]
    );
    let kubeconfig = state_dir.join("kubeconfig");
    assert!(
        up.contains(&format!("export KUBECONFIG={}", kubeconfig.display())),
        "{up}"
    );

    // A second `up` changes nothing.
    let again = lab.up(NODE_SUBNET, &[]);
    assert!(again.contains("already up"), "{again}");

    // The tutorial: Cluster answers through every node, Local only through the endpoint's node.
    let (_, scenario) = run_lab(&["scenario", "source-ip"], state_dir);
    println!("{scenario}");
    let before = traffic_rows(section(&scenario, "before"));
    assert_eq!(before.len(), 6, "{before:?}");
    assert!(before.iter().all(|r| r.3 != "no"), "{before:?}");
    let after = traffic_rows(section(&scenario, "after"));
    assert_eq!(after.len(), 6, "{after:?}");
    for (kind, _, via, seen) in &after {
        let expected = if via == "node-1" { CLIENT_IP } else { "no" };
        assert_eq!(seen, expected, "{kind} via {via}: {after:?}");
    }
    let health = health_rows(section(&scenario, "each node's /healthz"));
    assert_eq!(
        health.iter().map(|h| h.1.as_str()).collect::<Vec<_>>(),
        ["503", "200", "503"]
    );

    // `scenario failover`: the owner's agent killed, then its link down; each time another
    // node took the VIP over and the interruption is printed (its length is the bench's).
    let (_, failover) = run_lab(&["scenario", "failover"], state_dir);
    println!("{failover}");
    let table = section(&failover, "how long the client's traffic");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .filter(|line| line.starts_with("agent SIGKILL") || line.starts_with("link down"))
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    // The columns say what they measure.
    for label in [
        "until answered via new owner",
        "longest gap between answers",
        "requests that failed",
    ] {
        assert!(table.contains(label), "{label}: {table}");
    }
    for row in &rows {
        let (old, new, interrupted, gap) = (row[1], row[2], row[3], row[4]);
        assert!(
            old.starts_with("node-") && new.starts_with("node-"),
            "{row:?}"
        );
        assert_ne!(old, new, "another node took the VIP over: {row:?}");
        for duration in [interrupted, gap] {
            assert!(
                duration
                    .strip_suffix(" ms")
                    .is_some_and(|ms| ms.parse::<u64>().is_ok()),
                "{row:?}"
            );
        }
    }
    // The scenario restarted the killed agent: its new PID is in the state file.
    let state = LabState::load(state_dir).unwrap().expect("state.json");

    // Failover: the Cluster VIP's owner's agent dies (SIGKILL, no goodbye); another node
    // answers ARP for it and the client's TCP flows through the new owner.
    let agent = state
        .processes
        .iter()
        .find(|p| p.name == format!("agent-{cluster_owner}"))
        .expect("the owner's agent");
    Command::new("kill")
        .args(["-KILL", &agent.pid.to_string()])
        .status()
        .unwrap();
    // The killed agent's rules stay in its node, so TCP alone proves nothing: wait until the
    // client's neighbour entry for the VIP moves (the new owner's gratuitous ARP).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let new_owner = runtime.block_on(report::retry(Duration::from_secs(30), || {
        let moved = l2::owner_seen_by_client(&state, cluster_vip).filter(|o| *o != cluster_owner);
        async move { moved }
    }));
    let new_owner = new_owner.expect("another node took the VIP over");
    let target = std::net::SocketAddr::from((cluster_vip, 80));
    let seen = runtime.block_on(report::retry(Duration::from_secs(30), || {
        report::seen_from(&state.lab_binary, &state.client_ns, target)
    }));
    assert!(
        seen.is_some(),
        "{target} did not answer after its owner died"
    );
    assert_eq!(
        l2::owner_seen_by_client(&state, cluster_vip),
        Some(new_owner.clone())
    );
    assert_one_answer_from(&state, cluster_vip, &new_owner);

    // down: every process and namespace is gone, and the state dir with them.
    assert_eq!(state.processes.len(), 8, "{:?}", state.processes);
    let (_, down) = run_lab(&["down"], state_dir);
    println!("{down}");
    for process in &state.processes {
        assert!(!process.alive(), "{process:?} still runs after down");
    }
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let namespaces = String::from_utf8_lossy(&namespaces.stdout);
    assert!(
        !namespaces.contains(&state.prefix),
        "namespaces {} left:\n{namespaces}",
        state.prefix
    );
    assert!(!state_dir.exists());
    let (_, again) = run_lab(&["down"], state_dir);
    assert!(again.contains("nothing to do"), "{again}");
}

/// `up` on nodes whose agent cannot find iptables and conntrack: it fails at once, quoting the
/// agent's own line, instead of waiting 30 s and saying only that the node was not programmed.
#[test]
fn up_quotes_the_agent_error_when_the_node_lacks_its_tools() {
    if !can_run((!is_root()).then(|| "this test needs root (network namespaces)".to_owned())) {
        return;
    }
    let real_bin_dir = lab_binary().parent().unwrap().to_path_buf();
    let (controller, agent) = (
        real_bin_dir.join("portico-controller"),
        real_bin_dir.join("portico-agent"),
    );
    if !can_run((!controller.is_file() || !agent.is_file()).then(|| {
        format!(
            "portico-controller or portico-agent not built in {}",
            real_bin_dir.display()
        )
    })) {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    // The real agent, started with a PATH that holds none of the tools (a fresh machine).
    let bin_dir = temp.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    std::os::unix::fs::symlink(&controller, bin_dir.join("portico-controller")).unwrap();
    let wrapper = bin_dir.join("portico-agent");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec /usr/bin/env PATH={} {} \"$@\"\n",
            temp.path().join("empty").display(),
            agent.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let state_dir = temp.path().join("lab");
    let _down = DownOnDrop(state_dir.clone());
    let output = Command::new(lab_binary())
        .args(["up", "--node-subnet", "198.18.41.0/24"])
        .args(["--port", &free_port().to_string()])
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--state-dir")
        .arg(&state_dir)
        .output()
        .expect("portico-lab runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("the agent on node-0 exited: portico-agent: iptables, iptables-save"),
        "{stderr}"
    );
    assert!(
        stderr.contains("(install the Debian package conntrack) (see agent-node-0.log)"),
        "{stderr}"
    );
}
