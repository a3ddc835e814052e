//! The lab cloud closes the loop: a cloud namespace between the client and the nodes runs a real
//! health-checking load balancer (HAProxy) that follows what the controller wrote into the cloud
//! API (moto for AWS), probes every node's `/healthz` as the target group says, and forwards the
//! client's connections with its address intact. So the agent tests (`lab_cloud*`) prove, with
//! packets, that a cloud load balancer built by Portico sends traffic only where the agents'
//! health checks say, and the `lab_cloud` bench measures how fast it follows.
//!
//! `CloudLab` is the harness: the lab with its cloud namespace, the lab API server, the cloud API
//! stand-in, the controller with that provider, an agent on each node and an echo server in
//! each pod. The tests write EndpointSlices by hand (the lab has no kubelet), as the other agent
//! tests do, and reach the load balancer from the client by the name (or address) in the
//! Service's status.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};
use portico_lab::cloud::aws_run::{AwsCloud, AwsCloudConfig};
use portico_lab::demo::objects::{self, ECHO_PORT, NAMESPACE};
use portico_lab::netns::{LabSpec, LabTopology, NsChild};
use serde_json::json;

use crate::fake_compute::FakeCompute;
use crate::lab_cluster::{LabCluster, Process};
use crate::moto::{self, Moto};

pub mod gcp;
pub mod measure;
mod observe;

/// The cloud the lab stands in for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    Aws,
    /// The fake Compute server and `portico-lab gcp-cloud` (see `gcp`).
    Gcp,
}

/// The cloud API stand-in and the lab cloud following it.
enum Cloud {
    Aws {
        /// Dropped last: the lab cloud reads it until it stops.
        lab_cloud: Option<AwsCloud>,
        _moto: Moto,
    },
    Gcp {
        fake: FakeCompute,
        /// `portico-lab gcp-cloud` in the cloud namespace.
        lab_cloud: Option<NsChild>,
    },
}

/// A node's health as the lab cloud's load balancer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetState {
    pub node: String,
    /// Whether the load balancer sends it new connections.
    pub in_service: bool,
    pub status: String,
}

pub struct CloudLab {
    pub lab: LabTopology,
    pub cluster: LabCluster,
    pub provider: Provider,
    cloud: Cloud,
    /// The cloud's ID of each node (EC2 instance ID), by node name.
    pub instances: BTreeMap<String, String>,
    pub controller: Process,
    pub agents: Vec<NsChild>,
    /// One echo server per node, in the node's first pod.
    pub echoes: Vec<Option<NsChild>>,
}

/// The annotations that shorten the provider's health checks to the shortest it allows.
pub fn fast_checks(provider: Provider) -> Vec<(&'static str, &'static str)> {
    use portico_api::keys::service as ann;
    match provider {
        Provider::Aws => vec![
            (ann::AWS_HEALTHCHECK_INTERVAL, "5"),
            (ann::AWS_HEALTHCHECK_TIMEOUT, "2"),
            (ann::AWS_HEALTHCHECK_HEALTHY_THRESHOLD, "2"),
            (ann::AWS_HEALTHCHECK_UNHEALTHY_THRESHOLD, "2"),
        ],
        Provider::Gcp => gcp::SHORT_CHECKS.to_vec(),
    }
}

impl CloudLab {
    /// `nodes` nodes with one pod each on `node_subnet`, everything started. None where the
    /// cloud API stand-in is not installed (outside CI).
    pub async fn start(provider: Provider, node_subnet: &str, nodes: usize) -> Option<CloudLab> {
        let lab_binary = crate::workspace_binary("portico-lab")?;
        // The lab cloud's load balancer: skipped without it, failed under CI.
        crate::tool("haproxy")?;
        let spec = LabSpec::new(nodes, 1, lab_binary)
            .with_node_subnet(node_subnet.parse().unwrap())
            .with_cloud();
        let mut lab = tokio::task::spawn_blocking(move || LabTopology::create(spec))
            .await
            .unwrap()
            .expect("lab topology with a cloud");
        lab.set_probe_timeout(Duration::from_secs(2));
        let host_ip = IpAddr::V4(lab.host_ip());
        let cluster = LabCluster::start_listening(vec![
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SocketAddr::new(host_ip, 0),
        ])
        .await;
        let kubeconfig = cluster.kubeconfig_via(host_ip);
        let (cloud, instances, controller) = match provider {
            Provider::Aws => {
                let moto = Moto::start().await?;
                let ids = moto.setup(nodes);
                let instances: BTreeMap<String, String> = lab
                    .nodes()
                    .iter()
                    .zip(&ids)
                    .map(|(node, id)| (node.name.clone(), id.clone()))
                    .collect();
                let cloud_layout = lab.cloud().expect("a cloud").clone();
                let lab_cloud = AwsCloud::start(AwsCloudConfig {
                    moto_endpoint: moto.endpoint(),
                    python: crate::tool("python3")?,
                    cloud_ns: cloud_layout.ns.clone(),
                    client_ns: lab.client_ns().to_owned(),
                    instances: lab
                        .nodes()
                        .iter()
                        .map(|node| (instances[&node.name].clone(), node.ip))
                        .collect(),
                    load_balancer_range: cloud_layout.load_balancer_range,
                    dir: cluster.dir.path().join("cloud"),
                })
                .await
                .expect("the lab cloud starts");
                let controller =
                    moto::spawn_aws_controller(&cluster, &moto.endpoint(), "controller", &[]);
                let cloud = Cloud::Aws {
                    lab_cloud: Some(lab_cloud),
                    _moto: moto,
                };
                (cloud, instances, controller)
            }
            Provider::Gcp => gcp::start_cloud(&lab, &cluster).await,
        };
        let node_api: Api<Node> = Api::all(cluster.client.clone());
        for node in lab.nodes() {
            let mut object = objects::node_object(&node.name, node.ip);
            object.spec.get_or_insert_default().provider_id =
                Some(provider_id(provider, &instances[&node.name]));
            node_api
                .create(&PostParams::default(), &object)
                .await
                .unwrap();
        }
        crate::workspace_binary("portico-agent")?;
        let mut agents = Vec::new();
        let mut echoes = Vec::new();
        for node in lab.nodes() {
            agents.push(crate::lab_agent::start_agent(&lab, node, &kubeconfig, &[]).unwrap());
            let listen = SocketAddr::from(([0, 0, 0, 0], ECHO_PORT));
            echoes.push(Some(
                lab.spawn_echo_server(&node.pods[0].ns, listen).unwrap(),
            ));
        }
        Some(CloudLab {
            lab,
            cluster,
            provider,
            cloud,
            instances,
            controller,
            agents,
            echoes,
        })
    }

    /// Creates `name` (port 80 → the echo servers' 8080) with `policy` and `annotations`, and
    /// its EndpointSlice with no endpoints yet.
    pub async fn create_service(&self, name: &str, policy: &str, annotations: &[(&str, &str)]) {
        let mut service = objects::echo_service(name, policy);
        service.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        self.cluster.create_service(NAMESPACE, &service).await;
        self.set_endpoints(name, &[]).await;
    }

    /// Replaces the Service's endpoints: `(node index, ready, serving, terminating)`, one pod
    /// (the node's first) per entry.
    pub async fn set_endpoints(&self, service: &str, endpoints: &[(usize, bool, bool, bool)]) {
        let nodes = self.lab.nodes();
        let endpoints: Vec<_> = endpoints
            .iter()
            .map(|&(node, ready, serving, terminating)| {
                json!({
                    "addresses": [nodes[node].pods[0].ip.to_string()],
                    "nodeName": nodes[node].name,
                    "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
                })
            })
            .collect();
        let slice: EndpointSlice = serde_json::from_value(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {
                "name": format!("{service}-x1"), "namespace": NAMESPACE,
                "labels": {"kubernetes.io/service-name": service},
            },
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": "tcp", "port": ECHO_PORT, "protocol": "TCP"}],
        }))
        .unwrap();
        let slices: Api<EndpointSlice> = Api::namespaced(self.cluster.client.clone(), NAMESPACE);
        slices
            .patch(
                &format!("{service}-x1"),
                &PatchParams::apply("lab-cloud-test").force(),
                &Patch::Apply(&slice),
            )
            .await
            .unwrap();
    }

    /// Stops everything and removes the namespaces.
    pub async fn teardown(mut self) {
        match &mut self.cloud {
            Cloud::Aws { lab_cloud, .. } => {
                if let Some(cloud) = lab_cloud.take() {
                    cloud.stop().await;
                }
            }
            Cloud::Gcp { lab_cloud, .. } => drop(lab_cloud.take()),
        }
        self.agents.clear();
        self.echoes.clear();
        let lab = self.lab;
        tokio::task::spawn_blocking(move || lab.teardown())
            .await
            .unwrap();
    }
}

/// The Node's `spec.providerID` for the cloud's ID of it.
fn provider_id(provider: Provider, id: &str) -> String {
    match provider {
        Provider::Aws => format!("aws:///us-east-1a/{id}"),
        Provider::Gcp => portico_lab::demo::gcp::provider_id(id),
    }
}
