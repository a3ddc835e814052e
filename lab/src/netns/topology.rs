//! `LabTopology`: the namespace cluster of one `Layout`, built with `ip` and removed on
//! `teardown()` or drop. Everything here is best effort on the way out (log, never panic), and
//! a failed build removes what it had built.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ipnet::Ipv4Net;

use super::layout::{CloudLayout, LabSpec, Layout, NodeLayout, ip};
use super::names::Prefix;
use super::probe::{HttpReply, ProbeMode, parse_http_reply, probe_from};
use super::process::{NsChild, command_in};
use super::{NetnsError, cmd, leftovers};

/// How long probes and servers get unless a caller says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// A live namespace cluster; see the module docs of `netns` for the picture.
#[derive(Debug)]
pub struct LabTopology {
    layout: Layout,
    lab_binary: PathBuf,
    probe_timeout: Duration,
    torn_down: bool,
}

impl LabTopology {
    /// Removes leftovers of dead earlier runs, then builds `spec` under a fresh prefix.
    /// Blocking (a few hundred `ip` calls at most); from async code prefer `spawn_blocking`.
    pub fn create(spec: LabSpec) -> Result<Self, NetnsError> {
        let layout = Layout::plan(&spec, Prefix::for_this_process())?;
        leftovers::sweep_dead_runs()?;
        // The handle exists before the first command, so a failure part way tears down what
        // was built.
        let mut topology = LabTopology {
            layout,
            lab_binary: spec.lab_binary,
            probe_timeout: DEFAULT_TIMEOUT,
            torn_down: false,
        };
        // A PID can be reused: whatever carries this exact prefix is not ours, but stale.
        topology.remove_all();
        for ns in topology.layout.namespaces() {
            cmd::run_args(&["ip", "netns", "add", &ns])?;
        }
        for argv in topology.layout.build_commands() {
            cmd::run(&argv)?;
        }
        tracing::info!(
            prefix = topology.layout.prefix.namespace_start(),
            nodes = topology.layout.nodes.len(),
            "lab network namespaces up"
        );
        Ok(topology)
    }

    /// Names and addresses of everything.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The nodes, in index order (`node-0` first).
    pub fn nodes(&self) -> &[NodeLayout] {
        &self.layout.nodes
    }

    /// A node by its name.
    pub fn node(&self, name: &str) -> Result<&NodeLayout, NetnsError> {
        self.layout
            .node(name)
            .ok_or_else(|| NetnsError::UnknownNode(name.to_owned()))
    }

    /// The client namespace: outside the cluster, routes only its subnet until told more.
    pub fn client_ns(&self) -> &str {
        &self.layout.client_ns
    }

    pub fn client_ip(&self) -> Ipv4Addr {
        self.layout.client_ip
    }

    /// The cloud namespace between the client and the nodes, for labs built `with_cloud()`.
    pub fn cloud(&self) -> Option<&CloudLayout> {
        self.layout.cloud.as_ref()
    }

    /// The host namespace's address on the lab bridge (`198.18.0.1`): where the lab API
    /// server listens for the nodes.
    pub fn host_ip(&self) -> Ipv4Addr {
        self.layout.host_ip
    }

    /// The `portico-lab` executable this lab runs echo servers and probes with.
    pub fn lab_binary(&self) -> &Path {
        &self.lab_binary
    }

    /// How long `tcp_request_from` and friends wait for an answer (3 s unless set).
    pub fn set_probe_timeout(&mut self, timeout: Duration) {
        self.probe_timeout = timeout;
    }

    /// Routes `vip` from the client namespace via `node`'s IP (a static stand-in for the L2
    /// announcer). Replaces an earlier route for the same VIP.
    pub fn route_vip_via(&self, vip: Ipv4Addr, node: &str) -> Result<(), NetnsError> {
        self.route_via(Ipv4Net::from(vip), node)
    }

    /// Routes `destination` from the client namespace via `node`'s IP.
    pub fn route_via(&self, destination: Ipv4Net, node: &str) -> Result<(), NetnsError> {
        let via = self.node(node)?.ip;
        let args = format!("route replace {} via {via}", destination.trunc());
        cmd::run(&ip(Some(&self.layout.client_ns), &args)).map(drop)
    }

    /// Removes the client's route to `destination` (a VIP as `/32`); absent is fine.
    pub fn remove_route(&self, destination: Ipv4Net) -> Result<(), NetnsError> {
        let ns = &self.layout.client_ns;
        let args = format!("route del {}", destination.trunc());
        match cmd::run(&ip(Some(ns), &args)) {
            Err(NetnsError::Command { stderr, .. }) if stderr.contains("No such process") => Ok(()),
            other => other.map(drop),
        }
    }

    /// A `Command` running `program` in `ns` (any namespace; the lab's are in `layout()`).
    pub fn command_in(
        &self,
        ns: &str,
        program: impl AsRef<std::ffi::OsStr>,
    ) -> std::process::Command {
        command_in(ns, program)
    }

    /// Spawns `program args..` in `ns`; it is killed when the returned child drops and, at the
    /// latest, on teardown.
    pub fn spawn_in(
        &self,
        ns: &str,
        program: impl AsRef<std::ffi::OsStr>,
        args: &[&str],
    ) -> Result<NsChild, NetnsError> {
        let mut command = command_in(ns, program);
        command.args(args).stdin(Stdio::null());
        NsChild::spawn(ns, command)
    }

    /// Runs `program args..` in `ns` to completion; returns stdout, or an error with stderr.
    pub fn run_in(&self, ns: &str, program: &str, args: &[&str]) -> Result<String, NetnsError> {
        let mut argv = vec!["ip", "netns", "exec", ns, program];
        argv.extend_from_slice(args);
        cmd::run_args(&argv)
    }

    /// Starts `portico-lab echo-server --listen <listen>` in `ns` and waits until it listens.
    pub fn spawn_echo_server(&self, ns: &str, listen: SocketAddr) -> Result<NsChild, NetnsError> {
        let mut command = command_in(ns, &self.lab_binary);
        command
            .args(["echo-server", "--listen", &listen.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut child = NsChild::spawn(ns, command)?;
        child.wait_for_line("echo-server", DEFAULT_TIMEOUT * 3)?;
        Ok(child)
    }

    /// A raw TCP request from `ns` to `target`: the echo body, or why there was none.
    pub async fn tcp_request_from(
        &self,
        ns: &str,
        target: SocketAddr,
    ) -> Result<String, NetnsError> {
        probe_from(
            &self.lab_binary,
            ns,
            target,
            ProbeMode::Tcp,
            "/",
            self.probe_timeout,
        )
        .await
    }

    /// One UDP datagram from `ns` to `target` and the answer.
    pub async fn udp_request_from(
        &self,
        ns: &str,
        target: SocketAddr,
    ) -> Result<String, NetnsError> {
        probe_from(
            &self.lab_binary,
            ns,
            target,
            ProbeMode::Udp,
            "/",
            self.probe_timeout,
        )
        .await
    }

    /// `GET path` from `ns`: status, headers and body, whatever the status.
    pub async fn http_get_from(
        &self,
        ns: &str,
        target: SocketAddr,
        path: &str,
    ) -> Result<HttpReply, NetnsError> {
        let raw = probe_from(
            &self.lab_binary,
            ns,
            target,
            ProbeMode::Http,
            path,
            self.probe_timeout,
        )
        .await?;
        parse_http_reply(&raw).ok_or_else(|| NetnsError::Probe {
            ns: ns.to_owned(),
            target,
            message: format!("not an HTTP response: {raw:?}"),
        })
    }

    /// `GET /` from `ns` like `curl -s`: the body of a 2xx answer, else an error.
    pub async fn curl_from(&self, ns: &str, target: SocketAddr) -> Result<String, NetnsError> {
        let reply = self.http_get_from(ns, target, "/").await?;
        if !(200..300).contains(&reply.status) {
            return Err(NetnsError::Probe {
                ns: ns.to_owned(),
                target,
                message: format!("HTTP {}: {}", reply.status, reply.body),
            });
        }
        Ok(reply.body)
    }

    /// Kills every process in the lab's namespaces and removes namespaces and host link.
    pub fn teardown(mut self) {
        self.remove_all();
        self.torn_down = true;
    }

    fn remove_all(&mut self) {
        // The host leg first: deleting it takes its bridge-side peer at once, whereas a
        // namespace's links go only when the kernel gets to the namespace's cleanup.
        let host_link = &self.layout.host_link;
        if cmd::list_host_links().is_ok_and(|links| links.contains(host_link)) {
            cmd::best_effort(&["ip", "link", "delete", host_link]);
        }
        // A lab cloud's DNS names for the client (`cloud::aws_run::client_hosts_path`).
        let etc = Path::new("/etc/netns").join(&self.layout.client_ns);
        if etc.exists() {
            let _ = std::fs::remove_dir_all(&etc);
        }
        let existing = cmd::list_namespaces().unwrap_or_default();
        // Pods before nodes before the bridge: the reverse of creation.
        for ns in self.layout.namespaces().iter().rev() {
            if existing.contains(ns) {
                cmd::delete_namespace(ns);
            }
        }
    }
}

impl Drop for LabTopology {
    fn drop(&mut self) {
        if !self.torn_down {
            self.remove_all();
        }
    }
}
