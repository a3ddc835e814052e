//! A GCP lab with a cloud: network namespaces with a cloud namespace between the client and
//! the nodes, the lab API server, the fake Compute server on the host's lab address, the real
//! controller with `--provider gcp`, the real agents in the nodes, an echo pod per node and the
//! GCP lab cloud (`portico-lab gcp-cloud`) in the cloud namespace.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Patch, PatchParams, PostParams};
use portico_lab::demo::objects::{self, ECHO_PORT, SERVICE_PORT};
use portico_lab::netns::echo::echo_field;
use portico_lab::netns::{LabSpec, LabTopology, NsChild};
use portico_tests::fake_compute::{FakeCompute, PROJECT, REGION, spawn_gcp_controller};
use portico_tests::lab_cluster::{LabCluster, Process, wait_for};
use serde_json::json;

pub struct GcpLab {
    pub lab: LabTopology,
    pub cluster: LabCluster,
    pub fake: FakeCompute,
    pub lab_binary: PathBuf,
    _controller: Process,
    pub agents: Vec<NsChild>,
    _echo: Vec<NsChild>,
    _cloud: NsChild,
    cloud_log: PathBuf,
}

/// An endpoint's conditions in an EndpointSlice.
#[derive(Clone, Copy, Debug)]
pub enum Endpoint {
    Ready,
    /// ready=false, serving=true, terminating=true: a pod in its grace period.
    Terminating,
}

/// What one request from the client through the load balancer saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// `client_address` in the pod's answer.
    pub client: String,
    /// The pod's namespace.
    pub pod_ns: String,
}

impl GcpLab {
    /// `nodes` nodes on `node_subnet` (a /24 of its own, so tests run side by side).
    pub async fn start(node_subnet: &str, nodes: usize) -> GcpLab {
        let lab_binary =
            portico_tests::workspace_binary("portico-lab").expect("portico-lab is built");
        let spec = LabSpec::new(nodes, 1, lab_binary.clone())
            .with_node_subnet(node_subnet.parse().unwrap())
            .with_cloud();
        let mut lab = tokio::task::spawn_blocking(move || LabTopology::create(spec))
            .await
            .unwrap()
            .expect("lab topology");
        lab.set_probe_timeout(Duration::from_secs(1));
        let host_ip = IpAddr::V4(lab.host_ip());
        let cluster = LabCluster::start_listening(vec![
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SocketAddr::new(host_ip, 0),
        ])
        .await;
        let kubeconfig = cluster.kubeconfig_via(host_ip);
        let cloud = lab.layout().cloud.clone().expect("the lab has a cloud");
        // The cloud namespace reaches the API on the host's lab address; forwarding rule IPs
        // come from the cloud's range, which the client routes through the cloud.
        let fake = FakeCompute::start_on(SocketAddr::new(host_ip, 0))
            .await
            .expect("fake Compute server");
        fake.set_address_base(cloud.load_balancer_range.network());

        let node_api: kube::Api<Node> = kube::Api::all(cluster.client.clone());
        for node in lab.nodes() {
            let mut object = objects::node_object(&node.name, node.ip);
            object.spec.get_or_insert_default().provider_id =
                Some(format!("gce://{PROJECT}/{REGION}-a/{}", node.name));
            node_api
                .create(&PostParams::default(), &object)
                .await
                .unwrap();
        }
        let controller = spawn_gcp_controller(&cluster, &fake.endpoint(), "controller");
        let agent = portico_tests::workspace_binary("portico-agent").unwrap();
        let mut agents = Vec::new();
        let mut echo = Vec::new();
        for node in lab.nodes() {
            let health = SocketAddr::new(IpAddr::V4(node.ip), 10256).to_string();
            let args = [
                "--node-name",
                &node.name,
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
                "--cluster-cidr",
                "10.244.0.0/16",
                "--healthz-bind-address",
                &health,
                "--admin-addr",
                "127.0.0.1:9473",
            ];
            agents.push(lab.spawn_in(&node.ns, &agent, &args).unwrap());
            echo.push(
                lab.spawn_echo_server(
                    &node.pods[0].ns,
                    SocketAddr::from(([0, 0, 0, 0], ECHO_PORT)),
                )
                .unwrap(),
            );
        }
        let cloud_log = cluster.dir.path().join("gcp-cloud.log");
        let mut command = lab.command_in(&cloud.ns, &lab_binary);
        command
            .args(["gcp-cloud", "--compute-url", &fake.endpoint()])
            .args(
                lab.nodes()
                    .iter()
                    .flat_map(|n| ["--node".to_owned(), format!("{}={}", n.name, n.ip)]),
            )
            .args(["--poll-ms", "500"])
            .env("PORTICO_LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&cloud_log).unwrap());
        let mut cloud_child = NsChild::spawn(&cloud.ns, command).unwrap();
        cloud_child
            .wait_for_line("gcp-cloud", Duration::from_secs(10))
            .unwrap();
        GcpLab {
            lab,
            cluster,
            fake,
            lab_binary,
            _controller: controller,
            agents,
            _echo: echo,
            _cloud: cloud_child,
            cloud_log,
        }
    }

    /// The lab cloud's log so far (for assertion messages).
    pub fn cloud_log(&self) -> String {
        std::fs::read_to_string(&self.cloud_log).unwrap_or_default()
    }

    pub fn node_ip(&self, node: usize) -> Ipv4Addr {
        self.lab.nodes()[node].ip
    }

    pub fn pod_ns(&self, node: usize) -> String {
        self.lab.nodes()[node].pods[0].ns.clone()
    }

    /// Creates an echo Service with `policy` and `annotations`, waits for its forwarding rule
    /// IP; returns (IP, load-balancer name).
    pub async fn create_service(
        &self,
        name: &str,
        policy: &str,
        annotations: &[(&str, &str)],
    ) -> (Ipv4Addr, String) {
        let mut service: Service = objects::echo_service(name, policy);
        service.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let created = self.cluster.create_service("default", &service).await;
        let ip = self.cluster.wait_for_ingress("default", name).await[0]
            .parse()
            .unwrap();
        let mut lb = format!("a{}", created.metadata.uid.unwrap().replace('-', ""));
        lb.truncate(32);
        (ip, lb)
    }

    /// Sets the Service's one EndpointSlice to these endpoints (node index, conditions).
    pub async fn set_endpoints(&self, service: &str, endpoints: &[(usize, Endpoint)]) {
        let slices: kube::Api<EndpointSlice> =
            kube::Api::namespaced(self.cluster.client.clone(), "default");
        let name = format!("{service}-x1");
        let body = json!({"endpoints": endpoints.iter().map(|(node, state)| {
            let (ready, terminating) = match state {
                Endpoint::Ready => (true, false),
                Endpoint::Terminating => (false, true),
            };
            json!({
                "addresses": [self.lab.nodes()[*node].pods[0].ip.to_string()],
                "nodeName": self.lab.nodes()[*node].name,
                "conditions": {"ready": ready, "serving": true, "terminating": terminating},
            })
        }).collect::<Vec<_>>()});
        if slices.get_opt(&name).await.unwrap().is_none() {
            let node = &self.lab.nodes()[0];
            let mut slice = objects::echo_slice(service, &node.name, node.pods[0].ip);
            slice.endpoints = serde_json::from_value(body["endpoints"].clone()).unwrap();
            slices.create(&PostParams::default(), &slice).await.unwrap();
            return;
        }
        slices
            .patch(&name, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .unwrap();
    }

    /// One request from the client to `vip` through the lab cloud.
    pub async fn ask(&self, vip: Ipv4Addr) -> Option<Seen> {
        let target = SocketAddr::new(IpAddr::V4(vip), SERVICE_PORT);
        let body = self
            .lab
            .tcp_request_from(self.lab.client_ns(), target)
            .await
            .ok()?;
        Some(Seen {
            client: echo_field(&body, "client_address")?.to_owned(),
            pod_ns: echo_field(&body, "namespace")?.to_owned(),
        })
    }

    /// `requests` requests in a row: what each saw (None for a failure).
    pub async fn ask_many(&self, vip: Ipv4Addr, requests: usize) -> Vec<Option<Seen>> {
        let mut seen = Vec::with_capacity(requests);
        for _ in 0..requests {
            seen.push(self.ask(vip).await);
        }
        seen
    }

    /// The lab cloud's health of `node` in pool `lb`, through `targetPools.getHealth`.
    pub fn member_health(&self, lb: &str, node: usize) -> Option<String> {
        let instance = format!(
            "https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/{REGION}-a/instances/{}",
            self.lab.nodes()[node].name
        );
        let (status, body) = self.fake.pool_health(lb, &instance);
        (status == 200).then(|| {
            body["healthStatus"][0]["healthState"]
                .as_str()
                .map(String::from)
        })?
    }

    /// Waits until every listed node has the listed health in pool `lb`.
    pub async fn wait_health(&self, lb: &str, want: &[(usize, &str)]) {
        wait_for(
            &format!("pool {lb} health {want:?}"),
            Duration::from_secs(60),
            || async {
                want.iter()
                    .all(|(node, state)| self.member_health(lb, *node).as_deref() == Some(*state))
                    .then_some(())
            },
        )
        .await
    }

    /// The cloud namespace's route for `vip` (`ip route show`).
    pub fn cloud_route(&self, vip: Ipv4Addr) -> String {
        let cloud = &self.lab.layout().cloud.as_ref().unwrap().ns;
        self.lab
            .run_in(cloud, "ip", &["route", "show", &format!("{vip}/32")])
            .unwrap_or_default()
    }

    /// The node IPs the cloud routes `vip` to.
    pub fn routed_to(&self, vip: Ipv4Addr) -> Vec<usize> {
        let route = self.cloud_route(vip);
        (0..self.lab.nodes().len())
            .filter(|n| {
                route
                    .split_whitespace()
                    .any(|word| word == self.node_ip(*n).to_string())
            })
            .collect()
    }
}
