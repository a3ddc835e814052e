//! Node namespaces for agent tests: each node gets a namespace with one veth to the host
//! namespace, on a /24 of its own within 198.18.0.0/15 (the benchmarking range). The lab API
//! server listens on the host side of every veth, as a control plane reached by kubelets.
//! Names carry `ptc-ag-<pid>`, and leftovers of killed runs are removed first.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const PREFIX: &str = "ptc-ag-";

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

fn pid_alive(pid: &str) -> bool {
    Path::new("/proc").join(pid).exists()
}

/// Removes namespaces and host links of earlier runs whose process is gone.
pub fn remove_leftovers() {
    let listing = run(&["ip", "netns", "list"]);
    for name in listing.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        if !pid_alive(pid) {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// One node: its namespace, its address and the host side of its veth.
pub struct NodeNs {
    pub name: String,
    pub netns: String,
    host_link: String,
    pub node_ip: IpAddr,
    pub host_ip: IpAddr,
    agent: Option<Child>,
    pub log: PathBuf,
}

impl NodeNs {
    /// `index` picks the subnet 198.18.(90 + index).0/24 and names; unique per test.
    pub fn create(name: &str, index: u8, log_dir: &Path) -> NodeNs {
        let pid = std::process::id();
        let netns = format!("{PREFIX}{pid}-{name}");
        // Interface names are at most 15 bytes.
        let host_link = format!("pag{}h{index}", pid % 100_000);
        let node_link = format!("pag{}n{index}", pid % 100_000);
        let subnet = 90 + u16::from(index);
        let host_ip: IpAddr = format!("198.18.{subnet}.1").parse().unwrap();
        let node_ip: IpAddr = format!("198.18.{subnet}.10").parse().unwrap();
        let _ = Command::new("ip")
            .args(["link", "del", &host_link])
            .status();
        run(&["ip", "netns", "add", &netns]);
        run(&[
            "ip", "link", "add", &host_link, "type", "veth", "peer", "name", &node_link,
        ]);
        run(&["ip", "link", "set", &node_link, "netns", &netns]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{host_ip}/24"),
            "dev",
            &host_link,
        ]);
        run(&["ip", "link", "set", &host_link, "up"]);
        let in_ns = |args: &[&str]| {
            let mut full = vec!["ip", "netns", "exec", &netns];
            full.extend_from_slice(args);
            run(&full);
        };
        in_ns(&[
            "ip",
            "addr",
            "add",
            &format!("{node_ip}/24"),
            "dev",
            &node_link,
        ]);
        in_ns(&["ip", "link", "set", &node_link, "up"]);
        in_ns(&["ip", "link", "set", "lo", "up"]);
        NodeNs {
            name: name.to_owned(),
            netns,
            host_link,
            node_ip,
            host_ip,
            agent: None,
            log: log_dir.join(format!("agent-{name}.log")),
        }
    }

    /// Starts the real agent in this node's namespace.
    pub fn start_agent(&mut self, kubeconfig: &Path) {
        self.start_agent_with(kubeconfig, &[]);
    }

    /// Starts the real agent with `extra` flags after the usual ones.
    pub fn start_agent_with(&mut self, kubeconfig: &Path, extra: &[&str]) {
        let binary =
            portico_tests::workspace_binary("portico-agent").expect("portico-agent is built");
        let log = std::fs::File::create(&self.log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .arg(binary)
            .args(["--node-name", &self.name, "--kubeconfig"])
            .arg(kubeconfig)
            .args([
                "--healthz-bind-address",
                &SocketAddr::new(self.node_ip, 10256).to_string(),
            ])
            .args([
                "--admin-addr",
                "127.0.0.1:9473",
                "--cluster-cidr",
                "10.244.0.0/16",
            ])
            .args(extra)
            .env_remove("KUBECONFIG")
            .env("PORTICO_LOG_LEVEL", "info,portico_agent::run=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("agent starts");
        self.agent = Some(child);
    }

    pub fn stop_agent(&mut self) {
        if let Some(child) = self.agent.take() {
            assert!(
                portico_tests::cli::terminate(child).success(),
                "agent exits cleanly on SIGTERM:\n{}",
                self.logs()
            );
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .args(args)
            .output()
            .expect("spawn")
    }
}

impl Drop for NodeNs {
    fn drop(&mut self) {
        if let Some(mut child) = self.agent.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_link])
            .status();
    }
}
