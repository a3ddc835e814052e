//! `portico-lab up --provider gcp`: the demo with a GCP-like cloud in front of the nodes. The
//! fake Compute server stands in for GCP, the lab's nodes are its instances (providerID
//! `gce://lab-project/us-central1-a/<node>`), the controller runs with `--provider gcp`, and the
//! GCP lab cloud (`portico-lab cloud --provider gcp`, detached; it runs `gcp-cloud` in the cloud
//! namespace) checks the pool members and routes each forwarding rule's IP to the healthy ones,
//! unchanged (pass-through).
//!
//! ```text
//!   netns --cloud ─▶ apiserver ─▶ fake-compute ─▶ Nodes (providerID) ─▶ echo pods, Services
//!     ─▶ controller --provider gcp, agents ─▶ portico-lab cloud --provider gcp (gcp-cloud)
//!     ─▶ kubectl get svc, node health checks, the lab cloud's member health, the client
//! ```

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::PostParams;

use super::gcp::{self as demo_gcp, cloud_targets};
use super::objects::{self, SERVICE_PORT};
use super::report::{self, HEALTH_HEADERS, render_table, say};
use super::state::LabState;
use super::up::{
    Binaries, NODES, create_echo_services, kubectl_get_svc, sock, start_cluster,
    start_controller_and_agents, start_echo_pods,
};

use super::up::{CLUSTER_SERVICE, LOCAL_SERVICE};
/// A Local Service's own check shortened (1 s interval and timeout, healthy after 1, unhealthy
/// after 2) so the demo settles fast; Cluster Services share cloud-provider-gcp's 8 s check.
const FAST_CHECKS: [(&str, &str); 4] = [
    ("portico.dev/gcp-healthcheck-interval", "1"),
    ("portico.dev/gcp-healthcheck-timeout", "1"),
    ("portico.dev/gcp-healthcheck-healthy-threshold", "1"),
    ("portico.dev/gcp-healthcheck-unhealthy-threshold", "2"),
];

/// `up` with `--provider gcp`.
pub(super) async fn start_gcp(
    args: &super::UpArgs,
    binaries: &Binaries,
    dir: &Path,
    state: &mut LabState,
) -> anyhow::Result<()> {
    let (host_ip, client) = start_cluster(args, binaries, dir, state, true).await?;
    let mut cloud = state.cloud.clone().expect("start_cluster checked");

    say("starting the fake Compute server (the GCP API), addresses from the cloud's range");
    let endpoint = demo_gcp::start_fake_compute(
        dir,
        state,
        &binaries.lab,
        host_ip,
        cloud.load_balancer_range.network(),
    )
    .await?;
    println!("{endpoint}");

    say("creating the CRDs, Nodes (GCE instances by name), echo pods and two Services");
    objects::apply_crds(&client).await?;
    objects::create_namespace(&client, "portico-system").await?;
    let nodes: Api<Node> = Api::all(client.clone());
    for node in &state.nodes {
        let mut object = objects::node(node);
        let provider_id = demo_gcp::provider_id(&node.name);
        println!("{}: {provider_id}, {}", node.name, node.ip);
        object.spec.get_or_insert_default().provider_id = Some(provider_id);
        nodes.create(&PostParams::default(), &object).await?;
    }
    start_echo_pods(binaries, dir, state, NODES).await?;
    let services = create_echo_services(&client, state, &FAST_CHECKS).await?;
    println!("{CLUSTER_SERVICE} (Cluster) and {LOCAL_SERVICE} (Local), the endpoint on node-0");

    say("starting portico-controller --provider gcp, the agents, and the GCP lab cloud");
    let mut controller = Command::new(&binaries.controller);
    controller.args(demo_gcp::controller_args(&endpoint));
    start_controller_and_agents(binaries, dir, state, controller)?;
    cloud.provider = "gcp".into();
    cloud.dir = dir.join("cloud");
    cloud.endpoint = endpoint.clone();
    cloud.targets = state
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.name.clone()))
        .collect();
    cloud.check = (1, 2);
    state.cloud = Some(cloud.clone());
    demo_gcp::start_lab_cloud(dir, state, &binaries.lab, &cloud).await?;
    for process in &state.processes {
        println!("{:<12} pid {}", process.name, process.pid);
    }

    let cluster = super::up::wait_for_vip(&services, CLUSTER_SERVICE).await?;
    let local = super::up::wait_for_vip(&services, LOCAL_SERVICE).await?;
    let ips = [
        objects::ingress_ip(&cluster).expect("waited"),
        objects::ingress_ip(&local).expect("waited"),
    ];
    say("waiting for the lab cloud's health checks to settle");
    let settled = report::retry(Duration::from_secs(60), || async {
        let targets = cloud_targets(&cloud).await.ok()?;
        let up = |ip: &str| -> Vec<String> {
            targets
                .iter()
                .filter(|t| t.lb == ip && t.status == "UP")
                .map(|t| t.node.clone())
                .collect()
        };
        (up(&ips[0].to_string()).len() == NODES && up(&ips[1].to_string()) == ["node-0"])
            .then_some(())
    })
    .await;
    if settled.is_none() {
        println!("(not settled within 60s; showing what the lab cloud sees now)");
    }
    // 10256 passes before an agent has the rules for a new forwarding rule's IP (on GCP the
    // load balancer takes far longer to program than the agents); wait for both to answer.
    for ip in ips {
        let target = sock(ip, SERVICE_PORT);
        report::retry(Duration::from_secs(20), || {
            report::seen_from(&state.lab_binary, &state.client_ns, target)
        })
        .await;
    }

    say("kubectl get svc");
    kubectl_get_svc(&state.kubeconfig);

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

    say("the lab cloud's view of member health (targetPools.getHealth)");
    let pools: Vec<(String, String)> = [(CLUSTER_SERVICE, &cluster), (LOCAL_SERVICE, &local)]
        .iter()
        .map(|(name, service)| {
            let uid = service.metadata.uid.clone().unwrap_or_default();
            (name.to_string(), demo_gcp::lb_name(&uid))
        })
        .collect();
    print!(
        "{}",
        demo_gcp::member_health_table(&endpoint, &pools, &state.nodes).await?
    );

    say("the cloud namespace's routes for the forwarding rules (ECMP over the healthy members)");
    let routes = crate::netns::cmd::run_args(&[
        "ip",
        "netns",
        "exec",
        &cloud.ns,
        "ip",
        "route",
        "show",
        "root",
        &cloud.load_balancer_range.to_string(),
    ])
    .unwrap_or_else(|error| format!("({error})\n"));
    print!("{routes}");

    say(&format!(
        "what the client ({} in {}) sees through each forwarding rule (6 requests each)",
        state.client_ip(),
        state.client_ns
    ));
    let mut rows = Vec::new();
    for (ip, (service, policy)) in ips
        .iter()
        .zip([(CLUSTER_SERVICE, "Cluster"), (LOCAL_SERVICE, "Local")])
    {
        for _ in 0..6 {
            let target = sock(*ip, SERVICE_PORT).to_string();
            rows.push(super::cloud_up::through_lb(state, &target, service, policy).await);
        }
    }
    let headers = ["TARGET", "POLICY", "POD_ON", "CLIENT_ADDRESS"];
    print!("{}", render_table(&headers, &rows));

    state.complete = true;
    state.save(dir)?;
    say("the lab is up");
    println!("logs and state: {}", dir.display());
    println!(
        "try: ip netns exec {} curl -s http://{}/; portico-lab scenario health-checks; portico-lab down",
        state.client_ns, ips[1]
    );
    println!("export KUBECONFIG={}", state.kubeconfig.display());
    Ok(())
}
