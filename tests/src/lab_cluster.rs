//! A cluster for end-to-end tests: the lab API server in this process (real HTTPS, real
//! watches), Portico's CRDs installed through the API as a user would, and Portico's real
//! binaries started as child processes with their own kubeconfig, logs and admin port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    Namespace, Node, NodeSpec, Service, ServicePort, ServiceSpec, Taint,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use portico_api::{AddressPool, AddressPoolSpec};
use portico_lab::apiserver::{ApiServerConfig, LabApiServer};

use crate::cli::{free_port, http_get};

/// The lab API server with Portico's CRDs and the `portico-system` namespace.
pub struct LabCluster {
    pub server: LabApiServer,
    pub client: kube::Client,
    pub dir: tempfile::TempDir,
}

impl LabCluster {
    pub async fn start() -> LabCluster {
        Self::start_listening(vec![SocketAddr::from(([127, 0, 0, 1], 0))]).await
    }

    /// Listens on these addresses too (for example the host side of node namespaces' veths);
    /// the first one is the kubeconfig's.
    pub async fn start_listening(listen: Vec<SocketAddr>) -> LabCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = ApiServerConfig {
            listen,
            kubeconfig: Some(dir.path().join("kubeconfig")),
            ..ApiServerConfig::default()
        };
        let server = LabApiServer::start(config)
            .await
            .expect("lab API server starts");
        let client = server
            .client()
            .await
            .expect("client for the lab API server");
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for (_, crd) in portico_api::crd_yaml::crds() {
            crds.create(&PostParams::default(), &crd)
                .await
                .expect("CRD created");
        }
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some("portico-system".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .expect("namespace created");
        let pools: Api<AddressPool> = Api::all(client.clone());
        wait_for(
            "the AddressPool resource to be served",
            Duration::from_secs(10),
            || {
                let pools = pools.clone();
                async move { pools.list(&ListParams::default()).await.ok().map(|_| ()) }
            },
        )
        .await;
        LabCluster {
            server,
            client,
            dir,
        }
    }

    pub fn kubeconfig(&self) -> &Path {
        self.server.kubeconfig_path()
    }

    /// Writes a kubeconfig that reaches the server through the listen address `ip`.
    pub fn kubeconfig_via(&self, ip: std::net::IpAddr) -> PathBuf {
        let url = self
            .server
            .urls()
            .iter()
            .find(|u| u.contains(&format!("//{ip}:")))
            .unwrap_or_else(|| panic!("the lab API server does not listen on {ip}"))
            .clone();
        let path = self.dir.path().join(format!("kubeconfig-{ip}"));
        std::fs::write(&path, self.server.kubeconfig_for(&url)).expect("write kubeconfig");
        path
    }

    /// Starts the real controller binary against this cluster.
    pub fn spawn_controller(&self, name: &str, extra_args: &[&str]) -> Process {
        self.spawn_controller_with(name, self.kubeconfig(), extra_args)
    }

    /// Starts the real controller binary with another kubeconfig for this cluster (for
    /// example one that reaches it through a proxy a test can cut).
    pub fn spawn_controller_with(
        &self,
        name: &str,
        kubeconfig: &Path,
        extra_args: &[&str],
    ) -> Process {
        self.spawn_controller_env(name, kubeconfig, extra_args, &[])
    }

    /// Starts the real controller binary with extra environment variables (for example the
    /// AWS SDK's credentials for a moto server).
    pub fn spawn_controller_env(
        &self,
        name: &str,
        kubeconfig: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Process {
        let binary =
            crate::workspace_binary("portico-controller").expect("portico-controller is built");
        let admin = free_port();
        let log = self.dir.path().join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--admin-addr", &admin.to_string()])
            .args(extra_args)
            .envs(env.iter().copied())
            // An environment default, so a test can still pass its own --log-level.
            .env("PORTICO_LOG_LEVEL", "info,portico_controller=debug")
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("controller starts");
        Process {
            child: Some(child),
            admin,
            log,
            name: name.to_owned(),
        }
    }

    pub async fn create_pool(
        &self,
        name: &str,
        addresses: &[&str],
        auto_assign: bool,
    ) -> AddressPool {
        let spec = AddressPoolSpec {
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            auto_assign,
            avoid_buggy_ips: false,
            service_allocation: None,
        };
        self.create_pool_spec(name, spec).await
    }

    pub async fn create_pool_spec(&self, name: &str, spec: AddressPoolSpec) -> AddressPool {
        Api::<AddressPool>::all(self.client.clone())
            .create(&PostParams::default(), &AddressPool::new(name, spec))
            .await
            .expect("pool created")
    }

    pub fn services(&self, namespace: &str) -> Api<Service> {
        Api::namespaced(self.client.clone(), namespace)
    }

    pub async fn create_service(&self, namespace: &str, service: &Service) -> Service {
        self.services(namespace)
            .create(&PostParams::default(), service)
            .await
            .unwrap_or_else(|e| panic!("create {:?}: {e}", service.metadata.name))
    }

    /// Waits until the Service has an ingress IP and returns them.
    pub async fn wait_for_ingress(&self, namespace: &str, name: &str) -> Vec<String> {
        let api = self.services(namespace);
        wait_for(
            &format!("an EXTERNAL-IP for {namespace}/{name}"),
            Duration::from_secs(20),
            || {
                let api = api.clone();
                async move {
                    let ips = ingress_ips(&api.get(name).await.ok()?);
                    (!ips.is_empty()).then_some(ips)
                }
            },
        )
        .await
    }

    /// Events (events.k8s.io/v1) regarding one object, as (type, reason, note).
    pub async fn events_for(&self, namespace: &str, name: &str) -> Vec<(String, String, String)> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let list = events
            .list(&ListParams::default())
            .await
            .expect("list events");
        list.items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Waits for a Warning Event with `reason` on the object whose note contains every word.
    pub async fn wait_for_warning(
        &self,
        namespace: &str,
        name: &str,
        reason: &str,
        words: &[&str],
    ) -> String {
        wait_for(
            &format!("a Warning {reason} on {namespace}/{name} saying {words:?}"),
            Duration::from_secs(20),
            || async {
                self.events_for(namespace, name)
                    .await
                    .into_iter()
                    .find(|(type_, r, note)| {
                        type_ == "Warning" && r == reason && words.iter().all(|w| note.contains(w))
                    })
                    .map(|(_, _, note)| note)
            },
        )
        .await
    }
}

impl LabCluster {
    /// Waits until the Service's `portico.dev/LoadBalancerReady` condition has `reason`; returns
    /// (status, message).
    pub async fn wait_for_condition(
        &self,
        namespace: &str,
        name: &str,
        reason: &str,
    ) -> (String, String) {
        let api = self.services(namespace);
        wait_for(
            &format!("condition reason {reason} on {namespace}/{name}"),
            Duration::from_secs(30),
            || async {
                let service = api.get(name).await.ok()?;
                let condition = ready_condition(&service)?;
                (condition.reason == reason).then_some((condition.status, condition.message))
            },
        )
        .await
    }
}

/// The Service's `portico.dev/LoadBalancerReady` condition.
pub fn ready_condition(
    service: &Service,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    service
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == portico_api::keys::LOAD_BALANCER_READY_CONDITION)
        .cloned()
}

/// The ingress IPs in a Service's status.
pub fn ingress_ips(service: &Service) -> Vec<String> {
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|ingress| ingress.iter().filter_map(|i| i.ip.clone()).collect())
        .unwrap_or_default()
}

/// A LoadBalancer Service of Portico's class with one TCP port.
/// A cloud Node: its `spec.providerID`, labels and `NoSchedule` taints (by key).
pub fn mk_cloud_node(
    name: &str,
    provider_id: &str,
    labels: &[(&str, &str)],
    taints: &[&str],
) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            provider_id: Some(provider_id.into()),
            taints: Some(
                taints
                    .iter()
                    .map(|key| Taint {
                        key: key.to_string(),
                        effect: "NoSchedule".into(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn mk_lb_service(name: &str, port: i32, annotations: &[(&str, &str)]) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            load_balancer_class: Some(portico_api::keys::LOAD_BALANCER_CLASS.into()),
            selector: Some(BTreeMap::from([("app".to_string(), name.to_string())])),
            ports: Some(vec![ServicePort {
                name: Some("tcp".into()),
                port,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Polls `probe` every 50 ms until it returns Some, or panics after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A child process of the test; killed when dropped, its log kept in the cluster's directory.
pub struct Process {
    child: Option<Child>,
    pub admin: SocketAddr,
    pub log: PathBuf,
    pub name: String,
}

impl Process {
    /// The process's log so far (for assertion messages).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A metric's value from the admin server, if the process serves it.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = http_get(self.admin, "/metrics").ok()?;
        body.lines()
            .find(|line| line.split_whitespace().next() == Some(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|value| value.parse().ok())
    }

    /// Kills the process at once (SIGKILL), as a node failure would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it with SIGTERM and returns whether it exited cleanly.
    pub fn terminate(&mut self) -> bool {
        self.child
            .take()
            .is_some_and(|child| crate::cli::terminate(child).success())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
