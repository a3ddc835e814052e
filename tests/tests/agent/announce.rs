//! The L2 announcer in `--proxy-mode off` (beside kube-proxy): the node answers ARP for its VIP
//! with its MAC, and installs no rule and binds no health check port; it says so in the
//! Service's `portico.dev/L2Announced` condition and in its metrics; a VIP no `L2Announcement`
//! covers gets a False condition; an `L2Announcement` the type cannot read is reported, not fatal;
//! and a v6 VIP's Neighbor Solicitations are answered.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use portico_api::keys::reason::INVALID_L2_ANNOUNCEMENT;
use portico_api::{L2Announcement, L2AnnouncementSpec};
use portico_lab::demo::objects;
use portico_tests::lab_cluster::{LabCluster, mk_lb_service, wait_for};

use crate::nodes::{NodeNs, remove_leftovers, run};

/// The MACs that answer `count` ARP requests for `vip` sent from the host out of `link`.
fn arping(link: &str, vip: IpAddr) -> Vec<String> {
    let output = std::process::Command::new("arping")
        .args(["-i", link, "-c", "2", "-w", "3"])
        .arg(vip.to_string())
        .output()
        .expect("arping (Debian package arping) runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split(" bytes from ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// One node namespace running the agent in `--proxy-mode off`, the lab API server reachable
/// from it, the Node object, and the host (the LAN client) on the node's link.
struct OneNode {
    node: NodeNs,
    cluster: LabCluster,
    host_link: String,
    node_link: String,
    node_mac: String,
    _dir: tempfile::TempDir,
}

async fn one_node(name: &str, index: u8) -> OneNode {
    remove_leftovers();
    let dir = tempfile::tempdir().unwrap();
    let node = NodeNs::create(name, index, dir.path());
    let cluster = LabCluster::start_listening(vec![
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::new(node.host_ip, 0),
    ])
    .await;
    let IpAddr::V4(node_ip) = node.node_ip else {
        unreachable!("the node namespaces are IPv4")
    };
    kube::Api::<Node>::all(cluster.client.clone())
        .create(
            &PostParams::default(),
            &objects::node_object(&node.name, node_ip),
        )
        .await
        .unwrap();
    let node_link = String::from_utf8_lossy(
        &node
            .exec(&["sh", "-c", "ls /sys/class/net | grep ^pag"])
            .stdout,
    )
    .trim()
    .to_owned();
    let node_mac = String::from_utf8_lossy(
        &node
            .exec(&["cat", &format!("/sys/class/net/{node_link}/address")])
            .stdout,
    )
    .trim()
    .to_ascii_lowercase();
    let host_link = run(&[
        "sh",
        "-c",
        &format!("ip -o addr show to {}/24 | cut -d' ' -f2", node.host_ip),
    ]);
    OneNode {
        node,
        cluster,
        host_link: host_link.trim().to_owned(),
        node_link,
        node_mac,
        _dir: dir,
    }
}

impl OneNode {
    /// A LoadBalancer Service holding `vip` (no controller here: the address is written as the
    /// controller would).
    async fn service_with_vip(&self, name: &str, vip: IpAddr) {
        self.cluster
            .create_service("default", &mk_lb_service(name, 80, &[]))
            .await;
        self.cluster
            .services("default")
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({
                    "status": {"loadBalancer": {"ingress": [{"ip": vip.to_string()}]}}
                })),
            )
            .await
            .unwrap();
    }

    async fn announce_pools(&self, name: &str, pools: &[&str]) {
        let spec = L2AnnouncementSpec {
            address_pools: pools.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        };
        kube::Api::<L2Announcement>::all(self.cluster.client.clone())
            .create(&PostParams::default(), &L2Announcement::new(name, spec))
            .await
            .unwrap();
    }

    fn start(&mut self) {
        let kubeconfig = self.cluster.kubeconfig_via(self.node.host_ip);
        self.node
            .start_agent_with(&kubeconfig, "127.0.0.1:9473", &["--proxy-mode", "off"]);
    }

    /// Waits for the Service's `portico.dev/L2Announced` condition with this status.
    async fn wait_for_condition(&self, service: &str, status: &str) -> Condition {
        let services = self.cluster.services("default");
        wait_for(
            &format!("{service}'s L2Announced condition to be {status}"),
            Duration::from_secs(30),
            || {
                let services = services.clone();
                async move {
                    let service: Service = services.get(service).await.ok()?;
                    service
                        .status?
                        .conditions?
                        .into_iter()
                        .find(|c| c.type_ == "portico.dev/L2Announced" && c.status == status)
                }
            },
        )
        .await
    }

    /// The agent's metrics page (its admin server listens on the node's loopback).
    fn metrics(&self) -> String {
        String::from_utf8_lossy(
            &self
                .node
                .exec(&["curl", "-s", "http://127.0.0.1:9473/metrics"])
                .stdout,
        )
        .into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_mode_off_answers_arp_for_the_vip_without_rules_or_listeners() {
    if !portico_tests::require_root() {
        return;
    }
    let mut one = one_node("node-l2", 11).await;
    // A VIP on the node's /24: on-link for the host, which plays the LAN client.
    let vip: IpAddr = "198.18.101.200".parse().unwrap();
    one.cluster
        .create_pool("l2", &["198.18.101.200/32"], true)
        .await;
    // A second pool that no L2Announcement covers.
    one.cluster
        .create_pool("dark", &["198.18.101.210/32"], true)
        .await;
    one.announce_pools("l2", &["l2"]).await;
    // An L2Announcement the type cannot read (the schema allows any interface list, but not
    // this one: written by hand with a number for a name): reported, and the others still work.
    let resource = ApiResource::erase::<L2Announcement>(&());
    let raw: kube::Api<DynamicObject> = kube::Api::all_with(one.cluster.client.clone(), &resource);
    let unreadable: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "L2Announcement",
        "metadata": {"name": "unreadable"},
        "spec": {"addressPools": [7]}
    }))
    .unwrap();
    let unreadable_created = raw
        .create(&PostParams::default(), &unreadable)
        .await
        .is_ok();
    one.service_with_vip("web", vip).await;
    one.service_with_vip("dark", "198.18.101.210".parse().unwrap())
        .await;
    one.start();
    let macs = wait_for(
        "the node to answer ARP for its VIP",
        Duration::from_secs(30),
        || {
            let macs = arping(&one.host_link, vip);
            async move { (!macs.is_empty()).then_some(macs) }
        },
    )
    .await;
    let node = &one.node;
    assert!(
        macs.iter().all(|mac| *mac == one.node_mac),
        "ARP replies from {macs:?}; only the node ({}) should answer\n{}",
        one.node_mac,
        node.logs()
    );

    // kubectl shows who announces the VIP, where, and since when.
    let announced = one.wait_for_condition("web", "True").await;
    assert_eq!(announced.reason, "NodeAnnouncing");
    assert_eq!(
        announced.message,
        format!("{vip} by node {} on {}", node.name, one.node_link)
    );
    let uncovered = one.wait_for_condition("dark", "False").await;
    assert_eq!(uncovered.reason, "NotAnnounced");
    assert!(
        uncovered.message.contains("AddressPool dark"),
        "{uncovered:?}"
    );
    let metrics = one.metrics();
    for reason in ["first_owner", "not_covered"] {
        assert!(
            metrics.contains(&format!(
                "portico_agent_l2_ownership_changes_total{{reason=\"{reason}\"}} 1"
            )),
            "{metrics}"
        );
    }
    if unreadable_created {
        let note = one
            .cluster
            .wait_for_warning(
                "default",
                "unreadable",
                INVALID_L2_ANNOUNCEMENT,
                &["cannot read"],
            )
            .await;
        assert!(
            note.contains("addressPools") || note.contains("string"),
            "{note}"
        );
    }

    // Beside kube-proxy: no Portico chain, and nothing listens but the admin server.
    let rules = String::from_utf8_lossy(&node.exec(&["iptables-save"]).stdout).into_owned();
    assert!(!rules.contains("PORTICO"), "{rules}");
    let listeners = String::from_utf8_lossy(&node.exec(&["ss", "-Hltn"]).stdout).into_owned();
    let others: Vec<&str> = listeners
        .lines()
        .filter(|line| !line.contains("127.0.0.1:9473"))
        .collect();
    assert!(others.is_empty(), "listening in off mode: {others:?}");
    one.node.stop_agent();
}

/// The host's neighbour entry for `vip` on `link` (its MAC), once resolved.
fn ipv6_neighbour(link: &str, vip: IpAddr) -> Option<String> {
    let _ = std::process::Command::new("ping")
        .args(["-6", "-c", "1", "-W", "1", "-I", link])
        .arg(vip.to_string())
        .output();
    let out = run(&["ip", "-6", "neigh", "show", &vip.to_string(), "dev", link]);
    let mut words = out.split_whitespace();
    words.find(|w| *w == "lladdr")?;
    words.next().map(str::to_ascii_lowercase)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v6_vip_is_announced_by_neighbor_advertisement() {
    if !portico_tests::require_root() {
        return;
    }
    let mut one = one_node("node-v6", 12).await;
    let vip: IpAddr = "fd00:198:18:102::200".parse().unwrap();
    one.cluster
        .create_pool("v6", &["fd00:198:18:102::200/128"], true)
        .await;
    one.announce_pools("v6", &[]).await;
    one.service_with_vip("web6", vip).await;
    // The VIP is on-link for the host: it asks for it with a Neighbor Solicitation.
    run(&[
        "ip",
        "-6",
        "route",
        "replace",
        &format!("{vip}/128"),
        "dev",
        &one.host_link,
    ]);
    one.start();
    let mac = wait_for(
        "the node to answer the Neighbor Solicitation for its v6 VIP",
        Duration::from_secs(30),
        || {
            let mac = ipv6_neighbour(&one.host_link, vip);
            async move { mac }
        },
    )
    .await;
    assert_eq!(mac, one.node_mac, "{}", one.node.logs());
    let announced = one.wait_for_condition("web6", "True").await;
    assert!(
        announced
            .message
            .starts_with(&format!("{vip} by node node-v6"))
    );
    one.node.stop_agent();
}
