//! One scale of the bench: objects written, the agent started, and its row of the table.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PostParams};
use portico_agent::dataplane::{IpFamily, Protocol, ServicePortKey};
use portico_agent::iptables::names;
use portico_agent::nftables::names as nft_names;
use portico_tests::lab_cluster::LabCluster;
use serde_json::json;

use crate::node_ns::{NodeNs, remove_leftovers};
use crate::objects::{
    apply_params, create_namespaces, create_objects, namespace, pod_ip, slice_json,
};
use crate::process::Agent;
use crate::{NODE, PARALLEL};

fn port_key(index: u32) -> ServicePortKey {
    ServicePortKey {
        family: IpFamily::V4,
        namespace: namespace(index),
        name: format!("svc-{index}"),
        port_name: "http".into(),
        protocol: Protocol::Tcp,
    }
}

/// `--proxy-mode nftables` in `BENCH_AGENT_ARGS`: the rules are read with nft, not iptables.
fn nftables_mode() -> bool {
    std::env::var("BENCH_AGENT_ARGS").is_ok_and(|args| args.contains("nftables"))
}

/// The Services of `pending` whose rules do not yet send to their endpoint 1 of `generation`
/// (on another node, so DNATed from the Service's own chain in iptables, and an element of the
/// cluster endpoint map in nftables, listed once for all of them).
fn not_reflected(node: &NodeNs, pending: &[u32], generation: u32) -> Vec<u32> {
    let map = nftables_mode().then(|| {
        node.exec(&[
            "nft",
            "list",
            "map",
            "ip",
            nft_names::TABLE,
            nft_names::CLUSTER_IP_ENDPOINTS,
        ])
    });
    pending
        .iter()
        .copied()
        .filter(|&index| {
            let endpoint = pod_ip(index, 1, generation);
            match &map {
                Some(elements) => !elements.contains(&format!("{endpoint} . 8080")),
                None => {
                    let chain = names::svc_chain(&port_key(index));
                    !node
                        .exec(&["iptables", "-w", "-t", "nat", "-S", &chain])
                        .contains(&format!("{endpoint}:8080"))
                }
            }
        })
        .collect()
}

/// The per-Service chains the rules hold (iptables SVC chains, or nftables service chains).
fn service_chains(node: &NodeNs) -> usize {
    if nftables_mode() {
        node.exec(&["nft", "list", "chains", "ip"])
            .lines()
            .map(str::trim_start)
            // `service-endpoints-check` is one of the table's fixed chains.
            .filter(|l| {
                l.starts_with("chain service-") && !l.starts_with("chain service-endpoints-check")
            })
            .count()
    } else {
        node.exec(&["iptables-save", "-t", "nat"])
            .lines()
            .filter(|l| l.starts_with(":PORTICO-SVC-"))
            .count()
    }
}

pub struct Row {
    pub scale: u32,
    pub clean: Duration,
    pub restart: Duration,
    pub rss_first: u64,
    pub rss_minute: u64,
    pub idle_cpu: f64,
    pub idle_secs: u64,
    pub idle_syncs: f64,
    pub churn: Duration,
    pub chains: usize,
}

/// Waits until the agent used no CPU for a whole second, or 30 s.
async fn settle(agent: &Agent) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = agent.cpu_seconds();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = agent.cpu_seconds();
        if now == last {
            return;
        }
        last = now;
    }
}

pub async fn bench_scale(scale: u32, idle_secs: u64) -> Row {
    remove_leftovers();
    let node = NodeNs::create();
    let listen = vec![
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::new(node.host_ip, 0),
    ];
    let cluster = LabCluster::start_listening(listen).await;
    let IpAddr::V4(node_ip) = node.node_ip else {
        unreachable!()
    };
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": NODE},
                "status": {"addresses": [{"type": "InternalIP", "address": node_ip.to_string()}]},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    create_namespaces(&cluster).await;
    let started = Instant::now();
    create_objects(&cluster, scale).await;
    eprintln!("{scale}: objects created in {:?}", started.elapsed());
    let kubeconfig = cluster.kubeconfig_via(node.host_ip);
    let log = cluster.dir.path().join("agent.log");

    let since = Instant::now();
    let agent = Agent::start(&node, &kubeconfig, &log);
    let clean = agent.wait_sync(0.0, since).await;
    let rss_first = agent.proc_status("VmRSS:");
    eprintln!("{scale}: first sync {clean:?}");
    let chains = service_chains(&node);

    // The idle minute: nothing changes. It starts once the agent has settled after its first
    // sync (a second with no CPU, at most 30 s): what the agent finishes after the sync it
    // reported (health listeners, Events, giving memory back) is start-up, not rest.
    settle(&agent).await;
    let (cpu_before, syncs_before) = (agent.cpu_seconds(), agent.full_syncs());
    let idle_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let idle_cpu = (agent.cpu_seconds() - cpu_before) / idle_started.elapsed().as_secs_f64();
    let idle_syncs = agent.full_syncs() - syncs_before;
    let rss_minute = agent.proc_status("VmRSS:");

    // Churn: 100 EndpointSlices get a new first endpoint.
    let changed: Vec<u32> = (0..100).map(|i| i * (scale / 100)).collect();
    let syncs_at_churn = agent.syncs();
    let churn_started = Instant::now();
    futures::stream::iter(changed.clone())
        .map(|index| {
            let client = cluster.client.clone();
            async move {
                let slices: Api<EndpointSlice> = Api::namespaced(client, &namespace(index));
                let slice: EndpointSlice = serde_json::from_value(slice_json(index, 1)).unwrap();
                slices
                    .patch(
                        &format!("svc-{index}-abcde"),
                        &apply_params(),
                        &Patch::Apply(&slice),
                    )
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(PARALLEL)
        .collect::<Vec<_>>()
        .await;
    // Each sync the agent reports is a moment the rules may have caught up: note its time, then
    // check the Services still pending (listing chains is too slow to poll at scale).
    let mut pending = changed.clone();
    let mut syncs = syncs_at_churn;
    let churn = loop {
        let now = agent.syncs();
        if now > syncs {
            let at = churn_started.elapsed();
            syncs = now;
            pending = not_reflected(&node, &pending, 1);
            if pending.is_empty() {
                break at;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };

    // Restart over the existing rules.
    agent.stop();
    let since = Instant::now();
    let agent = Agent::start(&node, &kubeconfig, &log);
    let restart = agent.wait_sync(0.0, since).await;
    agent.stop();
    Row {
        scale,
        clean,
        restart,
        rss_first,
        rss_minute,
        idle_cpu,
        idle_secs,
        idle_syncs,
        churn,
        chains,
    }
}
