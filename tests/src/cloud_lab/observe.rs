//! What the client and the lab cloud see of a Service's load balancer: its address, the
//! targets' health, requests through it.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use portico_lab::demo::objects::{NAMESPACE, SERVICE_PORT};
use portico_lab::netns::echo::echo_field;

use super::{Cloud, CloudLab, Provider, TargetState};
use crate::lab_cluster::wait_for;

impl CloudLab {
    /// What the client connects to for `service`: the load balancer's DNS name (AWS) or IP, and
    /// the Service's port, once the controller wrote the status.
    pub async fn lb_target(&self, service: &str) -> String {
        let api = self.cluster.services(NAMESPACE);
        let host = wait_for(
            &format!("a load balancer for {service}"),
            Duration::from_secs(60),
            || async {
                let service: Service = api.get(service).await.ok()?;
                let ingress = service.status?.load_balancer?.ingress?.into_iter().next()?;
                ingress.hostname.or(ingress.ip)
            },
        )
        .await;
        format!("{host}:{SERVICE_PORT}")
    }

    /// Every target of `service`'s load balancer as the lab cloud sees it now.
    pub async fn targets(&self, service: &str) -> Vec<TargetState> {
        let target = self.lb_target(service).await;
        let host = target.rsplit_once(':').map(|(h, _)| h).unwrap_or(&target);
        match &self.cloud {
            Cloud::Aws { lab_cloud, .. } => {
                let health = lab_cloud
                    .as_ref()
                    .expect("running")
                    .target_health()
                    .await
                    .unwrap_or_default();
                health
                    .into_iter()
                    .filter(|t| t.dns == host)
                    .filter_map(|t| {
                        let node = self
                            .instances
                            .iter()
                            .find(|(_, id)| **id == t.instance)?
                            .0
                            .clone();
                        Some(TargetState {
                            node,
                            in_service: t.status.starts_with("UP"),
                            status: t.status,
                        })
                    })
                    .collect()
            }
            Cloud::Gcp { fake, .. } => super::gcp::targets(self, fake, host).await,
        }
    }

    /// Waits until exactly `nodes` (by index) take new connections for `service`; returns how
    /// long that took.
    pub async fn wait_for_in_service(&self, service: &str, nodes: &[usize]) -> Duration {
        let started = Instant::now();
        let wanted: BTreeSet<String> = nodes
            .iter()
            .map(|&i| self.lab.nodes()[i].name.clone())
            .collect();
        let deadline = started + Duration::from_secs(90);
        loop {
            let targets = self.targets(service).await;
            let in_service: BTreeSet<String> = targets
                .iter()
                .filter(|t| t.in_service)
                .map(|t| t.node.clone())
                .collect();
            // Fully UP or DOWN: a target half-way through its thresholds is not settled.
            let settled = targets
                .iter()
                .all(|t| t.status == "UP" || t.status == "DOWN");
            if in_service == wanted && settled {
                return started.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "{service}: the lab cloud never had exactly {wanted:?} in service; last {targets:?}\ncontroller:\n{}",
                self.controller.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One request from the client to `service`'s load balancer: the echo body, or None.
    pub async fn request(&self, service: &str) -> Option<String> {
        let target = self.lb_target(service).await;
        portico_lab::netns::probe::probe_name_from(
            self.lab.lab_binary(),
            self.lab.client_ns(),
            &target,
            portico_lab::netns::probe::ProbeMode::Tcp,
            "/",
            Duration::from_secs(2),
        )
        .await
        .ok()
    }

    /// `count` requests: who answered (the pod's node) and the address the pod saw, each.
    pub async fn who_answers(&self, service: &str, count: usize) -> Vec<(String, String)> {
        let mut seen = Vec::new();
        for _ in 0..count {
            let mut body = self.request(service).await;
            // GCP routes to a node once its check passes, which for the shared 10256 check can
            // be before its agent has the rules for a new forwarding rule IP; and on a loaded
            // machine a probe can miss its 2 s. A few tries, a second apart.
            for _ in 0..3 {
                if body.is_some() || self.provider != Provider::Gcp {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                body = self.request(service).await;
            }
            let body = body
                .unwrap_or_else(|| panic!("{service}: a request through the load balancer failed"));
            let pod_ns = echo_field(&body, "namespace").unwrap_or_default();
            let node = self
                .lab
                .nodes()
                .iter()
                .find(|n| n.pods.iter().any(|p| p.ns == pod_ns))
                .map(|n| n.name.clone())
                .unwrap_or_default();
            let client = echo_field(&body, "client_address")
                .unwrap_or_default()
                .to_owned();
            seen.push((node, client));
        }
        seen
    }

    /// The node whose IP is `ip` (its address on the node subnet, or on its pod bridge, which
    /// is what a node masquerades to when the endpoint is its own pod), if any.
    pub fn node_with_ip(&self, ip: &str) -> Option<String> {
        let ip: Ipv4Addr = ip.parse().ok()?;
        self.lab
            .nodes()
            .iter()
            .find(|n| n.ip == ip || n.pod_gateway == ip)
            .map(|n| n.name.clone())
    }
}
