//! The AWS provider against moto in server mode on loopback: the real controller binary with
//! `--provider aws --aws-endpoint-url http://127.0.0.1:<port>` against the lab API server.
//! moto's EC2 instances carry the IDs the Nodes' `spec.providerID`s name.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, NodeSpec, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use portico_api::keys::reason;
use portico_tests::lab_cluster::{LabCluster, Process, mk_lb_service, wait_for};
use portico_tests::moto::{self, CLUSTER, Moto, aws_calls};
use serde_json::{Value, json};

/// The controller against moto itself.
fn spawn_aws_controller(cluster: &LabCluster, moto: &Moto, name: &str) -> Process {
    moto::spawn_aws_controller(cluster, &moto.endpoint(), name, &[])
}

fn mk_node(name: &str, instance: &str, labels: &[(&str, &str)], taints: &[&str]) -> Node {
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
            provider_id: Some(format!("aws:///us-east-1a/{instance}")),
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

/// The only NLB's target groups, once `ready` holds for the state.
async fn wait_for_state(moto: &Moto, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, Duration::from_secs(60), || async {
        let state = moto.state();
        ready(&state).then_some(state)
    })
    .await
}

fn targets(state: &Value) -> Vec<String> {
    let mut ids: Vec<String> = state["load_balancers"][0]["target_groups"][0]["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t[0].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nlb_follows_the_service_and_its_nodes_and_is_cleaned_up() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let setup = moto.helper(&["setup", CLUSTER, "4"]);
    let instances: Vec<String> = setup["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_owned())
        .collect();
    let cluster = LabCluster::start().await;
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    for (i, instance) in instances.iter().take(2).enumerate() {
        nodes
            .create(
                &PostParams::default(),
                &mk_node(&format!("node-{i}"), instance, &[], &[]),
            )
            .await
            .unwrap();
    }
    let mut controller = spawn_aws_controller(&cluster, &moto, "controller");

    // Create: an NLB, one target group aimed at the nodePort, health check on healthCheckNodePort.
    let mut service = mk_lb_service("web", 80, &[]);
    service.spec.as_mut().unwrap().external_traffic_policy = Some("Local".into());
    let created = cluster.create_service("default", &service).await;
    let spec = created.spec.clone().unwrap();
    let node_port = spec.ports.as_ref().unwrap()[0].node_port.unwrap();
    let health_port = spec.health_check_node_port.unwrap();
    let hostname = wait_for(
        "the NLB's DNS name in the status",
        Duration::from_secs(60),
        || async {
            let s = cluster.services("default").get("web").await.ok()?;
            s.status?.load_balancer?.ingress?.first()?.hostname.clone()
        },
    )
    .await;
    let mut want_targets: Vec<String> = instances[..2].to_vec();
    want_targets.sort();
    let state = wait_for_state(&moto, "the NLB with both nodes", |s| {
        targets(s) == want_targets
    })
    .await;
    let lb = &state["load_balancers"][0];
    assert_eq!(lb["dns"], hostname.as_str());
    assert_eq!(lb["scheme"], "internet-facing");
    assert_eq!(lb["tags"]["kubernetes.io/cluster/lab"], "owned");
    assert_eq!(lb["tags"]["kubernetes.io/service-name"], "default/web");
    assert_eq!(lb["listeners"], json!([["TCP", 80]]));
    let group = &lb["target_groups"][0];
    assert_eq!(group["protocol"], "TCP");
    assert_eq!(
        group["health"],
        json!(["HTTP", health_port.to_string(), "/healthz", 10, 6, 2, 2])
    );
    assert!(
        group["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t[1] == node_port),
        "{group}"
    );

    // Local → Cluster: the health check moves to the agent's 10256 /healthz.
    let services = cluster.services("default");
    services
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"externalTrafficPolicy": "Cluster"}})),
        )
        .await
        .unwrap();
    wait_for_state(&moto, "the health check on 10256", |s| {
        s["load_balancers"][0]["target_groups"][0]["health"]
            == json!(["HTTP", "10256", "/healthz", 30, 6, 3, 3])
    })
    .await;

    // Nodes: one added, one labelled exclude, one tainted for deletion: only the eligible follow.
    nodes
        .create(
            &PostParams::default(),
            &mk_node("node-2", &instances[2], &[], &[]),
        )
        .await
        .unwrap();
    nodes
        .create(
            &PostParams::default(),
            &mk_node(
                "node-excluded",
                &instances[3],
                &[(
                    "node.kubernetes.io/exclude-from-external-load-balancers",
                    "true",
                )],
                &[],
            ),
        )
        .await
        .unwrap();
    nodes
        .patch(
            "node-0",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule"}]}})),
        )
        .await
        .unwrap();
    let mut want_targets = vec![instances[1].clone(), instances[2].clone()];
    want_targets.sort();
    wait_for_state(&moto, "targets following the node set", |s| {
        targets(s) == want_targets
    })
    .await;

    // A restart changes nothing: the new controller makes reads only.
    controller.kill();
    let restarted = spawn_aws_controller(&cluster, &moto, "restarted");
    wait_for(
        "the restarted controller to be ready",
        Duration::from_secs(60),
        || async {
            portico_tests::cli::http_get(restarted.admin, "/readyz")
                .ok()
                .filter(|(status, _)| *status == 200)
        },
    )
    .await;
    // It did look (the counter is the one the writes would go to), and changed nothing.
    assert!(aws_calls(&restarted, &["kind=\"read\""]) > 0.0, "{}", restarted.logs());
    assert_eq!(aws_calls(&restarted, &["kind=\"write\""]), 0.0, "{}", restarted.logs());

    // Delete: nothing left in moto, and the Events say so.
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_for_state(&moto, "everything deleted", |s| {
        s["load_balancers"].as_array().unwrap().is_empty()
            && s["all_target_groups"].as_array().unwrap().is_empty()
    })
    .await;
    let events = cluster.events_for("default", "web").await;
    for wanted in [
        reason::ENSURING_LOAD_BALANCER,
        reason::ENSURED_LOAD_BALANCER,
        reason::DELETED_LOAD_BALANCER,
    ] {
        assert!(
            events.iter().any(|(_, r, _)| r == wanted),
            "{wanted}: {events:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_annotation_is_a_warning_naming_it_and_creates_nothing() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    moto.helper(&["setup", CLUSTER, "1"]);
    let cluster = LabCluster::start().await;
    let _controller = spawn_aws_controller(&cluster, &moto, "controller");
    cluster
        .create_service(
            "default",
            &mk_lb_service(
                "bad",
                80,
                &[("portico.dev/aws-healthcheck-interval", "often")],
            ),
        )
        .await;
    let note = cluster
        .wait_for_warning(
            "default",
            "bad",
            reason::SYNC_LOAD_BALANCER_FAILED,
            &["portico.dev/aws-healthcheck-interval", "often"],
        )
        .await;
    assert!(
        note.contains("portico.dev/aws-healthcheck-interval"),
        "{note}"
    );
    assert!(
        moto.state()["load_balancers"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn aws_without_a_cluster_name_is_a_start_up_error_naming_the_flag() {
    let Some(binary) = portico_tests::workspace_binary("portico-controller") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let output = portico_tests::cli::isolated(&binary, home.path())
        .args(["--provider", "aws"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--cluster-name"), "{stderr}");
}

/// While the controller is down, one Service loses its finalizer and is deleted, and another's
/// listener and target group are deleted behind Portico's back: on start, the first's NLB is
/// deleted and the second's is repaired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_start_drift_is_repaired_and_load_balancers_of_deleted_services_are_deleted() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let setup = moto.helper(&["setup", CLUSTER, "1"]);
    let cluster = LabCluster::start().await;
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    nodes
        .create(
            &PostParams::default(),
            &mk_node("node-0", setup["instances"][0].as_str().unwrap(), &[], &[]),
        )
        .await
        .unwrap();
    let mut controller = spawn_aws_controller(&cluster, &moto, "controller");
    for name in ["kept", "gone"] {
        cluster
            .create_service("default", &mk_lb_service(name, 80, &[]))
            .await;
    }
    wait_for_state(&moto, "two NLBs with their targets", |s| {
        let lbs = s["load_balancers"].as_array().unwrap();
        lbs.len() == 2
            && lbs.iter().all(|lb| {
                lb["target_groups"][0]["targets"]
                    .as_array()
                    .is_some_and(|t| t.len() == 1)
            })
    })
    .await;
    controller.kill();

    let services = cluster.services("default");
    services
        .patch(
            "gone",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    services
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    let kept_lb = moto.state()["load_balancers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|lb| lb["tags"]["kubernetes.io/service-name"] == "default/kept")
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    moto.helper(&["break", &kept_lb]);

    let _restarted = spawn_aws_controller(&cluster, &moto, "restarted");
    let state = wait_for_state(&moto, "the orphan deleted and the drift repaired", |s| {
        let lbs = s["load_balancers"].as_array().unwrap();
        lbs.len() == 1
            && lbs[0]["name"] == kept_lb.as_str()
            && lbs[0]["listeners"] == json!([["TCP", 80]])
            && lbs[0]["target_groups"][0]["targets"]
                .as_array()
                .is_some_and(|t| t.len() == 1)
    })
    .await;
    assert_eq!(
        state["all_target_groups"].as_array().unwrap().len(),
        1,
        "{state}"
    );
}
