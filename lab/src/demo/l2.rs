//! The lab's LAN as the L2 announcer leaves it: the client reaches the VIPs by ARP (the pool is
//! on-link on its interface, as on a real LAN), and which node answers is read from the
//! client's neighbour table or with `arping`, and matched to the node by its MAC.

use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;
use kube::api::PostParams;
use kube::{Api, Client};
use portico_api::{L2Announcement, L2AnnouncementSpec};

use super::state::LabState;
use crate::netns::cmd;
use crate::netns::layout::ip;

/// The interface of the client and node namespaces on the lab's bridge.
pub const LAN_INTERFACE: &str = "eth0";

/// An `L2Announcement` that announces every pool from every node on its default interface.
pub async fn create_l2_announcement(client: &Client, name: &str) -> anyhow::Result<()> {
    Api::<L2Announcement>::all(client.clone())
        .create(
            &PostParams::default(),
            &L2Announcement::new(name, L2AnnouncementSpec::default()),
        )
        .await?;
    Ok(())
}

/// Makes the pool on-link in the client namespace: the client asks for VIPs with ARP.
pub fn route_pool_on_link(client_ns: &str, pool: Ipv4Net) -> anyhow::Result<()> {
    cmd::run(&ip(
        Some(client_ns),
        &format!("route replace {pool} dev {LAN_INTERFACE}"),
    ))?;
    Ok(())
}

/// The MAC of `interface` in `ns`.
pub fn mac_of(ns: &str, interface: &str) -> anyhow::Result<String> {
    let path = format!("/sys/class/net/{interface}/address");
    let out = cmd::run_args(&["ip", "netns", "exec", ns, "cat", &path])?;
    Ok(out.trim().to_ascii_lowercase())
}

/// The node whose LAN MAC is `mac`.
pub fn node_with_mac(state: &LabState, mac: &str) -> Option<String> {
    state
        .nodes
        .iter()
        .find(|node| mac_of(&node.ns, LAN_INTERFACE).is_ok_and(|m| m == mac))
        .map(|node| node.name.clone())
}

/// The MAC the client's neighbour table holds for `vip`, if it has a usable entry.
pub fn neighbour_mac(client_ns: &str, vip: Ipv4Addr) -> Option<String> {
    let out = cmd::run(&ip(Some(client_ns), &format!("neigh show {vip}"))).ok()?;
    parse_neighbour_mac(&out)
}

fn parse_neighbour_mac(out: &str) -> Option<String> {
    let line = out.lines().next()?;
    if line.contains("FAILED") || line.contains("INCOMPLETE") {
        return None;
    }
    let mut words = line.split_whitespace();
    words.find(|w| *w == "lladdr")?;
    words.next().map(str::to_ascii_lowercase)
}

/// The node that owns `vip` as the client sees it (after traffic has resolved it).
pub fn owner_seen_by_client(state: &LabState, vip: Ipv4Addr) -> Option<String> {
    node_with_mac(state, &neighbour_mac(&state.client_ns, vip)?)
}

/// The MACs of every ARP reply the client gets for `count` requests for `vip` (`arping`,
/// one second apart): one owner answers each request once.
pub fn arping_reply_macs(
    client_ns: &str,
    vip: Ipv4Addr,
    count: u32,
) -> anyhow::Result<Vec<String>> {
    let output = std::process::Command::new("ip")
        .args(["netns", "exec", client_ns, "arping", "-i", LAN_INTERFACE])
        .args(["-c", &count.to_string(), "-w", "5"])
        .arg(vip.to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run arping (Debian package arping): {e}"))?;
    Ok(parse_arping(&String::from_utf8_lossy(&output.stdout)))
}

/// `60 bytes from 02:..:0a (198.19.0.1): index=0 time=...` lines → the MACs.
fn parse_arping(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|line| {
            let rest = line.split(" bytes from ").nth(1)?;
            rest.split_whitespace().next().map(str::to_ascii_lowercase)
        })
        .collect()
}

/// How long to wait for the announcer to answer for a new VIP.
pub const ANNOUNCE_WAIT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbour_and_arping_output_parse() {
        assert_eq!(
            parse_neighbour_mac("198.19.0.1 dev eth0 lladdr 02:AA:bb:cc:dd:ee REACHABLE\n"),
            Some("02:aa:bb:cc:dd:ee".into())
        );
        assert_eq!(parse_neighbour_mac("198.19.0.1 dev eth0  FAILED\n"), None);
        assert_eq!(parse_neighbour_mac(""), None);
        let arping = "ARPING 198.19.0.1\n\
            60 bytes from 02:aa:bb:cc:dd:ee (198.19.0.1): index=0 time=1.2 msec\n\
            60 bytes from 02:aa:bb:cc:dd:ee (198.19.0.1): index=1 time=1.1 msec\n\
            \n--- 198.19.0.1 statistics ---\n";
        assert_eq!(
            parse_arping(arping),
            ["02:aa:bb:cc:dd:ee", "02:aa:bb:cc:dd:ee"]
        );
    }
}
