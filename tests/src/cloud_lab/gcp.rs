//! The GCP arm of the lab cloud harness: the fake Compute server, `portico-lab gcp-cloud` in
//! the cloud namespace (pass-through routes to the healthy pool members) and the controller
//! with `--provider gcp`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use portico_lab::demo::gcp::instance_url;
use portico_lab::netns::{LabTopology, NsChild};

use super::{Cloud, CloudLab, TargetState};
use crate::fake_compute::{FakeCompute, spawn_gcp_controller};
use crate::lab_cluster::{LabCluster, Process};

/// A Local Service's own check shortened (the shared Cluster check keeps cloud-provider-gcp's
/// 8 s / 1 s / 1 / 3): 1 s interval, 1 s timeout, healthy after 1, unhealthy after 2.
pub const SHORT_CHECKS: [(&str, &str); 4] = [
    ("portico.dev/gcp-healthcheck-interval", "1"),
    ("portico.dev/gcp-healthcheck-timeout", "1"),
    ("portico.dev/gcp-healthcheck-healthy-threshold", "1"),
    ("portico.dev/gcp-healthcheck-unhealthy-threshold", "2"),
];

/// The rolling update's checks: every 2 s, 2 s to answer, in after 1 success, out after 3
/// failures (a grace period of 2 × (3 + 1) + 2 = 10 s).
pub const ROLLING_CHECKS: [(&str, &str); 4] = [
    ("portico.dev/gcp-healthcheck-interval", "2"),
    ("portico.dev/gcp-healthcheck-timeout", "2"),
    ("portico.dev/gcp-healthcheck-healthy-threshold", "1"),
    ("portico.dev/gcp-healthcheck-unhealthy-threshold", "3"),
];

/// The GCP arm of `CloudLab::start`: the fake Compute server on the host's lab address (the
/// cloud namespace reaches it there) numbering addresses in the cloud's range, the lab cloud in
/// the cloud namespace, the controller. GCE instances are named as their nodes.
pub(super) async fn start_cloud(
    lab: &LabTopology,
    cluster: &LabCluster,
) -> (Cloud, BTreeMap<String, String>, Process) {
    let cloud = lab.cloud().expect("a cloud").clone();
    let fake = FakeCompute::start_on(SocketAddr::new(IpAddr::V4(lab.host_ip()), 0))
        .await
        .expect("the fake Compute server starts");
    fake.set_address_base(cloud.load_balancer_range.network());
    let log = cluster.dir.path().join("gcp-cloud.log");
    let mut command = lab.command_in(&cloud.ns, lab.lab_binary());
    command
        .args([
            "gcp-cloud",
            "--compute-url",
            &fake.endpoint(),
            "--poll-ms",
            "500",
        ])
        .args(
            lab.nodes()
                .iter()
                .flat_map(|n| ["--node".to_owned(), format!("{}={}", n.name, n.ip)]),
        )
        .env("PORTICO_LOG_LEVEL", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut lab_cloud = NsChild::spawn(&cloud.ns, command).unwrap();
    lab_cloud
        .wait_for_line("gcp-cloud", Duration::from_secs(10))
        .unwrap();
    let controller = spawn_gcp_controller(cluster, &fake.endpoint(), "controller");
    let instances = lab
        .nodes()
        .iter()
        .map(|n| (n.name.clone(), n.name.clone()))
        .collect();
    let cloud = Cloud::Gcp {
        fake,
        lab_cloud: Some(lab_cloud),
    };
    (cloud, instances, controller)
}

/// The GCP arm of `CloudLab::targets`: the members of the pool behind the forwarding rule on
/// `ip`, UP or DOWN as `targetPools.getHealth` says (the lab cloud's checks), in service when
/// the cloud namespace routes the IP to them.
pub(super) async fn targets(lab: &CloudLab, fake: &FakeCompute, ip: &str) -> Vec<TargetState> {
    let Some(rule) = fake
        .list("forwardingRules")
        .into_iter()
        .find(|rule| rule["IPAddress"] == ip)
    else {
        return Vec::new();
    };
    let pool = rule["target"]
        .as_str()
        .and_then(|t| t.rsplit('/').next())
        .unwrap_or_default()
        .to_owned();
    let Ok(vip) = ip.parse::<Ipv4Addr>() else {
        return Vec::new();
    };
    let routed = routed_to(lab, vip);
    lab.lab
        .nodes()
        .iter()
        .enumerate()
        .filter_map(|(index, node)| {
            let (status, health) = fake.pool_health(&pool, &instance_url(&node.name));
            let in_service = routed.contains(&index);
            let status = match (status, health["healthStatus"][0]["healthState"].as_str()) {
                (200, Some("HEALTHY")) => "UP",
                (200, _) => "DOWN",
                // Out of the pool but still routed: the lab cloud has not caught up yet.
                _ if in_service => "LEAVING",
                _ => return None,
            };
            Some(TargetState {
                node: node.name.clone(),
                in_service,
                status: status.into(),
            })
        })
        .collect()
}

pub fn cloud_ns(lab: &CloudLab) -> String {
    lab.lab.cloud().expect("a cloud").ns.clone()
}

/// The nodes (by index) the cloud namespace routes `vip` to.
pub fn routed_to(lab: &CloudLab, vip: Ipv4Addr) -> Vec<usize> {
    let route = lab
        .lab
        .run_in(
            &cloud_ns(lab),
            "ip",
            &["route", "show", &format!("{vip}/32")],
        )
        .unwrap_or_default();
    let words: Vec<&str> = route.split_whitespace().collect();
    (0..lab.lab.nodes().len())
        .filter(|n| words.contains(&lab.lab.nodes()[*n].ip.to_string().as_str()))
        .collect()
}

pub async fn vip_of(lab: &CloudLab, service: &str) -> Ipv4Addr {
    let target = lab.lb_target(service).await;
    target.rsplit_once(':').unwrap().0.parse().unwrap()
}
