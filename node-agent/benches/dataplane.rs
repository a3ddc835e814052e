//! Both dataplane backends side by side, through the backend seam, applied for real inside
//! throwaway network namespaces, with kube-proxy's nftables layout (written by
//! `/work/shared/peers/kubeproxy_nft_layout.py`, or `BENCH_KUBEPROXY_SCRIPT`) loaded in the same
//! run for the ratio, and the nftables backend's own table loaded through `nft -f` text (the path
//! before netlink batches) for the before/after. Not a timed test: it prints a table.
//!
//! Rows: a full sync of 1,000 and 10,000 Services × 5 endpoints into an empty namespace; one
//! changed Service (an endpoint added) among 10,000; TCP connect latency from the node to the
//! last-added Service at 100 and 10,000 Services (the median of 20 connects, each timed inside
//! the node namespace, to a real echo server in a pod namespace).
//!
//! Run as root: `cargo bench -p portico-agent --bench dataplane`. `BENCH_SCALES` (default
//! `1000,10000`); kube-proxy's layout at 10,000 takes minutes (104 s here), so it runs only with
//! `BENCH_KUBEPROXY_MAX` ≥ 10000 (default 1000).

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portico_agent::args::ProxyMode;
use portico_agent::dataplane::backend::for_mode;
use portico_agent::dataplane::{DesiredState, Endpoint, IpFamily};
use portico_agent::nftables::{Nft, TableCache, Update};

#[path = "common/services.rs"]
mod services;
use services::{ENDPOINTS_PER_SERVICE, node, state};

const POD_IP: &str = "10.244.0.7";
const ECHO_PORT: u16 = 8080;

/// `state` whose last Service has the bench's real pod as its only endpoint.
fn state_with_real_last(services: usize) -> DesiredState {
    let mut state = state(services, None);
    if let Some((_, port)) = state.ports.iter_mut().last() {
        port.endpoints = vec![Endpoint {
            ip: POD_IP.parse().unwrap(),
            port: ECHO_PORT,
            node_name: Some("node-a".into()),
            ready: true,
            serving: true,
            terminating: false,
        }];
    }
    state
}

fn run(args: &[&str]) {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A node namespace with one pod namespace behind a veth, removed on drop.
struct Lab {
    node: String,
    pod: String,
}

impl Lab {
    fn new(tag: &str) -> Self {
        let base = format!("ptc-dp-bench-{}-{tag}", std::process::id());
        let lab = Lab {
            node: format!("{base}-n"),
            pod: format!("{base}-p"),
        };
        for ns in [&lab.node, &lab.pod] {
            run(&["ip", "netns", "add", ns]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        run(&[
            "ip", "-n", &lab.pod, "link", "add", "eth0", "type", "veth", "peer", "name", "pod",
            "netns", &lab.node,
        ]);
        run(&[
            "ip",
            "-n",
            &lab.pod,
            "addr",
            "add",
            &format!("{POD_IP}/32"),
            "dev",
            "eth0",
        ]);
        run(&["ip", "-n", &lab.pod, "link", "set", "eth0", "up"]);
        run(&[
            "ip",
            "-n",
            &lab.pod,
            "route",
            "add",
            "10.244.0.1",
            "dev",
            "eth0",
        ]);
        run(&[
            "ip",
            "-n",
            &lab.pod,
            "route",
            "add",
            "default",
            "via",
            "10.244.0.1",
        ]);
        run(&[
            "ip",
            "-n",
            &lab.node,
            "addr",
            "add",
            "10.244.0.1/32",
            "dev",
            "pod",
        ]);
        run(&["ip", "-n", &lab.node, "link", "set", "pod", "up"]);
        run(&[
            "ip",
            "-n",
            &lab.node,
            "route",
            "add",
            &format!("{POD_IP}/32"),
            "dev",
            "pod",
        ]);
        // The node's address, and a default route, so that packets to Service addresses are
        // routed (and then DNATed to the pod) as on a real node.
        run(&[
            "ip", "-n", &lab.node, "link", "add", "uplink", "type", "veth", "peer", "name", "peer",
        ]);
        run(&["ip", "-n", &lab.node, "link", "set", "peer", "up"]);
        run(&[
            "ip",
            "-n",
            &lab.node,
            "addr",
            "add",
            "198.18.0.10/24",
            "dev",
            "uplink",
        ]);
        run(&["ip", "-n", &lab.node, "link", "set", "uplink", "up"]);
        run(&[
            "ip", "-n", &lab.node, "route", "add", "default", "dev", "uplink",
        ]);
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.node, &self.pod] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn remove_leftovers() {
    let listing = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    for line in String::from_utf8_lossy(&listing.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if name.starts_with("ptc-dp-bench-") {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// This binary re-executed inside a namespace: an echo server, or a client that prints the
/// median of 20 timed connects.
fn helper() -> bool {
    match std::env::var("PTC_BENCH_HELPER").as_deref() {
        Ok("echo") => {
            let listener = TcpListener::bind(("0.0.0.0", ECHO_PORT)).expect("bind");
            println!("READY");
            std::io::stdout().flush().ok();
            for stream in listener.incoming().flatten() {
                drop(stream);
            }
            true
        }
        Ok("connect") => {
            let target: SocketAddr = std::env::var("PTC_BENCH_TARGET").unwrap().parse().unwrap();
            let mut times: Vec<Duration> = (0..20)
                .map(|_| {
                    let started = Instant::now();
                    let stream = TcpStream::connect_timeout(&target, Duration::from_secs(2));
                    let elapsed = started.elapsed();
                    stream.expect("connect to the last Service");
                    elapsed
                })
                .collect();
            times.sort();
            println!("MEDIAN_US {}", times[times.len() / 2].as_micros());
            true
        }
        _ => false,
    }
}

fn in_ns(ns: &str, mode: &str) -> Command {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", ns])
        .arg(std::env::current_exe().unwrap())
        .env("PTC_BENCH_HELPER", mode);
    command
}

fn connect_latency(lab: &Lab, cluster_ip: IpAddr) -> Duration {
    let output = in_ns(&lab.node, "connect")
        .env(
            "PTC_BENCH_TARGET",
            SocketAddr::new(cluster_ip, 80).to_string(),
        )
        .output()
        .expect("client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let micros: u64 = stdout
        .lines()
        .find_map(|line| line.strip_prefix("MEDIAN_US "))
        .unwrap_or_else(|| {
            panic!(
                "client: {stdout} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
        .trim()
        .parse()
        .unwrap();
    Duration::from_micros(micros)
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// CPU time of this process (every thread, so the kernel's work in our netlink send) and of its
/// waited-for children (nft, iptables-restore): on a loaded machine wall time mostly measures
/// the wait for a core, CPU time the work.
fn cpu_now() -> Duration {
    let mut total = Duration::ZERO;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: getrusage writes one rusage into the zeroed value it is given.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(who, &mut usage);
            usage
        };
        for time in [usage.ru_utime, usage.ru_stime] {
            total += Duration::from_secs(time.tv_sec as u64)
                + Duration::from_micros(time.tv_usec as u64);
        }
    }
    total
}

/// Wall and CPU time of `work`.
struct Timed {
    wall: Duration,
    cpu: Duration,
}

impl Timed {
    fn start() -> (Instant, Duration) {
        (Instant::now(), cpu_now())
    }

    fn since((started, cpu): (Instant, Duration)) -> Timed {
        Timed {
            wall: started.elapsed(),
            cpu: cpu_now().saturating_sub(cpu),
        }
    }

    fn cell(&self) -> String {
        format!("{} (CPU {})", ms(self.wall), ms(self.cpu))
    }
}

/// The median by wall time.
fn median(mut times: Vec<Timed>) -> Timed {
    times.sort_by_key(|t| t.wall);
    times.swap_remove(times.len() / 2)
}

/// How many times a one-Service change is measured (alternately applied and reverted).
const CHANGES: usize = 7;

/// The nftables backend's table through `nft -f` text (the path before netlink batches): a full
/// load of `services`, and at the largest scale one changed Service as the same partial
/// transaction in text.
async fn nft_text(services: usize, with_change: bool) -> (Timed, Option<Timed>) {
    let lab = Lab::new(&format!("text{services}"));
    let nft = Nft::new(Some(&lab.node));
    let mut cache = TableCache::new(&node(), IpFamily::V4);
    cache.update(&state(services, None), &node());
    let text = cache.full_text();
    let started = Timed::start();
    nft.apply(&text).await.expect("nft -f full");
    let full = Timed::since(started);
    if !with_change {
        return (full, None);
    }
    let mut partials = Vec::new();
    for round in 0..CHANGES {
        let changed = (round % 2 == 0).then_some(services / 2);
        let Update::Partial(transaction) = cache.update(&state(services, changed), &node()) else {
            panic!("one changed Service is a partial update");
        };
        let text = transaction.text();
        let started = Timed::start();
        nft.apply(&text).await.expect("nft -f partial");
        partials.push(Timed::since(started));
    }
    (full, Some(median(partials)))
}

/// Loads kube-proxy's layout for `services` × 5 with `nft -f` into a fresh namespace.
fn kube_proxy_load(services: usize) -> Option<Timed> {
    let script = std::env::var("BENCH_KUBEPROXY_SCRIPT")
        .unwrap_or_else(|_| "/work/shared/peers/kubeproxy_nft_layout.py".into());
    let output = Command::new("python3")
        .args([
            &script,
            &services.to_string(),
            &ENDPOINTS_PER_SERVICE.to_string(),
        ])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let lab = Lab::new(&format!("kp{services}"));
    let started = Timed::start();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.node, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(&output.stdout).ok()?;
    let status = child.wait().ok()?;
    status.success().then(|| Timed::since(started))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if helper() {
        return;
    }
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    remove_leftovers();
    let scales: Vec<usize> = std::env::var("BENCH_SCALES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let kube_proxy_max: usize = std::env::var("BENCH_KUBEPROXY_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let modes = [ProxyMode::Iptables, ProxyMode::Nftables];
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    for &services in &scales {
        let mut cells = Vec::new();
        let mut restarts = Vec::new();
        for mode in modes {
            let lab = Lab::new(&format!("full{services}{mode:?}"));
            let mut backend = for_mode(mode, Some(&lab.node), &node()).unwrap();
            let desired = state(services, None);
            let started = Timed::start();
            backend.sync(&desired, &node()).await.expect("full sync");
            cells.push(Timed::since(started).cell());
            if services == *scales.iter().max().unwrap() {
                // One changed Service (an endpoint more, then back) among them: partial syncs.
                let mut partials = Vec::new();
                let mut kinds = Vec::new();
                for round in 0..CHANGES {
                    let changed = state(services, (round % 2 == 0).then_some(services / 2));
                    let started = Timed::start();
                    let writes = backend.sync(&changed, &node()).await.expect("partial sync");
                    partials.push(Timed::since(started));
                    kinds.extend(writes);
                }
                kinds.dedup();
                // A restarted agent: a new backend over the rules the last one left.
                let mut restarted = for_mode(mode, Some(&lab.node), &node()).unwrap();
                let started = Timed::start();
                let writes = restarted.sync(&desired, &node()).await.expect("restart");
                restarts.push(format!("{} ({writes:?})", Timed::since(started).cell()));
                rows.push((
                    format!(
                        "one changed Service among {services} ({kinds:?}, median of {CHANGES})"
                    ),
                    vec![median(partials).cell()],
                ));
            }
        }
        let largest = services == *scales.iter().max().unwrap();
        if !restarts.is_empty() {
            restarts.extend(["–".to_string(), "–".to_string()]);
            rows.push((
                format!("first sync of a restarted agent over {services} in place"),
                restarts,
            ));
        }
        let (text_full, text_partial) = nft_text(services, largest).await;
        cells.push(text_full.cell());
        if let Some(partial) = text_partial {
            rows.push((
                format!("one changed Service among {services} (nft -f text, median of {CHANGES})"),
                vec![partial.cell()],
            ));
        }
        let kube_proxy = if services <= kube_proxy_max {
            kube_proxy_load(services).map_or("failed".into(), |t| t.cell())
        } else {
            "skipped (BENCH_KUBEPROXY_MAX)".into()
        };
        cells.push(kube_proxy);
        rows.push((
            format!("full load {services} × {ENDPOINTS_PER_SERVICE}"),
            cells,
        ));
    }
    for services in [100, 10_000] {
        let mut cells = Vec::new();
        for mode in modes {
            let lab = Lab::new(&format!("lat{services}{mode:?}"));
            let mut echo = in_ns(&lab.pod, "echo")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("echo");
            let mut ready = String::new();
            std::io::BufRead::read_line(
                &mut std::io::BufReader::new(echo.stdout.take().unwrap()),
                &mut ready,
            )
            .unwrap();
            let desired = state_with_real_last(services);
            let last = desired.ports.values().last().unwrap().cluster_ip;
            let mut backend = for_mode(mode, Some(&lab.node), &node()).unwrap();
            backend.sync(&desired, &node()).await.expect("sync");
            cells.push(format!("{} µs", connect_latency(&lab, last).as_micros()));
            let _ = echo.kill();
            let _ = echo.wait();
        }
        cells.push("(same table)".into());
        rows.push((format!("connect to the last Service of {services}"), cells));
    }
    println!(
        "| scenario | iptables | nftables (netlink) | nftables via nft -f text | kube-proxy nftables layout |"
    );
    println!("| --- | --- | --- | --- | --- |");
    let mut partials = Vec::new();
    for (name, cells) in &rows {
        if name.starts_with("one changed") {
            partials.push((name, cells[0].clone()));
            continue;
        }
        println!("| {name} | {} |", cells.join(" | "));
    }
    for chunk in partials.chunks(3) {
        let cells: Vec<String> = chunk
            .iter()
            .map(|(name, cell)| format!("{cell} {name}"))
            .collect();
        println!("| one changed Service | {} | – |", cells.join(" | "));
    }
}
