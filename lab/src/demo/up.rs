//! `portico-lab up`: starts the lab as detached processes (own process group, logs in the state
//! dir), creates the demo's objects and prints the source-IP tables.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::PostParams;
use kube::{Api, Client};

use super::l2;
use super::objects::{self, ECHO_PORT, NAMESPACE, SERVICE_PORT};
use super::report::{self, HEALTH_HEADERS, TRAFFIC_HEADERS, render_table, say};
use super::state::{LabState, NodeState, PodState, ProcessRecord};
use super::{UpArgs, stop_all};
use crate::netns::process::command_in;

pub(super) const NODES: usize = 3;
/// Nodes whose pod runs an echo server; the demo's Services have their endpoint on node-0.
const ECHO_NODES: usize = 2;
pub(super) const CLUSTER_SERVICE: &str = "echo-cluster";
pub(super) const LOCAL_SERVICE: &str = "echo-local";

/// Paths of the binaries `up` starts.
pub(super) struct Binaries {
    pub(super) lab: PathBuf,
    pub(super) controller: PathBuf,
    pub(super) agent: PathBuf,
}

fn binaries(bin_dir: Option<&Path>) -> anyhow::Result<Binaries> {
    let lab = std::env::current_exe()?;
    let dir = match bin_dir {
        Some(dir) => dir.to_path_buf(),
        None => lab
            .parent()
            .ok_or_else(|| anyhow::anyhow!("{} has no directory", lab.display()))?
            .to_path_buf(),
    };
    let find = |name: &str| {
        let path = dir.join(name);
        anyhow::ensure!(
            path.is_file(),
            "{} is missing: build it with `cargo build -p portico-lab -p portico-controller \
             -p portico-agent`, or pass --bin-dir",
            path.display()
        );
        Ok(path)
    };
    Ok(Binaries {
        controller: find("portico-controller")?,
        agent: find("portico-agent")?,
        lab,
    })
}

/// The pool's default: `198.19.<third octet of the node subnet>.0/28`.
fn default_pool(node_subnet: ipnet::Ipv4Net) -> ipnet::Ipv4Net {
    let third = node_subnet.network().octets()[2];
    ipnet::Ipv4Net::new(Ipv4Addr::new(198, 19, third, 0), 28).expect("a /28")
}

/// Starts `command` detached (its own process group, stdin closed, stdout to `<name>.out`
/// and stderr to `<name>.log`) and records it in the state file at once.
pub(super) fn spawn_detached(
    dir: &Path,
    state: &mut LabState,
    name: &str,
    program: &Path,
    mut command: Command,
) -> anyhow::Result<()> {
    let log = dir.join(format!("{name}.log"));
    command
        .stdin(Stdio::null())
        .stdout(File::create(dir.join(format!("{name}.out")))?)
        .stderr(File::create(&log)?)
        .process_group(0);
    let child = command
        .spawn()
        .map_err(|error| anyhow::anyhow!("could not start {name}: {error}"))?;
    let program = program
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    state.processes.push(ProcessRecord {
        name: name.to_owned(),
        pid: child.id(),
        program,
        log,
    });
    state.save(dir)
}

/// Polls `<name>.out` until `done` accepts its text; fails early when the process died.
pub(super) async fn wait_for_output(
    dir: &Path,
    state: &LabState,
    name: &str,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let out = dir.join(format!("{name}.out"));
    let record = state.processes.iter().find(|p| p.name == name);
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if done(&text) {
            return Ok(text);
        }
        let log = dir.join(format!("{name}.log"));
        if record.is_some_and(|p| !p.alive()) {
            // Read once more: it may have written its line and exited since.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            if done(&text) {
                return Ok(text);
            }
            if record.is_some_and(|p| !p.alive()) {
                let stderr = std::fs::read_to_string(&log).unwrap_or_default();
                anyhow::bail!("{name} exited; {}:\n{stderr}", log.display());
            }
        }
        if Instant::now() >= deadline {
            anyhow::bail!("{name} not ready within {timeout:?}; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads the layout `portico-lab netns` prints after its `ready` line.
pub(super) fn parse_layout(text: &str, state: &mut LabState) -> anyhow::Result<()> {
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["ready", prefix, _link] => state.prefix = (*prefix).to_owned(),
            ["host", _link, ip] => state.host_ip = Some(ip.parse()?),
            ["client", ns, ip] => {
                state.client_ns = (*ns).to_owned();
                state.client_ip = Some(ip.parse()?);
            }
            ["cloud", ns, _ip, range] => {
                state.cloud = Some(super::state::CloudState {
                    provider: String::new(),
                    ns: (*ns).to_owned(),
                    load_balancer_range: range.parse()?,
                    dir: PathBuf::new(),
                    endpoint: String::new(),
                    targets: Default::default(),
                    check: (0, 0),
                })
            }
            ["node", name, ns, ip, _cidr] => state.nodes.push(NodeState {
                name: (*name).to_owned(),
                ns: (*ns).to_owned(),
                ip: ip.parse()?,
                pods: Vec::new(),
            }),
            ["pod", node, ns, ip] => {
                let ip = ip.parse()?;
                let node = state
                    .nodes
                    .iter_mut()
                    .find(|n| n.name == *node)
                    .ok_or_else(|| anyhow::anyhow!("pod of unknown node {node}"))?;
                node.pods.push(PodState {
                    ns: (*ns).to_owned(),
                    ip,
                });
            }
            _ => {}
        }
    }
    anyhow::ensure!(
        state.nodes.len() == NODES && state.host_ip.is_some(),
        "unexpected layout from portico-lab netns:\n{text}"
    );
    Ok(())
}

pub(super) async fn wait_for_api(
    kubeconfig: &Path,
    state: &LabState,
    dir: &Path,
) -> anyhow::Result<Client> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if kubeconfig.is_file()
            && let Ok(client) = super::client(kubeconfig).await
            && client.apiserver_version().await.is_ok()
        {
            return Ok(client);
        }
        if state
            .processes
            .iter()
            .any(|p| p.name == "apiserver" && !p.alive())
        {
            anyhow::bail!(
                "the API server exited; see {}",
                dir.join("apiserver.log").display()
            );
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the API server did not answer within 30s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `portico-lab up`.
pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let dir = args.state.state_dir.clone();
    if let Some(old) = LabState::load(&dir)? {
        if old.complete && old.processes.iter().all(ProcessRecord::alive) {
            println!(
                "the lab is already up ({} processes, state in {}); `portico-lab down` stops it",
                old.processes.len(),
                dir.display()
            );
            println!("export KUBECONFIG={}", old.kubeconfig.display());
            return Ok(());
        }
        println!("found an earlier lab that is not whole; taking it down first");
        super::down(&dir)?;
    }
    let binaries = binaries(args.bin_dir.as_deref())?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let mut state = LabState {
        kubeconfig: dir.join("kubeconfig"),
        lab_binary: binaries.lab.clone(),
        ..LabState::default()
    };
    let started = match args.provider {
        super::DemoProvider::Baremetal => start(&args, &binaries, &dir, &mut state).await,
        super::DemoProvider::Aws => {
            super::cloud_up::start_aws(&args, &binaries, &dir, &mut state).await
        }
        super::DemoProvider::Gcp => {
            super::gcp_up::start_gcp(&args, &binaries, &dir, &mut state).await
        }
    };
    match started {
        Ok(()) => Ok(()),
        Err(error) => {
            eprintln!("portico-lab up failed: {error:#}; stopping what it started");
            stop_all(&state);
            let _ = std::fs::remove_file(super::state::state_file(&dir));
            eprintln!("logs stay in {}", dir.display());
            Err(error)
        }
    }
}

/// The steps every provider's `up` starts with: the namespace cluster (a cloud namespace in
/// front of the nodes with `cloud`), then the lab API server. Returns the host's lab address
/// and a client of the API server.
pub(super) async fn start_cluster(
    args: &UpArgs,
    binaries: &Binaries,
    dir: &Path,
    state: &mut LabState,
    cloud: bool,
) -> anyhow::Result<(Ipv4Addr, Client)> {
    say(if cloud {
        "building the network-namespace cluster (a client behind a cloud, 3 nodes, a pod each)"
    } else {
        "building the network-namespace cluster (a client, 3 nodes, a pod behind each)"
    });
    let mut netns = Command::new(&binaries.lab);
    netns.args([
        "netns",
        "--nodes",
        &NODES.to_string(),
        "--pods-per-node",
        "1",
    ]);
    netns.args(["--node-subnet", &args.node_subnet.to_string()]);
    if cloud {
        netns.arg("--cloud");
    }
    spawn_detached(dir, state, "netns", &binaries.lab, netns)?;
    let layout = wait_for_output(dir, state, "netns", Duration::from_secs(60), |text| {
        text.lines().any(|l| l.starts_with("pod node-2 "))
    })
    .await?;
    parse_layout(&layout, state)?;
    anyhow::ensure!(
        !cloud || state.cloud.is_some(),
        "portico-lab netns --cloud printed no cloud line"
    );
    state.save(dir)?;
    let host_ip = state.host_ip.expect("parsed");
    let cloud_hop = match &state.cloud {
        Some(cloud) => format!(" → cloud {}", cloud.ns),
        None => String::new(),
    };
    println!(
        "namespaces {}*: client {} ({}){cloud_hop} → nodes {}",
        state.prefix,
        state.client_ip(),
        state.client_ns,
        state
            .nodes
            .iter()
            .map(|n| format!("{} {}", n.name, n.ip))
            .collect::<Vec<_>>()
            .join(", ")
    );

    say("starting the lab API server");
    let mut apiserver = Command::new(&binaries.lab);
    apiserver
        .args(["apiserver", "--listen", &format!("{host_ip}:{}", args.port)])
        .args(["--listen", &format!("127.0.0.1:{}", args.port)])
        .arg("--kubeconfig")
        .arg(&state.kubeconfig);
    spawn_detached(dir, state, "apiserver", &binaries.lab, apiserver)?;
    let client = wait_for_api(&state.kubeconfig, state, dir).await?;
    Ok((host_ip, client))
}

/// An echo server in the pod of each of the first `count` nodes, each waited for.
pub(super) async fn start_echo_pods(
    binaries: &Binaries,
    dir: &Path,
    state: &mut LabState,
    count: usize,
) -> anyhow::Result<()> {
    for index in 0..count {
        let pod = state.nodes[index].pods[0].clone();
        let name = format!("echo-n{index}");
        let mut echo = command_in(&pod.ns, &binaries.lab);
        echo.args(["echo-server", "--listen", &format!("0.0.0.0:{ECHO_PORT}")]);
        spawn_detached(dir, state, &name, &binaries.lab, echo)?;
        wait_for_output(dir, state, &name, Duration::from_secs(10), |text| {
            text.starts_with("listening")
        })
        .await?;
        println!("{name}: {}:{ECHO_PORT} in {}", pod.ip, pod.ns);
    }
    Ok(())
}

/// The demo's two Services (Cluster and Local, with `annotations`), their endpoint node-0's pod.
pub(super) async fn create_echo_services(
    client: &Client,
    state: &LabState,
    annotations: &[(&str, &str)],
) -> anyhow::Result<Api<Service>> {
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    let endpoint_node = &state.nodes[0];
    for (name, policy) in [(CLUSTER_SERVICE, "Cluster"), (LOCAL_SERVICE, "Local")] {
        let mut service = objects::echo_service(name, policy);
        if !annotations.is_empty() {
            service.metadata.annotations = Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
        services.create(&PostParams::default(), &service).await?;
        let slice = objects::echo_slice(name, &endpoint_node.name, endpoint_node.pods[0].ip);
        slices.create(&PostParams::default(), &slice).await?;
    }
    Ok(services)
}

/// Starts `controller` (the provider's flags already on it) against the lab, and an agent on
/// every node.
pub(super) fn start_controller_and_agents(
    binaries: &Binaries,
    dir: &Path,
    state: &mut LabState,
    mut controller: Command,
) -> anyhow::Result<()> {
    controller
        .arg("--kubeconfig")
        .arg(&state.kubeconfig)
        .args(["--leader-elect", "--admin-addr", "127.0.0.1:0"])
        .env_remove("KUBECONFIG");
    spawn_detached(dir, state, "controller", &binaries.controller, controller)?;
    for node in state.nodes.clone() {
        let agent = agent_command(&binaries.agent, state, &node);
        let name = format!("agent-{}", node.name);
        spawn_detached(dir, state, &name, &binaries.agent, agent)?;
    }
    Ok(())
}

async fn start(
    args: &UpArgs,
    binaries: &Binaries,
    dir: &Path,
    state: &mut LabState,
) -> anyhow::Result<()> {
    let (host_ip, client) = start_cluster(args, binaries, dir, state, false).await?;
    println!(
        "https://{host_ip}:{} (kubeconfig {})",
        args.port,
        state.kubeconfig.display()
    );

    let pool = args.pool.unwrap_or_else(|| default_pool(args.node_subnet));
    say(&format!(
        "creating the CRDs, Nodes, namespace portico-system, AddressPool demo ({pool}) and L2Announcement demo"
    ));
    objects::apply_crds(&client).await?;
    objects::create_namespace(&client, "portico-system").await?;
    let nodes: Api<Node> = Api::all(client.clone());
    for node in &state.nodes {
        nodes
            .create(&PostParams::default(), &objects::node(node))
            .await?;
    }
    objects::create_address_pool(&client, "demo", &pool.to_string()).await?;
    l2::create_l2_announcement(&client, "demo").await?;
    // The pool is on-link for the client, as on a LAN: it finds each VIP's node by ARP.
    l2::route_pool_on_link(&state.client_ns, pool)?;

    say("starting echo servers in the pods of node-0 and node-1");
    start_echo_pods(binaries, dir, state, ECHO_NODES).await?;

    say("creating Services echo-cluster (Cluster) and echo-local (Local), endpoint on node-0");
    let services = create_echo_services(&client, state, &[]).await?;

    say("starting portico-controller and portico-agent on every node (logs in the state dir)");
    start_controller_and_agents(binaries, dir, state, Command::new(&binaries.controller))?;
    for process in &state.processes {
        println!("{:<12} pid {}", process.name, process.pid);
    }

    let cluster = wait_for_vip(&services, CLUSTER_SERVICE).await?;
    let local = wait_for_vip(&services, LOCAL_SERVICE).await?;
    let (cluster_vip, local_vip) = (
        objects::ingress_ip(&cluster).expect("waited"),
        objects::ingress_ip(&local).expect("waited"),
    );
    say("the VIPs, announced by ARP from the node that owns each (the L2 announcer)");
    let health_port = objects::health_check_node_port(&local)
        .ok_or_else(|| anyhow::anyhow!("{LOCAL_SERVICE} has no healthCheckNodePort"))?;
    wait_for_dataplane(state, &cluster, health_port).await?;
    // Both VIPs answer once their owner answers ARP and has the VIP rules.
    let mut owners = Vec::new();
    for (vip, service) in [(cluster_vip, CLUSTER_SERVICE), (local_vip, LOCAL_SERVICE)] {
        report::retry(l2::ANNOUNCE_WAIT, || {
            report::seen_from(&state.lab_binary, &state.client_ns, sock(vip, SERVICE_PORT))
        })
        .await
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{vip}:{SERVICE_PORT} did not answer within {:?} (no node answered ARP for it? see the agents' logs)",
                l2::ANNOUNCE_WAIT
            )
        })?;
        let owner = l2::owner_seen_by_client(state, vip).unwrap_or_else(|| "unknown".to_owned());
        println!("{vip} ({service}) owned by {owner}");
        owners.push(owner);
    }
    let (cluster_owner, local_owner) = (owners[0].clone(), owners[1].clone());

    say("kubectl get svc");
    kubectl_get_svc(&state.kubeconfig);

    say(&format!(
        "what a client outside the nodes ({} in {}) sees",
        state.client_ip(),
        state.client_ns
    ));
    let lab = &state.lab_binary;
    let ns = &state.client_ns;
    let mut rows = vec![
        report::traffic_row(
            lab,
            ns,
            format!("vip:{cluster_vip}:{SERVICE_PORT}"),
            "Cluster",
            &cluster_owner,
            sock(cluster_vip, SERVICE_PORT),
        )
        .await,
        report::traffic_row(
            lab,
            ns,
            format!("vip:{local_vip}:{SERVICE_PORT}"),
            "Local",
            &local_owner,
            sock(local_vip, SERVICE_PORT),
        )
        .await,
    ];
    for (service, policy) in [(&cluster, "Cluster"), (&local, "Local")] {
        let port = objects::node_port(service).expect("a NodePort");
        for node in &state.nodes {
            rows.push(
                report::traffic_row(
                    lab,
                    ns,
                    format!("nodeport:{}:{port}", node.ip),
                    policy,
                    &node.name,
                    sock(node.ip, port),
                )
                .await,
            );
        }
    }
    print!("{}", render_table(&TRAFFIC_HEADERS, &rows));

    say(&format!(
        "each node's health check for {LOCAL_SERVICE} (healthCheckNodePort {health_port})"
    ));
    let mut rows = Vec::new();
    for node in &state.nodes {
        let addr = sock(node.ip, health_port);
        let answer = report::health_from(lab, ns, addr).await;
        rows.push(report::health_row(&node.name, addr, answer));
    }
    print!("{}", render_table(&HEALTH_HEADERS, &rows));

    state.complete = true;
    state.save(dir)?;
    say("the lab is up");
    println!("logs and state: {}", dir.display());
    println!("try: portico-lab scenario source-ip; portico-lab kubectl get svc; portico-lab down");
    println!("export KUBECONFIG={}", state.kubeconfig.display());
    Ok(())
}

/// How `up` starts a node's agent (and `scenario failover` restarts it).
pub(super) fn agent_command(
    agent: &Path,
    state: &LabState,
    node: &super::state::NodeState,
) -> Command {
    let mut command = command_in(&node.ns, agent);
    command
        .args(["--node-name", &node.name, "--kubeconfig"])
        .arg(&state.kubeconfig)
        .args(["--cluster-cidr", "10.244.0.0/16"])
        .args(["--healthz-bind-address", &format!("{}:10256", node.ip)])
        .args(["--admin-addr", "127.0.0.1:9473"])
        .env_remove("KUBECONFIG");
    command
}

pub fn sock(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

/// Waits until the controller wrote an ingress IP for `name`.
pub async fn wait_for_vip(services: &Api<Service>, name: &str) -> anyhow::Result<Service> {
    report::retry(Duration::from_secs(30), || async {
        let service = services.get(name).await.ok()?;
        objects::ingress_ip(&service).map(|_| service)
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("{name} got no EXTERNAL-IP within 30s (see controller.log)"))
}

/// Waits until every agent answers the health check and forwards the Cluster NodePort; an agent
/// that exits, or is not done within 30 s, fails `up` with the first error in its log.
async fn wait_for_dataplane(
    state: &LabState,
    cluster: &Service,
    health_port: u16,
) -> anyhow::Result<()> {
    let (lab, ns) = (&state.lab_binary, &state.client_ns);
    let node_port = objects::node_port(cluster).expect("a NodePort");
    for node in &state.nodes {
        let deadline = Instant::now() + Duration::from_secs(30);
        let name = format!("agent-{}", node.name);
        let record = state.processes.iter().find(|p| p.name == name);
        loop {
            if report::health_from(lab, ns, sock(node.ip, health_port))
                .await
                .is_some()
                && report::seen_from(lab, ns, sock(node.ip, node_port))
                    .await
                    .is_some()
            {
                break;
            }
            let exited = record.is_some_and(|p| !p.alive());
            if exited || Instant::now() >= deadline {
                let log = record
                    .and_then(|p| std::fs::read_to_string(&p.log).ok())
                    .unwrap_or_default();
                let what = if exited {
                    "exited"
                } else {
                    "did not program its node within 30s"
                };
                match first_error(&log) {
                    Some(error) => {
                        anyhow::bail!(
                            "the agent on {} {what}: {error} (see {name}.log)",
                            node.name
                        )
                    }
                    None => anyhow::bail!("the agent on {} {what} (see {name}.log)", node.name),
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    Ok(())
}

/// The first line of a log that reports a failure: a binary's one-line start-up error
/// (`portico-agent: ...`) or a WARN or ERROR event, without terminal colour codes.
fn first_error(log: &str) -> Option<String> {
    log.lines().map(strip_ansi).find(|line| {
        line.starts_with("portico-")
            || line
                .split_whitespace()
                .take(2)
                .any(|word| word == "ERROR" || word == "WARN")
    })
}

/// `line` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain.trim().to_owned()
}

/// Prints `kubectl get svc` with the lab's kubeconfig (or says why it could not).
pub fn kubectl_get_svc(kubeconfig: &Path) {
    let status = Command::new(super::kubectl_program())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "svc", "-n", NAMESPACE])
        .status();
    if let Err(error) = status {
        println!("(could not run kubectl: {error})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_error_of_an_agent_log_is_quoted_without_colours() {
        let log = "\u{1b}[2m2026-11-29T23:00:00Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m starting\n\
                   2026-11-29T23:00:01Z \u{1b}[31mERROR\u{1b}[0m sync failed: could not run \
                   iptables-save\n\
                   2026-11-29T23:00:02Z ERROR sync failed again\n";
        assert_eq!(
            first_error(log).unwrap(),
            "2026-11-29T23:00:01Z ERROR sync failed: could not run iptables-save"
        );
        let exited = "portico-agent: conntrack not found on PATH (install the Debian package \
                      conntrack)\n";
        assert_eq!(
            first_error(exited).unwrap(),
            "portico-agent: conntrack not found on PATH (install the Debian package conntrack)"
        );
        assert_eq!(first_error("2026-11-29T23:00:00Z  INFO starting\n"), None);
    }

    #[test]
    fn the_pool_follows_the_node_subnet() {
        assert_eq!(
            default_pool("198.18.0.0/24".parse().unwrap()).to_string(),
            "198.19.0.0/28"
        );
        assert_eq!(
            default_pool("198.18.40.0/24".parse().unwrap()).to_string(),
            "198.19.40.0/28"
        );
    }

    #[test]
    fn the_netns_layout_lines_fill_the_state() {
        let text = "ready ptl-7-0- ptl7-0\nhost ptl7-0 198.18.0.1\nclient ptl-7-0-client 198.18.0.2\n\
                    node node-0 ptl-7-0-n0 198.18.0.10 10.244.0.0/24\npod node-0 ptl-7-0-n0p0 10.244.0.2\n\
                    node node-1 ptl-7-0-n1 198.18.0.11 10.244.1.0/24\n\
                    node node-2 ptl-7-0-n2 198.18.0.12 10.244.2.0/24\n";
        let mut state = LabState::default();
        parse_layout(text, &mut state).unwrap();
        assert_eq!(state.prefix, "ptl-7-0-");
        assert_eq!(state.client_ns, "ptl-7-0-client");
        assert_eq!(state.host_ip, Some(Ipv4Addr::new(198, 18, 0, 1)));
        assert_eq!(state.nodes[0].pods[0].ip, Ipv4Addr::new(10, 244, 0, 2));
        assert_eq!(state.nodes[2].ip, Ipv4Addr::new(198, 18, 0, 12));
    }
}
