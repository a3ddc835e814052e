//! `portico-lab scenario source-ip`: the seed tutorial's steps on the running lab. A Service
//! `source-ip` (endpoint: the echo pod on node-1) is reached through each node's NodePort and
//! through its VIP routed via each node, under Cluster, then under Local; then each node's
//! health check answer.

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use super::objects::{self, NAMESPACE, SERVICE_PORT};
use super::report::{self, HEALTH_HEADERS, TRAFFIC_HEADERS, render_table, say};
use super::state::LabState;
use super::up::{kubectl_get_svc, sock, wait_for_vip};

const SERVICE: &str = "source-ip";
const ENDPOINT_NODE: &str = "node-1";

/// Curls through every node's NodePort and through the VIP routed via every node.
async fn traffic_table(state: &LabState, service: &Service, policy: &str) -> anyhow::Result<()> {
    let (lab, ns) = (&state.lab_binary, &state.client_ns);
    let vip = objects::ingress_ip(service).expect("waited");
    let port = objects::node_port(service).expect("a NodePort");
    let mut rows = Vec::new();
    for node in &state.nodes {
        rows.push(
            report::traffic_row(
                lab,
                ns,
                format!("nodeport:{}:{port}", node.ip),
                policy,
                &node.name,
                sock(node.ip, port),
            )
            .await,
        );
    }
    for node in &state.nodes {
        report::route_vip_via(ns, vip, node.ip)?;
        rows.push(
            report::traffic_row(
                lab,
                ns,
                format!("vip:{vip}:{SERVICE_PORT}"),
                policy,
                &node.name,
                sock(vip, SERVICE_PORT),
            )
            .await,
        );
    }
    print!("{}", render_table(&TRAFFIC_HEADERS, &rows));
    Ok(())
}

pub async fn source_ip(dir: &std::path::Path) -> anyhow::Result<()> {
    let state = super::running_lab(dir)?;
    let client = super::client(&state.kubeconfig).await?;
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let endpoint = state.node(ENDPOINT_NODE)?.clone();
    let (lab, ns) = (&state.lab_binary, &state.client_ns);

    say(&format!(
        "Service {SERVICE}, externalTrafficPolicy Cluster, one endpoint: the echo pod {} on {}",
        endpoint.pods[0].ip, endpoint.name
    ));
    if services.get_opt(SERVICE).await?.is_some() {
        let patch = json!({"spec": {"externalTrafficPolicy": "Cluster"}});
        services
            .patch(SERVICE, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    } else {
        services
            .create(
                &PostParams::default(),
                &objects::echo_service(SERVICE, "Cluster"),
            )
            .await?;
        let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
        let slice = objects::echo_slice(SERVICE, &endpoint.name, endpoint.pods[0].ip);
        slices.create(&PostParams::default(), &slice).await?;
    }
    let service = wait_for_vip(&services, SERVICE).await?;
    kubectl_get_svc(&state.kubeconfig);
    let port = objects::node_port(&service).expect("a NodePort");
    // Every node forwards under Cluster: wait until the agents have the new Service.
    for node in &state.nodes {
        report::retry(Duration::from_secs(30), || {
            report::seen_from(lab, ns, sock(node.ip, port))
        })
        .await
        .ok_or_else(|| anyhow::anyhow!("{}:{port} did not answer within 30s", node.ip))?;
    }
    say("before: externalTrafficPolicy Cluster (each node SNATs to its own address)");
    traffic_table(&state, &service, "Cluster").await?;

    say(&format!(
        "kubectl patch svc {SERVICE} -p '{{\"spec\":{{\"externalTrafficPolicy\":\"Local\"}}}}'"
    ));
    let patch = json!({"spec": {"externalTrafficPolicy": "Local"}});
    services
        .patch(SERVICE, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let service = report::retry(Duration::from_secs(20), || async {
        let service = services.get(SERVICE).await.ok()?;
        objects::health_check_node_port(&service).map(|_| service)
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("no healthCheckNodePort allocated within 20s"))?;
    let health_port = objects::health_check_node_port(&service).expect("waited");
    println!("healthCheckNodePort {health_port} allocated");
    let endpoint_health = sock(endpoint.ip, health_port);
    report::retry(Duration::from_secs(30), || async {
        let answer = report::health_from(lab, ns, endpoint_health).await?;
        (answer.status == 200).then_some(())
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("{endpoint_health}/healthz did not say 200 within 30s"))?;
    for node in &state.nodes {
        report::retry(Duration::from_secs(30), || {
            report::health_from(lab, ns, sock(node.ip, health_port))
        })
        .await
        .ok_or_else(|| anyhow::anyhow!("{} did not answer its health check", node.name))?;
    }
    // The endpoint's node keeps the client's address once its agent has the Local rules.
    report::retry(Duration::from_secs(30), || async {
        let seen = report::seen_from(lab, ns, sock(endpoint.ip, port)).await?;
        (seen == state.client_ip().to_string()).then_some(())
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("{} did not switch to Local within 30s", endpoint.name))?;

    say(&format!(
        "after: externalTrafficPolicy Local (only {ENDPOINT_NODE} answers, with the client's address)"
    ));
    traffic_table(&state, &service, "Local").await?;

    say(&format!(
        "each node's /healthz on healthCheckNodePort {health_port} (what a load balancer asks)"
    ));
    let mut rows = Vec::new();
    for node in &state.nodes {
        let addr = sock(node.ip, health_port);
        rows.push(report::health_row(
            &node.name,
            addr,
            report::health_from(lab, ns, addr).await,
        ));
    }
    print!("{}", render_table(&HEALTH_HEADERS, &rows));
    Ok(())
}
