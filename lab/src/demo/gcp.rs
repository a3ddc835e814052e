//! The GCP side of `portico-lab up --provider gcp`: the fake Compute server and the GCP lab
//! cloud as detached processes of the lab, the controller's `--provider gcp` flags, the nodes'
//! provider IDs, and the lab cloud's view of member health (through `targetPools.getHealth`).
//!
//! ```text
//!   up ─▶ portico-lab fake-compute (host, on the lab address; addresses from the cloud's range)
//!      ─▶ Nodes with providerID gce://lab-project/us-central1-a/<node> (the pool's instances)
//!      ─▶ portico-controller --provider gcp --gcp-endpoint-url <fake>
//!      ─▶ portico-lab cloud --provider gcp ─▶ gcp-cloud in the cloud namespace (checks, routes)
//! ```

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::report::render_table;
use super::state::{CloudState, LabState, NodeState};
use super::up::{spawn_detached, wait_for_output};
use crate::cloud::gcp::client::ComputeClient;
use crate::fake_compute::{PROJECT, REGION};

/// The zone every lab node is in.
pub fn zone() -> String {
    format!("{REGION}-a")
}

/// `spec.providerID` of a lab node: the GCE instance of the same name.
pub fn provider_id(node: &str) -> String {
    format!("gce://{PROJECT}/{}/{node}", zone())
}

/// The instance URL the controller puts in target pools for `node`.
pub fn instance_url(node: &str) -> String {
    format!(
        "https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/{}/instances/{node}",
        zone()
    )
}

/// Starts `portico-lab fake-compute` on the host's lab address (the cloud namespace reaches it
/// there), numbering addresses in `lb_range_base`'s range; returns its URL.
pub async fn start_fake_compute(
    dir: &Path,
    state: &mut LabState,
    lab_binary: &Path,
    host_ip: Ipv4Addr,
    lb_range_base: Ipv4Addr,
) -> anyhow::Result<String> {
    let mut command = Command::new(lab_binary);
    command
        .args(["fake-compute", "--listen", &format!("{host_ip}:0")])
        .args(["--address-base", &lb_range_base.to_string()]);
    spawn_detached(dir, state, "fake-compute", lab_binary, command)?;
    let out = wait_for_output(
        dir,
        state,
        "fake-compute",
        Duration::from_secs(10),
        |text| text.contains("serving "),
    )
    .await?;
    endpoint_of(&out).ok_or_else(|| anyhow::anyhow!("fake-compute printed no URL: {out:?}"))
}

/// The URL in `fake-compute: serving http://IP:PORT`.
fn endpoint_of(out: &str) -> Option<String> {
    out.lines()
        .find_map(|line| line.strip_prefix("fake-compute: serving "))
        .map(|url| url.trim().to_owned())
}

/// The controller's flags for the fake (cluster `lab`, node tag `portico-node`).
pub fn controller_args(endpoint: &str) -> Vec<String> {
    [
        "--provider",
        "gcp",
        "--cluster-name",
        "lab",
        "--gcp-project",
        PROJECT,
        "--gcp-region",
        REGION,
        "--gcp-node-tags",
        "portico-node",
        "--gcp-endpoint-url",
        endpoint,
    ]
    .map(String::from)
    .to_vec()
}

/// Starts the lab cloud (`portico-lab cloud --provider gcp`, which runs `gcp-cloud` in the
/// cloud namespace), detached and recorded as `lab-cloud`, as `up --provider aws` does.
pub async fn start_lab_cloud(
    dir: &Path,
    state: &mut LabState,
    lab_binary: &Path,
    cloud: &CloudState,
) -> anyhow::Result<()> {
    let mut command = Command::new(lab_binary);
    command
        .args(["cloud", "--provider", "gcp", "--endpoint", &cloud.endpoint])
        .args([
            "--cloud-netns",
            &cloud.ns,
            "--client-netns",
            &state.client_ns,
        ])
        .arg("--dir")
        .arg(&cloud.dir);
    for node in &state.nodes {
        command.args(["--instance", &format!("{}={}", node.name, node.ip)]);
    }
    spawn_detached(dir, state, "lab-cloud", lab_binary, command)?;
    wait_for_output(dir, state, "lab-cloud", Duration::from_secs(20), |text| {
        text.contains("lab cloud ready")
    })
    .await?;
    Ok(())
}

/// `"a"` + the UID without dashes, cut to 32 characters: the pool's name.
pub fn lb_name(uid: &str) -> String {
    let mut name = format!("a{}", uid.replace('-', ""));
    name.truncate(32);
    name
}

pub const MEMBER_HEADERS: [&str; 4] = ["SERVICE", "TARGET_POOL", "NODE", "LAB_CLOUD_HEALTH"];

/// The lab cloud's view of each pool member, as `targetPools.getHealth` answers it.
pub async fn member_health_table(
    endpoint: &str,
    services: &[(String, String)],
    nodes: &[NodeState],
) -> anyhow::Result<String> {
    let client = ComputeClient::new(endpoint, PROJECT, REGION)?;
    let mut rows = Vec::new();
    for (service, pool) in services {
        for node in nodes {
            let health = client
                .pool_health(pool, &instance_url(&node.name))
                .await
                .unwrap_or_else(|error| format!("({error})"));
            rows.push(vec![
                service.clone(),
                pool.clone(),
                node.name.clone(),
                health,
            ]);
        }
    }
    Ok(render_table(&MEMBER_HEADERS, &rows))
}

/// The GCP arm of `health_checks::cloud_targets`: every forwarding rule's members, UP when
/// the lab cloud's checks say HEALTHY.
pub async fn cloud_targets(
    cloud: &super::state::CloudState,
) -> anyhow::Result<Vec<super::health_checks::CloudTarget>> {
    let client = ComputeClient::new(&cloud.endpoint, PROJECT, REGION)?;
    Ok(client
        .members()
        .await?
        .into_iter()
        .map(|(ip, node, state)| super::health_checks::CloudTarget {
            lb: ip.to_string(),
            node,
            status: if state == "HEALTHY" { "UP" } else { "DOWN" }.to_owned(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_what_the_controller_derives() {
        assert_eq!(
            provider_id("node-1"),
            "gce://lab-project/us-central1-a/node-1"
        );
        assert!(instance_url("node-1").ends_with("/zones/us-central1-a/instances/node-1"));
        assert_eq!(
            lb_name("0123abcd-0000-1111-2222-333344445555"),
            "a0123abcd00001111222233334444555"
        );
        assert_eq!(
            endpoint_of("fake-compute: serving http://198.18.0.1:4321\n").as_deref(),
            Some("http://198.18.0.1:4321")
        );
    }
}
