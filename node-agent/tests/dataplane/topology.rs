//! The namespaces, veths and routes of one test, removed on drop. Names start with `ptc-dp-`
//! and carry the process id, so leftovers of a killed run are recognised and removed first.

use std::process::Command;
use std::sync::Once;

pub const PREFIX: &str = "ptc-dp-";
pub const CLIENT_IP: &str = "198.18.0.2";
pub const NODE_IP: &str = "198.18.0.10";
/// The node's address towards its pods, which masqueraded traffic to a pod carries.
pub const NODE_POD_GATEWAY: &str = "10.244.0.1";
pub const POD_A_IP: &str = "10.244.0.7";
pub const POD_B_IP: &str = "10.244.0.8";
pub const LB_IP: &str = "198.18.0.200";
pub const NODE_NAME: &str = "node-a";
pub const ECHO_PORT: u16 = 8080;

/// True when the test may run; false (after a message) when it should skip. Fails without
/// root when `CI` is set, so CI cannot pass by skipping.
pub fn root_or_skip(test: &str) -> bool {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("Uid:")
                    .map(|uids| uids.split_whitespace().next() == Some("0"))
            })
        })
        .unwrap_or(false);
    if is_root {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs root (network namespaces and iptables); CI must run it as root");
    }
    eprintln!("skipping {test}: needs root (network namespaces and iptables)");
    false
}

pub fn run(args: &[&str]) {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn in_ns(netns: &str, args: &[&str]) {
    let mut full = vec!["ip", "netns", "exec", netns];
    full.extend_from_slice(args);
    run(&full);
}

pub fn output_in_ns(netns: &str, args: &[&str]) -> String {
    let output = Command::new("ip")
        .args(["netns", "exec", netns])
        .args(args)
        .output()
        .expect("spawn");
    assert!(
        output.status.success(),
        "{args:?} in {netns} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Removes namespaces of earlier runs (any `ptc-dp-` namespace not of this process).
fn remove_leftovers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let own = format!("{PREFIX}{}-", std::process::id());
        let listing = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list");
        for line in String::from_utf8_lossy(&listing.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            if name.starts_with(PREFIX) && !name.starts_with(&own) {
                let _ = Command::new("ip").args(["netns", "del", name]).status();
            }
        }
    });
}

/// client, node, pod-a and pod-b namespaces wired as in the module diagram of `main.rs`.
pub struct Topology {
    pub client: String,
    pub node: String,
    pub pod_a: String,
    pub pod_b: String,
}

impl Topology {
    pub fn new(tag: &str) -> Self {
        remove_leftovers();
        let base = format!("{PREFIX}{}-{tag}", std::process::id());
        let topology = Topology {
            client: format!("{base}-c"),
            node: format!("{base}-n"),
            pod_a: format!("{base}-a"),
            pod_b: format!("{base}-b"),
        };
        for netns in topology.all() {
            run(&["ip", "netns", "add", netns]);
            in_ns(netns, &["ip", "link", "set", "lo", "up"]);
        }
        let (client, node) = (topology.client.as_str(), topology.node.as_str());
        in_ns(node, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        run(&[
            "ip", "-n", client, "link", "add", "eth0", "type", "veth", "peer", "name", "uplink",
            "netns", node,
        ]);
        in_ns(
            client,
            &[
                "ip",
                "addr",
                "add",
                &format!("{CLIENT_IP}/24"),
                "dev",
                "eth0",
            ],
        );
        in_ns(client, &["ip", "link", "set", "eth0", "up"]);
        in_ns(
            client,
            &["ip", "route", "add", &format!("{LB_IP}/32"), "via", NODE_IP],
        );
        in_ns(
            node,
            &[
                "ip",
                "addr",
                "add",
                &format!("{NODE_IP}/24"),
                "dev",
                "uplink",
            ],
        );
        in_ns(node, &["ip", "link", "set", "uplink", "up"]);
        // Traffic to Services without endpoints must be routable to reach the REJECT in FORWARD.
        in_ns(
            node,
            &["ip", "route", "add", "default", "via", "198.18.0.1"],
        );
        for (pod, pod_ip, host_if) in [
            (&topology.pod_a, POD_A_IP, "pod-a"),
            (&topology.pod_b, POD_B_IP, "pod-b"),
        ] {
            run(&[
                "ip", "-n", pod, "link", "add", "eth0", "type", "veth", "peer", "name", host_if,
                "netns", node,
            ]);
            in_ns(
                pod,
                &["ip", "addr", "add", &format!("{pod_ip}/32"), "dev", "eth0"],
            );
            in_ns(pod, &["ip", "link", "set", "eth0", "up"]);
            in_ns(
                pod,
                &["ip", "route", "add", NODE_POD_GATEWAY, "dev", "eth0"],
            );
            in_ns(
                pod,
                &["ip", "route", "add", "default", "via", NODE_POD_GATEWAY],
            );
            in_ns(
                node,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("{NODE_POD_GATEWAY}/32"),
                    "dev",
                    host_if,
                ],
            );
            in_ns(node, &["ip", "link", "set", host_if, "up"]);
            in_ns(
                node,
                &[
                    "ip",
                    "route",
                    "add",
                    &format!("{pod_ip}/32"),
                    "dev",
                    host_if,
                ],
            );
        }
        topology
    }

    fn all(&self) -> [&String; 4] {
        [&self.client, &self.node, &self.pod_a, &self.pod_b]
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for netns in self.all() {
            let _ = Command::new("ip").args(["netns", "del", netns]).status();
        }
    }
}
