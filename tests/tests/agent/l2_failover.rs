//! The L2 announcer between nodes, with the client on the lab's LAN reaching the VIPs by ARP:
//! a Local Service's VIP follows its only endpoint to another node, and graceful restarts
//! (SIGTERM) of the owner's agent hand the VIP over and back without one failed request, a
//! request open across the flip included.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use portico_lab::demo::l2;
use portico_lab::demo::objects::{self, ECHO_PORT};
use portico_lab::netns::echo::echo_field;
use portico_lab::netns::process::NsChild;
use portico_lab::netns::sampler::{Sample, Sampler, error_lines, failed};
use portico_lab::netns::{LabTopology, NodeLayout};
use portico_tests::lab_cluster::{ingress_ips, wait_for};

use crate::two_nodes::{TwoNodeLab, two_node_lab};

/// The real agent in `node`'s namespace, its log in `dir`, with `extra` flags.
pub(crate) fn start_agent(
    lab: &LabTopology,
    node: &NodeLayout,
    kubeconfig: &Path,
    dir: &Path,
    extra: &[&str],
) -> NsChild {
    let binary = portico_tests::workspace_binary("portico-agent").expect("portico-agent is built");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("agent-{}.log", node.name)))
        .unwrap();
    let mut command = lab.command_in(&node.ns, binary);
    command
        .args(["--node-name", &node.name, "--kubeconfig"])
        .arg(kubeconfig)
        .args(["--cluster-cidr", "10.244.0.0/16"])
        .args(["--healthz-bind-address", &format!("{}:10256", node.ip)])
        .args(["--admin-addr", "127.0.0.1:9473"])
        .args(extra)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    NsChild::spawn(&node.ns, command).expect("agent starts")
}

/// Asserts no request of `samples` failed, naming the errors and the agents' logs.
pub(crate) fn assert_none_failed(samples: &[Sample], during: &str, l2lab: &L2Lab) {
    assert_eq!(
        failed(samples),
        0,
        "requests failed {during} ({} sent): {:?}\n{}",
        samples.len(),
        error_lines(samples),
        logs(l2lab.logs.path())
    );
}

pub(crate) fn logs(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        out += &format!("--- {}\n", entry.path().display());
        out += &std::fs::read_to_string(entry.path()).unwrap_or_default();
    }
    out
}

/// The lab with echo servers in both nodes' pods, the controller, an L2Announcement for every
/// pool, the pool on-link for the client, and an agent on each node.
pub(crate) struct L2Lab {
    pub(crate) lab: TwoNodeLab,
    _echo: Vec<NsChild>,
    _controller: portico_tests::lab_cluster::Process,
    pub(crate) agents: Vec<Option<NsChild>>,
    pub(crate) logs: tempfile::TempDir,
}

pub(crate) async fn l2_lab(node_subnet: &str, pool: &str) -> L2Lab {
    let lab = two_node_lab(node_subnet).await;
    let echo = lab
        .lab
        .nodes()
        .iter()
        .map(|node| {
            lab.lab
                .spawn_echo_server(
                    &node.pods[0].ns,
                    SocketAddr::from(([0, 0, 0, 0], ECHO_PORT)),
                )
                .unwrap()
        })
        .collect();
    lab.cluster.create_pool("vips", &[pool], true).await;
    l2::create_l2_announcement(&lab.cluster.client, "all")
        .await
        .unwrap();
    l2::route_pool_on_link(lab.lab.client_ns(), pool.parse().unwrap()).unwrap();
    let controller = lab.cluster.spawn_controller("controller", &[]);
    let logs = tempfile::tempdir().unwrap();
    let agents = lab
        .lab
        .nodes()
        .iter()
        .map(|node| {
            Some(start_agent(
                &lab.lab,
                node,
                &lab.kubeconfig,
                logs.path(),
                &[],
            ))
        })
        .collect();
    L2Lab {
        lab,
        _echo: echo,
        _controller: controller,
        agents,
        logs,
    }
}

impl L2Lab {
    /// A request from the client to `vip`:80 every 25 ms, each given 2 s, until stopped.
    pub(crate) fn sample(&self, vip: Ipv4Addr) -> Sampler {
        let lab = &self.lab.lab;
        Sampler::start(
            lab.lab_binary().to_path_buf(),
            lab.client_ns().to_owned(),
            SocketAddr::from((vip, 80)),
            Duration::from_millis(25),
            Duration::from_secs(2),
        )
    }

    pub(crate) async fn service(&self, name: &str, policy: &str, endpoint_node: usize) -> Ipv4Addr {
        let cluster = &self.lab.cluster;
        cluster
            .create_service("default", &objects::echo_service(name, policy))
            .await;
        self.put_endpoint(name, endpoint_node).await;
        let services = cluster.services("default");
        wait_for(
            &format!("a VIP for {name}"),
            Duration::from_secs(20),
            || async {
                ingress_ips(&services.get(name).await.ok()?)
                    .first()?
                    .parse()
                    .ok()
            },
        )
        .await
    }

    /// The Service's one endpoint: the pod on node `index`.
    pub(crate) async fn put_endpoint(&self, name: &str, index: usize) {
        let node = &self.lab.lab.nodes()[index];
        let slices: Api<EndpointSlice> =
            Api::namespaced(self.lab.cluster.client.clone(), "default");
        let slice = objects::echo_slice(name, &node.name, node.pods[0].ip);
        let slice_name = slice.metadata.name.clone().unwrap();
        let _ = slices.delete(&slice_name, &DeleteParams::default()).await;
        wait_for("the EndpointSlice", Duration::from_secs(10), || async {
            slices.create(&PostParams::default(), &slice).await.ok()
        })
        .await;
    }

    /// The index of the node whose MAC answers ARP for `vip` from the client, once all the
    /// answers (two requests) come from that one node.
    pub(crate) async fn owner(&self, vip: Ipv4Addr, not: Option<usize>) -> usize {
        let lab = &self.lab.lab;
        wait_for(
            &format!("one node other than {not:?} to answer ARP for {vip}"),
            Duration::from_secs(30),
            || async {
                let macs = l2::arping_reply_macs(lab.client_ns(), vip, 2).ok()?;
                let first = macs.first()?;
                if macs.iter().any(|m| m != first) {
                    return None;
                }
                let index = lab.nodes().iter().position(|n| {
                    l2::mac_of(&n.ns, l2::LAN_INTERFACE).ok().as_ref() == Some(first)
                })?;
                (Some(index) != not).then_some(index)
            },
        )
        .await
    }

    /// The address the echo server saw for a request from the client to `vip`.
    pub(crate) async fn seen(&self, vip: Ipv4Addr) -> Option<String> {
        let body = self
            .lab
            .lab
            .tcp_request_from(self.lab.lab.client_ns(), SocketAddr::from((vip, 80)))
            .await
            .ok()?;
        echo_field(&body, "client_address").map(str::to_owned)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_services_vip_moves_with_its_only_endpoint() {
    if !portico_tests::require_root() {
        return;
    }
    let l2lab = l2_lab("198.18.33.0/24", "198.19.33.0/28").await;
    let vip = l2lab.service("local-move", "Local", 0).await;
    assert_eq!(
        l2lab.owner(vip, None).await,
        0,
        "{}",
        logs(l2lab.logs.path())
    );
    let client_ip = l2lab.lab.lab.client_ip().to_string();
    let seen = wait_for("the Local VIP to answer", Duration::from_secs(30), || {
        l2lab.seen(vip)
    })
    .await;
    assert_eq!(seen, client_ip, "Local keeps the client's address");

    // The endpoint moves to node-1: only node-1 may announce the VIP now.
    l2lab.put_endpoint("local-move", 1).await;
    assert_eq!(
        l2lab.owner(vip, Some(0)).await,
        1,
        "{}",
        logs(l2lab.logs.path())
    );
    let seen = wait_for(
        "the Local VIP to answer through node-1",
        Duration::from_secs(30),
        || async {
            let body = l2lab
                .lab
                .lab
                .tcp_request_from(l2lab.lab.lab.client_ns(), SocketAddr::from((vip, 80)))
                .await
                .ok()?;
            (echo_field(&body, "namespace")? == l2lab.lab.lab.nodes()[1].pods[0].ns)
                .then(|| echo_field(&body, "client_address").map(str::to_owned))
                .flatten()
        },
    )
    .await;
    assert_eq!(seen, client_ip);
    let L2Lab { lab, agents, .. } = l2lab;
    drop(agents);
    tokio::task::spawn_blocking(move || lab.lab.teardown())
        .await
        .unwrap();
}

/// An HTTP request held open from the client to the VIP: its head goes out a line at a time
/// (the echo server answers only once the head is complete) until the client's neighbour entry
/// for the VIP names another node, so that its last packets reach the new owner.
struct OpenRequest {
    child: std::process::Child,
}

impl OpenRequest {
    fn open(lab: &LabTopology, vip: Ipv4Addr) -> OpenRequest {
        // bash's /dev/tcp: one connection, written on each line the test sends, then read whole
        // (a reset fails `cat`).
        let script = format!(
            "exec 3<>/dev/tcp/{vip}/80 || exit 2; printf 'GET / HTTP/1.1\\r\\nHost: vip\\r\\n' >&3; \
             echo open; while read -r line; do [ \"$line\" = end ] && break; \
             printf 'X-Wait: 1\\r\\n' >&3; done; printf '\\r\\n' >&3; cat <&3"
        );
        let mut child = std::process::Command::new("ip")
            .args(["netns", "exec", lab.client_ns(), "bash", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash runs");
        let mut first = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut first,
        )
        .unwrap();
        assert_eq!(first.trim(), "open", "the client connects to {vip}");
        OpenRequest { child }
    }

    fn send_line(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Keeps the request going until the client's neighbour entry for `vip` is `mac`.
    async fn until_client_resolves(&mut self, lab: &LabTopology, vip: Ipv4Addr, mac: &str) {
        let started = Instant::now();
        while l2::neighbour_mac(lab.client_ns(), vip).as_deref() != Some(mac) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the client never resolved {vip} to {mac}"
            );
            self.send_line("more");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A few more packets after the flip, to the new owner.
        self.send_line("more");
        self.send_line("more");
    }

    /// Ends the head and reads the answer: the address the pod saw, or why it failed.
    fn finish(mut self) -> Result<String, String> {
        self.send_line("end");
        let output = self.child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        match echo_field(&stdout, "client_address") {
            Some(seen) if output.status.success() => Ok(seen.to_owned()),
            _ => Err(format!(
                "{}: {stdout}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )),
        }
    }
}

/// SIGTERMs the agent and waits for it to exit (successfully: it left the membership).
pub(crate) fn stop_gracefully(mut agent: NsChild, logs_dir: &Path) {
    let stopped = Instant::now();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status();
    let child = agent.child_mut();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "agent did not stop"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{}", logs(logs_dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restarts_of_the_owners_agent_fail_no_request() {
    if !portico_tests::require_root() {
        return;
    }
    let mut l2lab = l2_lab("198.18.34.0/24", "198.19.34.0/28").await;
    // Cluster, with the endpoint on node-0: the owner's restart is only about the announcement.
    // The VIP's owner is whichever node the hash picks; the two nodes masquerade to different
    // addresses, so a connection that moves between them mid-way is reset.
    let vip = l2lab.service("restart", "Cluster", 0).await;
    let owner = l2lab.owner(vip, None).await;
    let other = 1 - owner;
    // The address the pod sees through the owner (its node's, or its pod gateway's when the
    // endpoint is on the owner).
    let owner_ip = wait_for(
        "the VIP to answer through its owner",
        Duration::from_secs(30),
        || l2lab.seen(vip),
    )
    .await;
    let macs: Vec<String> = l2lab
        .lab
        .lab
        .nodes()
        .iter()
        .map(|n| l2::mac_of(&n.ns, l2::LAN_INTERFACE).unwrap())
        .collect();
    let node = l2lab.lab.lab.nodes()[owner].clone();
    let restart = |l2lab: &mut L2Lab| {
        l2lab.agents[owner] = Some(start_agent(
            &l2lab.lab.lab,
            &node,
            &l2lab.lab.kubeconfig,
            l2lab.logs.path(),
            &[],
        ));
    };

    // The other node stands by before anything fails: its hand-back rule for the VIP names the
    // owner (so its takeover writes no rule before announcing).
    let (other_ns, owner_node_ip) = (
        l2lab.lab.lab.nodes()[other].ns.clone(),
        l2lab.lab.lab.nodes()[owner].ip.to_string(),
    );
    wait_for(
        "the other node's standby hand-back rule",
        Duration::from_secs(30),
        || async {
            let out = std::process::Command::new("ip")
                .args(["netns", "exec", &other_ns, "iptables-save", "-t", "mangle"])
                .output()
                .ok()?;
            let rules = String::from_utf8_lossy(&out.stdout);
            rules
                .lines()
                .any(|rule| {
                    rule.contains(&format!("-d {vip}/32"))
                        && rule.contains(&format!("--gateway {owner_node_ip}"))
                })
                .then_some(())
        },
    )
    .await;
    // A request open through the owner while it hands the VIP over: the packets that reach the
    // new owner after the flip are handed back, and the answer comes through the old owner.
    let mut open = OpenRequest::open(&l2lab.lab.lab, vip);
    stop_gracefully(l2lab.agents[owner].take().unwrap(), l2lab.logs.path());
    open.until_client_resolves(&l2lab.lab.lab, vip, &macs[other])
        .await;
    assert_eq!(
        open.finish(),
        Ok(owner_ip.clone()),
        "a request open at the handover ends through the old owner\n{}",
        logs(l2lab.logs.path())
    );
    // ... and one open through the other node while the restarted owner takes the VIP back.
    let other_ip = wait_for(
        "the VIP to answer through the other node",
        Duration::from_secs(30),
        || async { l2lab.seen(vip).await.filter(|seen| *seen != owner_ip) },
    )
    .await;
    let mut open = OpenRequest::open(&l2lab.lab.lab, vip);
    restart(&mut l2lab);
    open.until_client_resolves(&l2lab.lab.lab, vip, &macs[owner])
        .await;
    assert_eq!(
        open.finish(),
        Ok(other_ip),
        "a request open at the hand-back ends through the node that had the VIP\n{}",
        logs(l2lab.logs.path())
    );
    assert_eq!(l2lab.owner(vip, Some(other)).await, owner);

    // Several restarts in a row (a rolling update), a new request every 25 ms throughout.
    let sampler = l2lab.sample(vip);
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop_gracefully(l2lab.agents[owner].take().unwrap(), l2lab.logs.path());
        assert_eq!(l2lab.owner(vip, Some(owner)).await, other);
        restart(&mut l2lab);
        assert_eq!(l2lab.owner(vip, Some(other)).await, owner);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let samples = sampler.stop().await;
    let through: std::collections::BTreeSet<String> = samples
        .iter()
        .filter_map(|s| echo_field(s.answer.as_deref()?, "client_address").map(str::to_owned))
        .collect();
    assert!(
        through.iter().any(|seen| *seen != owner_ip),
        "the other node carried traffic while the owner restarted: {through:?}"
    );
    assert_none_failed(&samples, "during the handovers", &l2lab);
    let L2Lab { lab, agents, .. } = l2lab;
    drop(agents);
    // `--cleanup` removes the hand-back chain an agent left (the other node's was killed).
    let mangle = || {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &other_ns, "iptables-save", "-t", "mangle"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(mangle().contains(":PORTICO-L2-HANDOFF"), "{}", mangle());
    let cleanup = std::process::Command::new("ip")
        .args(["netns", "exec", &other_ns])
        .arg(portico_tests::workspace_binary("portico-agent").unwrap())
        .arg("--cleanup")
        .output()
        .unwrap();
    assert!(cleanup.status.success(), "{cleanup:?}");
    assert!(!mangle().contains("PORTICO"), "{}", mangle());
    tokio::task::spawn_blocking(move || lab.lab.teardown())
        .await
        .unwrap();
}
