//! What the demo shows: the `client_address` a client outside the nodes sees through a target,
//! each node's health check answer, and the plain-text tables they are printed in. The probes
//! run `portico-lab probe` inside the client namespace.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::netns::echo::echo_field;
use crate::netns::probe::{ProbeMode, parse_http_reply, probe_from};
use crate::netns::{cmd, layout::ip};

/// How long one probe waits for an answer before the row says "no answer".
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the table says when nothing answered.
pub const NO_ANSWER: &str = "no answer";

/// The `client_address` the echo server reports for a TCP request from `ns` to `target`.
pub async fn seen_from(lab_binary: &Path, ns: &str, target: SocketAddr) -> Option<String> {
    let body = probe_from(lab_binary, ns, target, ProbeMode::Tcp, "/", PROBE_TIMEOUT)
        .await
        .ok()?;
    echo_field(&body, "client_address").map(str::to_owned)
}

/// A health check answer: HTTP status and the `localEndpoints` of the JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthAnswer {
    pub status: u16,
    pub local_endpoints: Option<i64>,
}

/// `GET /healthz` from `ns` to `target`, as a cloud load balancer's health check asks it.
pub async fn health_from(lab_binary: &Path, ns: &str, target: SocketAddr) -> Option<HealthAnswer> {
    let raw = probe_from(
        lab_binary,
        ns,
        target,
        ProbeMode::Http,
        "/healthz",
        PROBE_TIMEOUT,
    )
    .await
    .ok()?;
    let reply = parse_http_reply(&raw)?;
    let local_endpoints = serde_json::from_str::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|body| body["localEndpoints"].as_i64());
    Some(HealthAnswer {
        status: reply.status,
        local_endpoints,
    })
}

/// Retries `probe` every 200 ms until it answers or `timeout` passes.
pub async fn retry<T, F, Fut>(timeout: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(answer) = probe().await {
            return Some(answer);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Routes `vip` from the client namespace via `node_ip`: the static stand-in for the L2
/// announcer, which does not exist yet.
pub fn route_vip_via(client_ns: &str, vip: Ipv4Addr, node_ip: Ipv4Addr) -> anyhow::Result<()> {
    cmd::run(&ip(
        Some(client_ns),
        &format!("route replace {vip}/32 via {node_ip}"),
    ))?;
    Ok(())
}

/// A plain table, columns padded to their widest cell.
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("   ").trim_end().to_owned()
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out.push('\n');
    out
}

/// The header of each section of the output.
pub fn say(what: &str) {
    println!("\n==> {what}");
}

/// One row of the traffic table: target, policy, via node, client_address.
pub async fn traffic_row(
    lab_binary: &Path,
    client_ns: &str,
    target: String,
    policy: &str,
    via: &str,
    addr: SocketAddr,
) -> Vec<String> {
    // A second try before "no answer": the first SYN after a VIP route moves to another node
    // can be lost while the client resolves the new next hop.
    let seen = match seen_from(lab_binary, client_ns, addr).await {
        Some(seen) => Some(seen),
        None => seen_from(lab_binary, client_ns, addr).await,
    };
    vec![
        target,
        policy.to_owned(),
        via.to_owned(),
        seen.unwrap_or_else(|| NO_ANSWER.to_owned()),
    ]
}

pub const TRAFFIC_HEADERS: [&str; 4] = ["TARGET", "POLICY", "VIA", "CLIENT_ADDRESS"];
pub const HEALTH_HEADERS: [&str; 4] = ["NODE", "HEALTH_CHECK", "STATUS", "LOCAL_ENDPOINTS"];

/// One row of the health table.
pub fn health_row(node: &str, addr: SocketAddr, answer: Option<HealthAnswer>) -> Vec<String> {
    let (status, local) = match answer {
        Some(a) => (
            a.status.to_string(),
            a.local_endpoints
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
        ),
        None => (NO_ANSWER.to_owned(), "-".to_owned()),
    };
    vec![node.to_owned(), addr.to_string(), status, local]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_every_column_to_its_widest_cell() {
        let table = render_table(
            &["A", "BB"],
            &[vec!["xxx".into(), "y".into()], vec!["z".into(), "w".into()]],
        );
        assert_eq!(table, "A     BB\nxxx   y\nz     w\n");
    }
}
