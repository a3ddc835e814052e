//! `portico-lab up --provider aws`: the demo with a cloud in front of the nodes. moto stands in
//! for AWS, the lab's nodes are its EC2 instances, the controller runs with `--provider aws`,
//! and the lab cloud (`portico-lab cloud`, detached) serves each NLB moto holds with HAProxy in
//! the cloud namespace, health-checking the nodes as the target groups say.
//!
//! ```text
//!   netns --cloud ─▶ apiserver ─▶ moto_server (.venv) ─▶ 3 instances ─▶ Nodes (providerID)
//!     ─▶ echo pods, Services (checks shortened by annotation) ─▶ controller --provider aws, agents
//!     ─▶ portico-lab cloud ─▶ kubectl get svc, node health checks, the lab cloud's view, the client
//! ```

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Service};
use kube::Api;
use kube::api::PostParams;

use super::objects::{self, SERVICE_PORT};
use super::report::{self, HEALTH_HEADERS, render_table, say};
use super::state::LabState;
use super::up::{
    Binaries, NODES, create_echo_services, kubectl_get_svc, sock, spawn_detached, start_cluster,
    start_controller_and_agents, start_echo_pods, wait_for_output,
};
use crate::cloud::aws::TargetHealth;
use crate::cloud::aws_run::{MOTO_STATE_PY, read_target_health};
use crate::netns::echo::echo_field;
use crate::netns::probe::{ProbeMode, probe_name_from};

/// The cluster name the controller tags with (and moto's subnets carry).
const CLUSTER: &str = "lab";
use super::up::{CLUSTER_SERVICE, LOCAL_SERVICE};
/// AWS's shortest health checks (5 s interval, 2 s timeout, 2 and 2), so the demo settles fast.
const FAST_CHECKS: [(&str, &str); 4] = [
    (portico_api::keys::service::AWS_HEALTHCHECK_INTERVAL, "5"),
    (portico_api::keys::service::AWS_HEALTHCHECK_TIMEOUT, "2"),
    (
        portico_api::keys::service::AWS_HEALTHCHECK_HEALTHY_THRESHOLD,
        "2",
    ),
    (
        portico_api::keys::service::AWS_HEALTHCHECK_UNHEALTHY_THRESHOLD,
        "2",
    ),
];

/// A program of the checkout's `.venv` (where `scripts/install test` puts moto), found from
/// this executable's directory (`<checkout>/target/<profile>/`).
fn venv_program(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.ancestors()
        .map(|dir| dir.join(".venv/bin").join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{name} is not in the checkout's .venv: run `scripts/install test` (it installs moto)"
            )
        })
}

fn free_loopback_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `up` with `--provider aws`.
pub(super) async fn start_aws(
    args: &super::UpArgs,
    binaries: &Binaries,
    dir: &Path,
    state: &mut LabState,
) -> anyhow::Result<()> {
    let moto_server = venv_program("moto_server")?;
    let python = venv_program("python3")?;
    let (_, client) = start_cluster(args, binaries, dir, state, true).await?;
    let mut cloud = state.cloud.clone().expect("start_cluster checked");

    say("starting moto (the AWS API) and creating 3 EC2 instances, one per node");
    let port = free_loopback_port()?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut moto = Command::new(&moto_server);
    moto.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    spawn_detached(dir, state, "moto", &moto_server, moto)?;
    report::retry(Duration::from_secs(30), || async {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("moto did not listen within 30s (see moto.log)"))?;
    let setup = Command::new(&python)
        .args(["-c", MOTO_STATE_PY, &endpoint, "setup", CLUSTER])
        .arg(NODES.to_string())
        .output()?;
    anyhow::ensure!(
        setup.status.success(),
        "creating the instances in moto failed: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let setup: serde_json::Value = serde_json::from_slice(&setup.stdout)?;
    let instance_ids: Vec<String> = setup["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| id.as_str().map(str::to_owned))
        .collect();
    anyhow::ensure!(instance_ids.len() == NODES, "moto made {setup}");
    let instances: BTreeMap<String, (String, Ipv4Addr)> = state
        .nodes
        .iter()
        .zip(&instance_ids)
        .map(|(node, id)| (node.name.clone(), (id.clone(), node.ip)))
        .collect();
    for (node, (id, ip)) in &instances {
        println!("{node}: {id} (aws:///us-east-1a/{id}), {ip}");
    }

    say("creating the CRDs, Nodes (with their providerIDs), echo pods and two Services");
    objects::apply_crds(&client).await?;
    objects::create_namespace(&client, "portico-system").await?;
    let nodes: Api<Node> = Api::all(client.clone());
    for node in &state.nodes {
        let mut object = objects::node(node);
        object.spec.get_or_insert_default().provider_id =
            Some(format!("aws:///us-east-1a/{}", instances[&node.name].0));
        nodes.create(&PostParams::default(), &object).await?;
    }
    start_echo_pods(binaries, dir, state, NODES).await?;
    let services = create_echo_services(&client, state, &FAST_CHECKS).await?;
    println!("{CLUSTER_SERVICE} (Cluster) and {LOCAL_SERVICE} (Local), the endpoint on node-0");

    say("starting portico-controller --provider aws, the agents, and the lab cloud");
    let mut controller = Command::new(&binaries.controller);
    controller
        .args(["--provider", "aws", "--cluster-name", CLUSTER])
        .args(["--aws-region", "us-east-1", "--aws-endpoint-url", &endpoint])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    start_controller_and_agents(binaries, dir, state, controller)?;
    cloud.provider = "aws".into();
    cloud.dir = dir.join("cloud");
    cloud.endpoint = endpoint.clone();
    cloud.targets = instances
        .iter()
        .map(|(node, (id, _))| (id.clone(), node.clone()))
        .collect();
    cloud.check = (5, 2);
    state.cloud = Some(cloud.clone());
    let mut lab_cloud = Command::new(&binaries.lab);
    lab_cloud
        .args(["cloud", "--provider", "aws", "--endpoint", &endpoint])
        .arg("--python")
        .arg(&python)
        .args([
            "--cloud-netns",
            &cloud.ns,
            "--client-netns",
            &state.client_ns,
        ])
        .args([
            "--load-balancer-range",
            &cloud.load_balancer_range.to_string(),
        ])
        .arg("--dir")
        .arg(&cloud.dir);
    for (id, ip) in instances.values() {
        lab_cloud.args(["--instance", &format!("{id}={ip}")]);
    }
    spawn_detached(dir, state, "lab-cloud", &binaries.lab, lab_cloud)?;
    wait_for_output(dir, state, "lab-cloud", Duration::from_secs(30), |text| {
        text.contains("lab cloud ready")
    })
    .await?;
    for process in &state.processes {
        println!("{:<12} pid {}", process.name, process.pid);
    }

    let hostnames = [
        wait_for_hostname(&services, CLUSTER_SERVICE).await?,
        wait_for_hostname(&services, LOCAL_SERVICE).await?,
    ];
    say("waiting for the lab cloud's health checks to settle (every 5 s, 2 to change state)");
    let node_of = |instance: &str| {
        instances
            .iter()
            .find(|(_, (id, _))| id == instance)
            .map(|(node, _)| node.clone())
            .unwrap_or_else(|| instance.to_owned())
    };
    let settled = report::retry(Duration::from_secs(90), || async {
        let health = read_target_health(&cloud.dir).await.ok()?;
        let up = |dns: &str| -> Vec<String> {
            health
                .iter()
                .filter(|t| t.dns == dns && t.status == "UP")
                .map(|t| node_of(&t.instance))
                .collect()
        };
        let settled = health
            .iter()
            .all(|t| t.status == "UP" || t.status == "DOWN")
            && up(&hostnames[0]).len() == NODES
            && up(&hostnames[1]) == ["node-0"];
        settled.then_some(health)
    })
    .await;
    let health = match settled {
        Some(health) => health,
        None => {
            println!("(not settled within 90s; showing what the lab cloud sees now)");
            read_target_health(&cloud.dir).await.unwrap_or_default()
        }
    };

    say("kubectl get svc");
    kubectl_get_svc(&state.kubeconfig);

    let local = services.get(LOCAL_SERVICE).await?;
    let health_port = objects::health_check_node_port(&local)
        .ok_or_else(|| anyhow::anyhow!("{LOCAL_SERVICE} has no healthCheckNodePort"))?;
    say("each node's health checks, asked from the cloud namespace as the load balancer asks");
    let mut rows = Vec::new();
    for node in &state.nodes {
        for port in [health_port, 10256] {
            let addr = sock(node.ip, port);
            let answer = report::health_from(&state.lab_binary, &cloud.ns, addr).await;
            rows.push(report::health_row(&node.name, addr, answer));
        }
    }
    print!("{}", render_table(&HEALTH_HEADERS, &rows));

    say("the lab cloud's view of target health (HAProxy's checks)");
    print!("{}", health_table(&health, node_of));

    say(&format!(
        "what the client ({} in {}) sees through each load balancer (6 requests each)",
        state.client_ip(),
        state.client_ns
    ));
    let mut rows = Vec::new();
    for (hostname, (service, policy)) in hostnames
        .iter()
        .zip([(CLUSTER_SERVICE, "Cluster"), (LOCAL_SERVICE, "Local")])
    {
        for _ in 0..6 {
            let target = format!("{hostname}:{SERVICE_PORT}");
            rows.push(through_lb(state, &target, service, policy).await);
        }
    }
    let headers = ["TARGET", "POLICY", "POD_ON", "CLIENT_ADDRESS"];
    print!("{}", render_table(&headers, &rows));

    state.complete = true;
    state.save(dir)?;
    say("the lab is up");
    println!("logs and state: {}", dir.display());
    println!(
        "try: ip netns exec {} curl -s http://{}/; portico-lab kubectl get svc; portico-lab down",
        state.client_ns, hostnames[1]
    );
    println!("export KUBECONFIG={}", state.kubeconfig.display());
    Ok(())
}

/// Waits until the controller wrote the NLB's DNS name into the Service's status.
async fn wait_for_hostname(services: &Api<Service>, name: &str) -> anyhow::Result<String> {
    report::retry(Duration::from_secs(60), || async {
        let service = services.get(name).await.ok()?;
        let ingress = service.status?.load_balancer?.ingress?;
        ingress.into_iter().find_map(|i| i.hostname)
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("{name} got no hostname within 60s (see controller.log)"))
}

fn health_table(health: &[TargetHealth], node_of: impl Fn(&str) -> String) -> String {
    let rows: Vec<Vec<String>> = health
        .iter()
        .map(|t| {
            vec![
                t.dns.clone(),
                t.target_group.clone(),
                format!("{} ({})", node_of(&t.instance), t.instance),
                t.status.clone(),
                t.check_status.clone(),
            ]
        })
        .collect();
    render_table(
        &[
            "LOAD_BALANCER",
            "TARGET_GROUP",
            "TARGET",
            "STATUS",
            "LAST_CHECK",
        ],
        &rows,
    )
}

/// One request from the client to `target` (`name:port` or `ip:port`) through a load
/// balancer: which node's pod answered and what it saw (both providers' `up` print it).
pub(super) async fn through_lb(
    state: &LabState,
    target: &str,
    service: &str,
    policy: &str,
) -> Vec<String> {
    let answer = probe_name_from(
        &state.lab_binary,
        &state.client_ns,
        target,
        ProbeMode::Tcp,
        "/",
        report::PROBE_TIMEOUT,
    )
    .await;
    let (pod_on, seen) = match answer {
        Ok(body) => {
            let pod_ns = echo_field(&body, "namespace").unwrap_or_default();
            let node = state
                .nodes
                .iter()
                .find(|n| n.pods.iter().any(|p| p.ns == pod_ns))
                .map(|n| n.name.clone())
                .unwrap_or_default();
            let seen = echo_field(&body, "client_address").unwrap_or_default();
            (node, seen.to_owned())
        }
        Err(error) => (report::NO_ANSWER.to_owned(), error.to_string()),
    };
    vec![
        format!("{service} {target}"),
        policy.to_owned(),
        pod_on,
        seen,
    ]
}
