//! The real release agent at scale (a bench, not a timed test): the lab API server in this
//! process, N Services × 5 endpoints (every tenth a LoadBalancer with
//! `externalTrafficPolicy: Local`) written as a real cluster serves them (managedFields from
//! server-side apply, a `last-applied-configuration` annotation, labels), and `portico-agent`
//! in a node network namespace. Prints one table per scale.
//!
//!   cargo build --release -p portico-agent
//!   cargo bench -p portico-agent --bench agent
//!
//! Environment: `BENCH_SCALES` (default `1000,10000`), `BENCH_IDLE_SECS` (the idle minute,
//! default 60), `BENCH_AGENT` (the agent binary, default target/release/portico-agent),
//! `BENCH_AGENT_ARGS` (extra flags, space separated). Root only.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};
use portico_agent::dataplane::{IpFamily, Protocol, ServicePortKey};
use portico_agent::iptables::names;
use portico_tests::cli::http_get;
use portico_tests::lab_cluster::LabCluster;
use serde_json::json;

const NODE: &str = "bench-node-1";
const ENDPOINTS: u32 = 5;
const PARALLEL: usize = 16;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(args: &[&str]) -> String {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The node's namespace with one veth to the host, where the lab API server listens.
struct NodeNs {
    netns: String,
    host_link: String,
    host_ip: IpAddr,
    node_ip: IpAddr,
}

impl NodeNs {
    fn create() -> NodeNs {
        let pid = std::process::id();
        let netns = format!("ptc-agbench-{pid}");
        let host_link = format!("pab{}h", pid % 100_000);
        let node_link = format!("pab{}n", pid % 100_000);
        let (host_ip, node_ip): (IpAddr, IpAddr) = (
            "198.18.120.1".parse().unwrap(),
            "198.18.120.10".parse().unwrap(),
        );
        run(&["ip", "netns", "add", &netns]);
        run(&[
            "ip", "link", "add", &host_link, "type", "veth", "peer", "name", &node_link,
        ]);
        run(&["ip", "link", "set", &node_link, "netns", &netns]);
        run(&["ip", "addr", "add", "198.18.120.1/24", "dev", &host_link]);
        run(&["ip", "link", "set", &host_link, "up"]);
        for args in [
            vec!["ip", "addr", "add", "198.18.120.10/24", "dev", &node_link],
            vec!["ip", "link", "set", &node_link, "up"],
            vec!["ip", "link", "set", "lo", "up"],
        ] {
            let mut full = vec!["ip", "netns", "exec", &netns];
            full.extend(args);
            run(&full);
        }
        NodeNs {
            netns,
            host_link,
            host_ip,
            node_ip,
        }
    }

    fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.netns];
        full.extend_from_slice(args);
        let output = Command::new(full[0]).args(&full[1..]).output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for NodeNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_link])
            .status();
    }
}

fn remove_leftovers() {
    for name in run(&["ip", "netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
    {
        if let Some(pid) = name.strip_prefix("ptc-agbench-")
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
            let link = format!("pab{}h", pid.parse::<u32>().unwrap_or(0) % 100_000);
            let _ = Command::new("ip").args(["link", "del", &link]).status();
        }
    }
}

fn agent_binary() -> PathBuf {
    if let Ok(path) = std::env::var("BENCH_AGENT") {
        return path.into();
    }
    portico_tests::repo_root().join("target/release/portico-agent")
}

struct Agent {
    child: Child,
    admin: SocketAddr,
}

impl Agent {
    fn start(node: &NodeNs, kubeconfig: &Path, log: &Path) -> Agent {
        let admin = SocketAddr::new(node.node_ip, 9473);
        let extra = std::env::var("BENCH_AGENT_ARGS").unwrap_or_default();
        let child = Command::new("ip")
            .args(["netns", "exec", &node.netns])
            .arg(agent_binary())
            .args(["--node-name", NODE, "--kubeconfig"])
            .arg(kubeconfig)
            .args(["--healthz-bind-address", &format!("{}:10256", node.node_ip)])
            .args(["--admin-addr", &admin.to_string()])
            .args(["--cluster-cidr", "10.244.0.0/16", "--log-level", "warn"])
            .args(extra.split_whitespace())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
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

    fn syncs(&self) -> f64 {
        self.metric_sum("portico_agent_sync_duration_seconds_count")
    }

    fn full_syncs(&self) -> f64 {
        self.metric_sum("portico_agent_sync_duration_seconds_count{kind=\"full\"}")
    }

    fn proc_status(&self, field: &str) -> u64 {
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
    fn cpu_seconds(&self) -> f64 {
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
    async fn wait_sync(&self, before: f64, since: Instant) -> Duration {
        loop {
            if self.syncs() > before {
                return since.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stop(mut self) {
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

fn last_applied(value: &serde_json::Value) -> String {
    value.to_string()
}

fn service_json(index: u32) -> serde_json::Value {
    let name = format!("svc-{index}");
    let lb = index.is_multiple_of(10);
    let mut spec = json!({
        "selector": {"app": name.clone(), "tier": "backend"},
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
    });
    if lb {
        spec["type"] = json!("LoadBalancer");
        spec["externalTrafficPolicy"] = json!("Local");
        spec["loadBalancerClass"] = json!("portico.dev/lb");
    }
    let mut object = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": name.clone(), "namespace": namespace(index),
            "labels": {"app.kubernetes.io/name": name.clone(), "app.kubernetes.io/part-of": "bench",
                       "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "bench-1.2.3"},
            "annotations": {"meta.helm.sh/release-name": "bench", "meta.helm.sh/release-namespace": namespace(index)},
        },
        "spec": spec,
    });
    let applied = last_applied(&object);
    object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
        json!(applied);
    object
}

fn namespace(index: u32) -> String {
    format!("ns-{}", index % 20)
}

fn pod_ip(index: u32, endpoint: u32, generation: u32) -> Ipv4Addr {
    let base = u32::from(Ipv4Addr::new(10, 244, 0, 0));
    Ipv4Addr::from(base + (generation * 100_000 + index) * 8 + endpoint)
}

fn slice_json(index: u32, generation: u32) -> serde_json::Value {
    let service = format!("svc-{index}");
    let endpoints: Vec<serde_json::Value> = (0..ENDPOINTS)
        .map(|e| {
            json!({
                "addresses": [pod_ip(index, e, generation).to_string()],
                "nodeName": format!("bench-node-{}", e + 1),
                "zone": "zone-a",
                "conditions": {"ready": true, "serving": true, "terminating": false},
                "targetRef": {"kind": "Pod", "namespace": namespace(index),
                              "name": format!("{service}-7d9f8b6c5d-{e}x{generation}"),
                              "uid": format!("00000000-0000-0000-{e:04}-{index:012}")},
            })
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{service}-abcde"), "namespace": namespace(index),
            "labels": {"kubernetes.io/service-name": service.clone(),
                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                       "app.kubernetes.io/name": service.clone()},
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "2026-11-30T00:00:00Z"},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    })
}

fn apply_params() -> PatchParams {
    PatchParams::apply("kube-controller-manager").force()
}

async fn create_objects(cluster: &LabCluster, count: u32) {
    let client = cluster.client.clone();
    futures::stream::iter(0..count)
        .map(|index| {
            let client = client.clone();
            async move {
                let ns = namespace(index);
                let services: Api<Service> = Api::namespaced(client.clone(), &ns);
                let name = format!("svc-{index}");
                let service: Service = serde_json::from_value(service_json(index)).unwrap();
                let service = services
                    .patch(
                        &name,
                        &PatchParams::apply("kubectl-client-side-apply"),
                        &Patch::Apply(&service),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("apply {name}: {e}"));
                if index.is_multiple_of(10) {
                    let vip = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 0, 0)) + index);
                    let status = json!({"status": {"loadBalancer": {"ingress": [{"ip": vip.to_string(), "ipMode": "VIP"}]}}});
                    services
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                        .await
                        .unwrap();
                }
                let _ = service;
                let slices: Api<EndpointSlice> = Api::namespaced(client, &ns);
                let slice: EndpointSlice = serde_json::from_value(slice_json(index, 0)).unwrap();
                slices
                    .patch(
                        &format!("{name}-abcde"),
                        &apply_params(),
                        &Patch::Apply(&slice),
                    )
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(PARALLEL)
        .collect::<Vec<_>>()
        .await;
}

async fn create_namespaces(cluster: &LabCluster) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cluster.client.clone());
    for i in 0..20 {
        let ns = serde_json::from_value(json!({"metadata": {"name": format!("ns-{i}")}})).unwrap();
        let _ = api.create(&PostParams::default(), &ns).await;
    }
}

fn svc_chain(index: u32) -> String {
    names::svc_chain(&ServicePortKey {
        family: IpFamily::V4,
        namespace: namespace(index),
        name: format!("svc-{index}"),
        port_name: "http".into(),
        protocol: Protocol::Tcp,
    })
}

fn reflected(node: &NodeNs, index: u32, generation: u32) -> bool {
    let rules = node.exec(&["iptables", "-w", "-t", "nat", "-S", &svc_chain(index)]);
    // Endpoint 1 is on another node: DNATed from the SVC chain itself.
    rules.contains(&format!("{}:8080", pod_ip(index, 1, generation)))
}

struct Row {
    scale: u32,
    clean: Duration,
    restart: Duration,
    rss_first: u64,
    rss_minute: u64,
    idle_cpu: f64,
    idle_secs: u64,
    idle_syncs: f64,
    churn: Duration,
    chains: usize,
}

async fn bench_scale(scale: u32, idle_secs: u64) -> Row {
    remove_leftovers();
    let node = NodeNs::create();
    let listen = vec![
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::new(node.host_ip, 0),
    ];
    let cluster = LabCluster::start_listening(listen).await;
    let IpAddr::V4(node_ip) = node.node_ip else {
        unreachable!()
    };
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": NODE},
                "status": {"addresses": [{"type": "InternalIP", "address": node_ip.to_string()}]},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    create_namespaces(&cluster).await;
    let started = Instant::now();
    create_objects(&cluster, scale).await;
    eprintln!("{scale}: objects created in {:?}", started.elapsed());
    let kubeconfig = cluster.kubeconfig_via(node.host_ip);
    let log = cluster.dir.path().join("agent.log");

    let since = Instant::now();
    let agent = Agent::start(&node, &kubeconfig, &log);
    let clean = agent.wait_sync(0.0, since).await;
    let rss_first = agent.proc_status("VmRSS:");
    eprintln!("{scale}: first sync {clean:?}");
    let chains = node
        .exec(&["iptables-save", "-t", "nat"])
        .lines()
        .filter(|l| l.starts_with(":PORTICO-SVC-"))
        .count();

    // The idle minute: nothing changes.
    let (cpu_before, syncs_before) = (agent.cpu_seconds(), agent.full_syncs());
    let idle_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let idle_cpu = (agent.cpu_seconds() - cpu_before) / idle_started.elapsed().as_secs_f64();
    let idle_syncs = agent.full_syncs() - syncs_before;
    let rss_minute = agent.proc_status("VmRSS:");

    // Churn: 100 EndpointSlices get a new first endpoint.
    let changed: Vec<u32> = (0..100).map(|i| i * (scale / 100)).collect();
    let syncs_at_churn = agent.syncs();
    let churn_started = Instant::now();
    futures::stream::iter(changed.clone())
        .map(|index| {
            let client = cluster.client.clone();
            async move {
                let slices: Api<EndpointSlice> = Api::namespaced(client, &namespace(index));
                let slice: EndpointSlice = serde_json::from_value(slice_json(index, 1)).unwrap();
                slices
                    .patch(
                        &format!("svc-{index}-abcde"),
                        &apply_params(),
                        &Patch::Apply(&slice),
                    )
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(PARALLEL)
        .collect::<Vec<_>>()
        .await;
    // Each sync the agent reports is a moment the rules may have caught up: note its time, then
    // check the Services still pending (listing chains is too slow to poll at scale).
    let mut pending = changed.clone();
    let mut syncs = syncs_at_churn;
    let churn = loop {
        let now = agent.syncs();
        if now > syncs {
            let at = churn_started.elapsed();
            syncs = now;
            pending.retain(|&index| !reflected(&node, index, 1));
            if pending.is_empty() {
                break at;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };

    // Restart over the existing rules.
    agent.stop();
    let since = Instant::now();
    let agent = Agent::start(&node, &kubeconfig, &log);
    let restart = agent.wait_sync(0.0, since).await;
    agent.stop();
    Row {
        scale,
        clean,
        restart,
        rss_first,
        rss_minute,
        idle_cpu,
        idle_secs,
        idle_syncs,
        churn,
        chains,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    assert!(
        portico_tests::require_root(),
        "the agent bench needs root (network namespaces, iptables)"
    );
    let scales: Vec<u32> = std::env::var("BENCH_SCALES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let idle_secs = env_or("BENCH_IDLE_SECS", 60u64);
    eprintln!("agent: {}", agent_binary().display());
    let mut rows = Vec::new();
    for scale in scales {
        rows.push(bench_scale(scale, idle_secs).await);
    }
    println!(
        "| Services × 5 | first sync, clean | first sync, over existing rules | RSS after first sync | RSS after idle | idle CPU (agent + children) | full syncs while idle | 100 slice updates reflected | SVC chains |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for row in rows {
        println!(
            "| {} | {:.2} s | {:.2} s | {:.1} MiB | {:.1} MiB ({} s) | {:.2} % of a core | {} | {:.2} s | {} |",
            row.scale,
            row.clean.as_secs_f64(),
            row.restart.as_secs_f64(),
            row.rss_first as f64 / 1024.0,
            row.rss_minute as f64 / 1024.0,
            row.idle_secs,
            row.idle_cpu * 100.0,
            row.idle_syncs,
            row.churn.as_secs_f64(),
            row.chains,
        );
    }
}
