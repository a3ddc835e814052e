//! The node's network namespace (one veth to the host, where the lab API server listens) and
//! the commands the bench runs.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

pub fn run(args: &[&str]) -> String {
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
pub struct NodeNs {
    pub netns: String,
    host_link: String,
    pub host_ip: IpAddr,
    pub node_ip: IpAddr,
}

impl NodeNs {
    pub fn create() -> NodeNs {
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

    pub fn exec(&self, args: &[&str]) -> String {
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

pub fn remove_leftovers() {
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
