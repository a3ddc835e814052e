//! The AWS provider against moto in server mode on loopback: the real controller binary with
//! `--provider aws --aws-endpoint-url http://127.0.0.1:<port>` against the lab API server.
//! moto's EC2 instances carry the IDs the Nodes' `spec.providerID`s name.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::core::v1::ServicePort;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use portico_api::keys::reason;
use portico_tests::lab_cluster::{LabCluster, Process, mk_cloud_node, mk_lb_service, wait_for};
use portico_tests::moto::{self, CLUSTER, Moto, aws_calls};
use portico_tests::throttling_proxy::ThrottlingProxy;
use serde_json::{Value, json};

/// The controller against moto itself.
fn spawn_aws_controller(cluster: &LabCluster, moto: &Moto, name: &str) -> Process {
    moto::spawn_aws_controller(cluster, &moto.endpoint(), name, &[])
}

fn mk_node(name: &str, instance: &str, labels: &[(&str, &str)], taints: &[&str]) -> Node {
    mk_cloud_node(
        name,
        &format!("aws:///us-east-1a/{instance}"),
        labels,
        taints,
    )
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
    let (status, message) = cluster.wait_for_condition("default", "web", "Ready").await;
    assert_eq!(status, "True");
    assert!(message.contains(&hostname), "{message}");
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

    // A bad annotation on a working Service: a Warning naming it, the condition says so, and
    // nothing that works is torn down.
    services
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"portico.dev/aws-healthcheck-timeout": "99"}}}),
            ),
        )
        .await
        .unwrap();
    cluster
        .wait_for_warning(
            "default",
            "web",
            reason::SYNC_LOAD_BALANCER_FAILED,
            &["portico.dev/aws-healthcheck-timeout"],
        )
        .await;
    let (status, _) = cluster
        .wait_for_condition("default", "web", "InvalidConfiguration")
        .await;
    assert_eq!(status, "False");
    let state = moto.state();
    assert_eq!(
        state["load_balancers"][0]["listeners"],
        json!([["TCP", 80]])
    );
    assert_eq!(targets(&state).len(), 2, "{state}");
    let still = services.get("web").await.unwrap();
    assert_eq!(
        still
            .status
            .unwrap()
            .load_balancer
            .unwrap()
            .ingress
            .unwrap()[0]
            .hostname
            .as_deref(),
        Some(hostname.as_str())
    );
    services
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"portico.dev/aws-healthcheck-timeout": null}}}),
            ),
        )
        .await
        .unwrap();
    cluster.wait_for_condition("default", "web", "Ready").await;

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
    assert!(
        aws_calls(&restarted, &["kind=\"read\""]) > 0.0,
        "{}",
        restarted.logs()
    );
    assert_eq!(
        aws_calls(&restarted, &["kind=\"write\""]),
        0.0,
        "{}",
        restarted.logs()
    );

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

/// Reconciles the controller finished without an error, from its metrics.
fn successful_reconciles(controller: &Process) -> f64 {
    let (_, body) = portico_tests::cli::http_get(controller.admin, "/metrics").unwrap();
    moto::metric_sum(
        &body,
        "portico_controller_reconciles_total{",
        &["result=\"success\""],
    )
}

/// Calls by kind and operation, to compare before and after.
fn calls_of(controller: &Process, labels: &[&str]) -> f64 {
    aws_calls(controller, labels)
}

/// A resync of Services whose load balancers are in place reads twice each and writes nothing,
/// to AWS or to the API server; a node joining then only registers it (no re-describe of the
/// load balancers, listeners or target groups).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_op_resync_reads_twice_and_writes_nothing_and_a_new_node_only_registers_targets() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let instances = moto.setup(3);
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
    let controller = spawn_aws_controller(&cluster, &moto, "controller");
    let mut two_ports = mk_lb_service("two", 80, &[]);
    two_ports
        .spec
        .as_mut()
        .unwrap()
        .ports
        .as_mut()
        .unwrap()
        .push(ServicePort {
            name: Some("dns".into()),
            port: 53,
            protocol: Some("UDP".into()),
            ..Default::default()
        });
    cluster.create_service("default", &two_ports).await;
    cluster
        .create_service("default", &mk_lb_service("one", 80, &[]))
        .await;
    for name in ["one", "two"] {
        cluster.wait_for_condition("default", name, "Ready").await;
    }
    wait_for_state(&moto, "three target groups with both nodes", |s| {
        let groups: Vec<&Value> = s["load_balancers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|lb| lb["target_groups"].as_array().unwrap())
            .collect();
        groups.len() == 3
            && groups
                .iter()
                .all(|g| g["targets"].as_array().is_some_and(|t| t.len() == 2))
    })
    .await;

    // A change Portico does not act on (an annotation of someone else's) starts a reconcile of
    // each Service: the resync path.
    let reads = calls_of(&controller, &["kind=\"read\""]);
    let writes = calls_of(&controller, &["kind=\"write\""]);
    let reconciles = successful_reconciles(&controller);
    let services = cluster.services("default");
    let mut versions = Vec::new();
    for name in ["one", "two"] {
        let touched = services
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"example.com/touched": "1"}}})),
            )
            .await
            .unwrap();
        versions.push(touched.metadata.resource_version.unwrap());
    }
    wait_for(
        "both Services reconciled",
        Duration::from_secs(30),
        || async { (successful_reconciles(&controller) >= reconciles + 2.0).then_some(()) },
    )
    .await;
    let resyncs = successful_reconciles(&controller) - reconciles;
    let resync_reads = calls_of(&controller, &["kind=\"read\""]) - reads;
    assert_eq!(
        calls_of(&controller, &["kind=\"write\""]) - writes,
        0.0,
        "{}",
        controller.logs()
    );
    assert!(
        resync_reads <= 2.0 * resyncs,
        "{resync_reads} reads for {resyncs} reconciles"
    );
    for (name, version) in ["one", "two"].iter().zip(&versions) {
        let now = services.get(name).await.unwrap();
        assert_eq!(
            now.metadata.resource_version.as_ref(),
            Some(version),
            "{name}: no status write"
        );
    }

    // A node joins: its instance is registered in each target group, nothing else is read.
    let describes = |op: &str| calls_of(&controller, &[&format!("operation=\"{op}\"")]);
    let before: Vec<f64> = [
        "DescribeLoadBalancers",
        "DescribeListeners",
        "DescribeTargetGroups",
    ]
    .iter()
    .map(|op| describes(op))
    .collect();
    let registers = describes("RegisterTargets");
    nodes
        .create(
            &PostParams::default(),
            &mk_node("node-2", &instances[2], &[], &[]),
        )
        .await
        .unwrap();
    wait_for_state(&moto, "the new node in every target group", |s| {
        s["load_balancers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|lb| lb["target_groups"].as_array().unwrap())
            .all(|g| g["targets"].as_array().is_some_and(|t| t.len() == 3))
    })
    .await;
    wait_for(
        "the registrations counted",
        Duration::from_secs(10),
        || async { (describes("RegisterTargets") >= registers + 3.0).then_some(()) },
    )
    .await;
    let after: Vec<f64> = [
        "DescribeLoadBalancers",
        "DescribeListeners",
        "DescribeTargetGroups",
    ]
    .iter()
    .map(|op| describes(op))
    .collect();
    assert_eq!(before, after, "{}", controller.logs());
}

/// A proxy in front of moto answers every third call with `Throttling` (or EC2's
/// `RequestLimitExceeded`): the load balancer is still built, and the throttled answers are
/// counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_calls_are_retried_with_backoff_and_counted() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let instances = moto.setup(1);
    let proxy = ThrottlingProxy::start(moto.addr, 3).await;
    let cluster = LabCluster::start().await;
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    nodes
        .create(
            &PostParams::default(),
            &mk_node("node-0", &instances[0], &[], &[]),
        )
        .await
        .unwrap();
    let controller = moto::spawn_aws_controller(&cluster, &proxy.endpoint(), "controller", &[]);
    cluster
        .create_service("default", &mk_lb_service("web", 80, &[]))
        .await;
    cluster.wait_for_condition("default", "web", "Ready").await;
    wait_for_state(&moto, "the NLB with its target", |s| {
        targets(s) == [instances[0].clone()]
            && s["load_balancers"][0]["listeners"] == json!([["TCP", 80]])
    })
    .await;
    assert!(proxy.throttled() > 0, "the proxy throttled nothing");
    let counted = aws_calls(&controller, &["result=\"throttled\""]);
    assert!(
        counted >= 1.0 && counted <= proxy.throttled() as f64,
        "{counted} counted, {} throttled",
        proxy.throttled()
    );
}

/// No subnet is tagged for the cluster: the condition says so and a Warning names the
/// annotation; listing subnets in the annotation makes the load balancer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tagged_subnets_the_service_waits_for_subnets_until_the_annotation_names_them() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    // Subnets tagged for another cluster only.
    let setup = moto.helper(&["setup", "another-cluster", "1"]);
    let cluster = LabCluster::start().await;
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    nodes
        .create(
            &PostParams::default(),
            &mk_node("node-0", setup["instances"][0].as_str().unwrap(), &[], &[]),
        )
        .await
        .unwrap();
    let _controller = spawn_aws_controller(&cluster, &moto, "controller");
    cluster
        .create_service("default", &mk_lb_service("web", 80, &[]))
        .await;
    let (status, message) = cluster
        .wait_for_condition("default", "web", "WaitingForSubnets")
        .await;
    assert_eq!(status, "False");
    assert!(message.contains("kubernetes.io/cluster/lab"), "{message}");
    cluster
        .wait_for_warning(
            "default",
            "web",
            reason::SYNC_LOAD_BALANCER_FAILED,
            &["portico.dev/aws-subnets"],
        )
        .await;
    assert!(
        moto.state()["load_balancers"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let subnets: Vec<&str> = setup["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    cluster
        .services("default")
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "portico.dev/aws-subnets": subnets.join(","),
                "portico.dev/aws-internal": "true",
            }}})),
        )
        .await
        .unwrap();
    cluster.wait_for_condition("default", "web", "Ready").await;
    let state = moto.state();
    assert_eq!(state["load_balancers"][0]["scheme"], "internal", "{state}");
}
