//! The GCP provider against the fake Compute server (`lab/src/fake_compute.rs`, re-exported as
//! `portico_tests::fake_compute`) on loopback: the real controller binary with `--provider gcp
//! --gcp-endpoint-url http://127.0.0.1:<port>` against the lab API server. Nodes carry
//! `gce://lab-project/<zone>/<name>` providerIDs.

use std::time::Duration;

use google_cloud_compute_v1::model;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use portico_api::keys::reason;
use portico_tests::fake_compute::{self, FakeCompute, PROJECT, REGION};
use portico_tests::lab_cluster::{LabCluster, Process, mk_cloud_node, mk_lb_service, wait_for};
use portico_tests::moto::metric_sum;
use serde_json::{Value, json};

pub(crate) fn spawn_gcp_controller(
    cluster: &LabCluster,
    fake: &FakeCompute,
    name: &str,
) -> Process {
    fake_compute::spawn_gcp_controller(cluster, &fake.endpoint(), name)
}

fn mk_node(name: &str, labels: &[(&str, &str)], taints: &[&str]) -> Node {
    mk_cloud_node(
        name,
        &format!("gce://{PROJECT}/{REGION}-a/{name}"),
        labels,
        taints,
    )
}

pub(crate) async fn add_nodes(cluster: &LabCluster, names: &[&str]) -> Api<Node> {
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    for name in names {
        nodes
            .create(&PostParams::default(), &mk_node(name, &[], &[]))
            .await
            .unwrap();
    }
    nodes
}

/// `"a"` + the UID without dashes, cut to 32 characters.
pub(crate) fn lb_name(uid: &str) -> String {
    let mut name = format!("a{}", uid.replace('-', ""));
    name.truncate(32);
    name
}

/// The names of the pool's instances, sorted.
fn instances(fake: &FakeCompute, pool: &str) -> Vec<String> {
    let mut names: Vec<String> = fake
        .get("targetPools", pool)
        .map(|p| p["instances"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default()
        .iter()
        .filter_map(|u| u.as_str()?.rsplit('/').next().map(String::from))
        .collect();
    names.sort();
    names
}

/// The name of the pool's one health check.
pub(crate) fn pool_check(fake: &FakeCompute, pool: &str) -> Option<String> {
    let pool = fake.get("targetPools", pool)?;
    let checks = pool["healthChecks"].as_array()?;
    (checks.len() == 1).then(|| {
        checks[0]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned()
    })
}

pub(crate) async fn wait_fake(what: &str, probe: impl Fn() -> bool) {
    wait_for(what, Duration::from_secs(60), || async {
        probe().then_some(())
    })
    .await
}

fn gcp_calls(controller: &Process, labels: &[&str]) -> f64 {
    let (_, body) = portico_tests::cli::http_get(controller.admin, "/metrics").unwrap();
    metric_sum(&body, "portico_controller_gcp_calls_total{", labels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_pool_lb_follows_the_service_and_its_nodes_and_is_cleaned_up() {
    let fake = FakeCompute::start().await;
    let cluster = LabCluster::start().await;
    let nodes = add_nodes(&cluster, &["node-0", "node-1"]).await;
    let _controller = spawn_gcp_controller(&cluster, &fake, "controller");

    // Create (Local): address, both firewall rules, the Service's own check, pool, rule.
    let mut service = mk_lb_service("web", 80, &[]);
    service.spec.as_mut().unwrap().external_traffic_policy = Some("Local".into());
    let created = cluster.create_service("default", &service).await;
    let name = lb_name(created.metadata.uid.as_deref().unwrap());
    let ip = cluster.wait_for_ingress("default", "web").await[0].clone();
    let (status, _) = cluster.wait_for_condition("default", "web", "Ready").await;
    assert_eq!(status, "True");
    let health_port = cluster
        .services("default")
        .get("web")
        .await
        .unwrap()
        .spec
        .unwrap()
        .health_check_node_port
        .unwrap();
    wait_fake("the pool with both nodes", || {
        instances(&fake, &name) == ["node-0", "node-1"]
    })
    .await;
    let address = fake.get("addresses", &name).unwrap();
    assert_eq!(address["address"], ip.as_str());
    let description: Value =
        serde_json::from_str(address["description"].as_str().unwrap()).unwrap();
    assert_eq!(description["kubernetes.io/service-name"], "default/web");
    assert_eq!(description["kubernetes.io/cluster-name"], "lab");
    let firewall = fake.get("firewalls", &format!("k8s-fw-{name}")).unwrap();
    assert_eq!(
        firewall["allowed"],
        json!([{"IPProtocol": "tcp", "ports": ["80"]}])
    );
    assert_eq!(firewall["sourceRanges"], json!(["0.0.0.0/0"]));
    assert_eq!(firewall["destinationRanges"], json!([format!("{ip}/32")]));
    assert_eq!(firewall["targetTags"], json!(["portico-node"]));
    let hc_firewall = fake
        .get("firewalls", &format!("k8s-{name}-http-hc"))
        .unwrap();
    assert_eq!(
        hc_firewall["sourceRanges"],
        json!(["130.211.0.0/22", "35.191.0.0/16"])
    );
    assert_eq!(
        hc_firewall["allowed"][0]["ports"],
        json!([health_port.to_string()])
    );
    let check = fake.get("httpHealthChecks", &name).unwrap();
    assert_eq!(
        [
            &check["port"],
            &check["requestPath"],
            &check["checkIntervalSec"],
            &check["timeoutSec"],
            &check["healthyThreshold"],
            &check["unhealthyThreshold"]
        ],
        [
            &json!(health_port),
            &json!("/healthz"),
            &json!(8),
            &json!(1),
            &json!(1),
            &json!(3)
        ]
    );
    assert_eq!(pool_check(&fake, &name).as_deref(), Some(name.as_str()));
    assert_eq!(
        fake.get("targetPools", &name).unwrap()["sessionAffinity"],
        "NONE"
    );
    let rule = fake.get("forwardingRules", &name).unwrap();
    assert_eq!(rule["IPAddress"], ip.as_str());
    assert_eq!(rule["IPProtocol"], "TCP");
    assert_eq!(rule["portRange"], "80-80");
    assert!(
        rule["target"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/targetPools/{name}"))
    );

    // A second port: the rule's range and the firewall follow.
    let services = cluster.services("default");
    services
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ports": [
                {"name": "tcp", "port": 80, "protocol": "TCP"},
                {"name": "https", "port": 443, "protocol": "TCP"},
            ]}})),
        )
        .await
        .unwrap();
    wait_fake("the rule on 80-443", || {
        fake.get("forwardingRules", &name)
            .is_some_and(|r| r["portRange"] == "80-443")
            && fake
                .get("firewalls", &format!("k8s-fw-{name}"))
                .is_some_and(|f| f["allowed"][0]["ports"] == json!(["443", "80"]))
    })
    .await;

    // Local → Cluster: the pool moves to the shared check on 10256; the Service's own goes.
    services
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"externalTrafficPolicy": "Cluster"}})),
        )
        .await
        .unwrap();
    wait_fake(
        "the pool on the shared check, the own check deleted",
        || {
            pool_check(&fake, &name).as_deref() == Some("k8s-lab-node")
                && fake.get("httpHealthChecks", &name).is_none()
        },
    )
    .await;
    let shared = fake.get("httpHealthChecks", "k8s-lab-node").unwrap();
    assert_eq!(
        (shared["port"].clone(), shared["requestPath"].clone()),
        (json!(10256), json!("/healthz"))
    );
    wait_fake("the health check firewall on 10256", || {
        fake.get("firewalls", &format!("k8s-{name}-http-hc"))
            .is_some_and(|f| f["allowed"][0]["ports"] == json!(["10256"]))
    })
    .await;

    // Cluster → Local: the Service's own check again, on its new healthCheckNodePort.
    services
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"externalTrafficPolicy": "Local"}})),
        )
        .await
        .unwrap();
    wait_fake("the pool back on the Service's own check", || {
        pool_check(&fake, &name).as_deref() == Some(name.as_str())
    })
    .await;
    // No other pool uses the shared check: it goes too (cloud-provider-gcp's cleanup).
    wait_fake("the unused shared check deleted", || {
        fake.get("httpHealthChecks", "k8s-lab-node").is_none()
    })
    .await;

    // Nodes: one added, one excluded by label, one tainted for deletion.
    nodes
        .create(&PostParams::default(), &mk_node("node-2", &[], &[]))
        .await
        .unwrap();
    nodes
        .create(
            &PostParams::default(),
            &mk_node(
                "node-excluded",
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
        .patch("node-0", &PatchParams::default(), &Patch::Merge(json!({"spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule"}]}})))
        .await
        .unwrap();
    wait_fake("the pool following the node set", || {
        instances(&fake, &name) == ["node-1", "node-2"]
    })
    .await;

    // Delete: nothing is left.
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_fake("everything of the Service deleted", || fake.count() == 0).await;
    // The Event is written after the last delete: waited for, not read at once.
    let events = wait_for(
        "the DeletedLoadBalancer Event",
        Duration::from_secs(30),
        || async {
            let events = cluster.events_for("default", "web").await;
            events
                .iter()
                .any(|(_, r, _)| r == reason::DELETED_LOAD_BALANCER)
                .then_some(events)
        },
    )
    .await;
    for wanted in [
        reason::ENSURING_LOAD_BALANCER,
        reason::ENSURED_LOAD_BALANCER,
    ] {
        assert!(
            events.iter().any(|(_, r, _)| r == wanted),
            "{wanted}: {events:?}"
        );
    }
}

/// Reconciles the controller finished without an error, from its metrics.
fn successful_reconciles(controller: &Process) -> f64 {
    let (_, body) = portico_tests::cli::http_get(controller.admin, "/metrics").unwrap();
    metric_sum(
        &body,
        "portico_controller_reconciles_total{",
        &["result=\"success\""],
    )
}

/// 429s on the way in are retried (and counted); once built, a resync writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_survived_and_a_no_op_resync_makes_no_write() {
    let fake = FakeCompute::start().await;
    let cluster = LabCluster::start().await;
    add_nodes(&cluster, &["node-0"]).await;
    fake.throttle_next(3);
    let controller = spawn_gcp_controller(&cluster, &fake, "controller");
    let created = cluster
        .create_service("default", &mk_lb_service("web", 80, &[]))
        .await;
    let name = lb_name(created.metadata.uid.as_deref().unwrap());
    cluster.wait_for_condition("default", "web", "Ready").await;
    wait_fake("the pool with its node", || {
        instances(&fake, &name) == ["node-0"]
    })
    .await;
    assert_eq!(fake.calls().iter().filter(|c| c.throttled).count(), 3);
    assert!(
        gcp_calls(&controller, &["result=\"throttled\""]) >= 1.0,
        "{}",
        controller.logs()
    );

    let writes = fake.writes();
    let metric_writes = gcp_calls(&controller, &["kind=\"write\""]);
    let reads = gcp_calls(&controller, &["kind=\"read\""]);
    let reconciles = successful_reconciles(&controller);
    cluster
        .services("default")
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"example.com/touched": "1"}}})),
        )
        .await
        .unwrap();
    wait_for("the resync", Duration::from_secs(30), || async {
        (successful_reconciles(&controller) > reconciles).then_some(())
    })
    .await;
    assert_eq!(fake.writes(), writes, "{:?}", fake.calls());
    assert_eq!(gcp_calls(&controller, &["kind=\"write\""]), metric_writes);
    // One get per resource (address, two firewall rules, check, pool, rule) per reconcile.
    let resyncs = successful_reconciles(&controller) - reconciles;
    let resync_reads = gcp_calls(&controller, &["kind=\"read\""]) - reads;
    assert!(
        resync_reads <= 6.0 * resyncs,
        "{resync_reads} reads for {resyncs} reconciles"
    );
}

/// A mutation whose Operation ends in an error: a Warning names the resource and the code, and
/// the next attempt builds the load balancer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_error_is_a_warning_naming_the_resource_and_the_code() {
    let fake = FakeCompute::start().await;
    let cluster = LabCluster::start().await;
    add_nodes(&cluster, &["node-0"]).await;
    fake.fail_next_operation("targetPools", "QUOTA_EXCEEDED");
    let _controller = spawn_gcp_controller(&cluster, &fake, "controller");
    cluster
        .create_service("default", &mk_lb_service("web", 80, &[]))
        .await;
    let note = cluster
        .wait_for_warning(
            "default",
            "web",
            reason::SYNC_LOAD_BALANCER_FAILED,
            &["QUOTA_EXCEEDED", "target pool"],
        )
        .await;
    assert!(note.contains("targetPools.insert"), "{note}");
    cluster.wait_for_condition("default", "web", "Ready").await;
}

/// While the controller is down one Service is deleted (its finalizer removed) and another's
/// rule and a pool instance go behind Portico's back: on start both are put right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_start_drift_is_repaired_and_load_balancers_of_deleted_services_are_deleted() {
    let fake = FakeCompute::start().await;
    let cluster = LabCluster::start().await;
    add_nodes(&cluster, &["node-0", "node-1"]).await;
    let mut controller = spawn_gcp_controller(&cluster, &fake, "controller");
    let mut names = Vec::new();
    for service in ["kept", "gone", "gone-too"] {
        let created = cluster
            .create_service("default", &mk_lb_service(service, 80, &[]))
            .await;
        names.push(lb_name(created.metadata.uid.as_deref().unwrap()));
    }
    let (kept, gone, gone_too) = (names[0].clone(), names[1].clone(), names[2].clone());
    wait_fake("three rules", || {
        fake.list("forwardingRules").len() == 3
            && instances(&fake, &gone).len() == 2
            && instances(&fake, &gone_too).len() == 2
    })
    .await;
    controller.kill();

    let services = cluster.services("default");
    for service in ["gone", "gone-too"] {
        services
            .patch(
                service,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await
            .unwrap();
        services
            .delete(service, &DeleteParams::default())
            .await
            .unwrap();
    }
    fake.set("forwardingRules", &kept, None);
    let mut pool = fake.get("targetPools", &kept).unwrap();
    pool["instances"].as_array_mut().unwrap().pop();
    fake.set("targetPools", &kept, Some(pool));
    let mut firewall = fake.get("firewalls", &format!("k8s-fw-{kept}")).unwrap();
    firewall["sourceRanges"] = json!(["10.0.0.0/8"]);
    fake.set("firewalls", &format!("k8s-fw-{kept}"), Some(firewall));

    // One item per list page: the orphan scan must follow nextPageToken to find both.
    fake.limit_pages(1);
    let _restarted = spawn_gcp_controller(&cluster, &fake, "restarted");
    wait_fake("the orphan deleted and the drift repaired", || {
        fake.get("forwardingRules", &kept).is_some()
            && instances(&fake, &kept).len() == 2
            && fake
                .get("firewalls", &format!("k8s-fw-{kept}"))
                .is_some_and(|f| f["sourceRanges"] == json!(["0.0.0.0/0"]))
            && fake.get("addresses", &gone).is_none()
            && fake.get("addresses", &gone_too).is_none()
    })
    .await;
    for collection in [
        "forwardingRules",
        "targetPools",
        "addresses",
        "firewalls",
        "httpHealthChecks",
    ] {
        assert!(
            fake.list(collection).iter().all(|r| {
                let name = r["name"].as_str().unwrap();
                !name.contains(&gone) && !name.contains(&gone_too)
            }),
            "{collection}: {:?}",
            fake.list(collection)
        );
    }
}

/// The fake keeps the API's rules: what is in use cannot be deleted, so the provider's order
/// (rule, pool, check, address) passes and the reverse is refused.
#[tokio::test]
async fn the_fake_refuses_a_delete_order_the_api_refuses() {
    let fake = FakeCompute::start().await;
    let base = format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}");
    assert_eq!(
        fake.insert("httpHealthChecks", json!({"name": "hc", "port": 10256}))
            .0,
        200
    );
    assert_eq!(fake.insert("addresses", json!({"name": "lb"})).0, 200);
    let ip = fake.get("addresses", "lb").unwrap()["address"].clone();
    let pool =
        json!({"name": "lb", "healthChecks": [format!("{base}/global/httpHealthChecks/hc")]});
    assert_eq!(fake.insert("targetPools", pool).0, 200);
    let rule = json!({"name": "lb", "IPAddress": ip, "target": format!("{base}/regions/{REGION}/targetPools/lb")});
    assert_eq!(fake.insert("forwardingRules", rule).0, 200);
    for (collection, name) in [
        ("addresses", "lb"),
        ("httpHealthChecks", "hc"),
        ("targetPools", "lb"),
    ] {
        let (status, body) = fake.delete(collection, name);
        assert_eq!(status, 400, "{collection}: {body}");
        assert_eq!(
            body["error"]["errors"][0]["reason"],
            "resourceInUseByAnotherResource"
        );
    }
    for (collection, name) in [
        ("forwardingRules", "lb"),
        ("targetPools", "lb"),
        ("httpHealthChecks", "hc"),
        ("addresses", "lb"),
    ] {
        assert_eq!(fake.delete(collection, name).0, 200, "{collection}");
    }
    assert_eq!(fake.count(), 0);
    assert_eq!(fake.delete("addresses", "lb").0, 404);
}

/// What the fake answers parses as the client's own model types, and what the client sends is
/// what the fake stores (field names, camelCase, enums as strings, uint64 IDs as strings).
#[tokio::test]
async fn the_fakes_resources_round_trip_through_the_clients_model_types() {
    let fake = FakeCompute::start().await;
    let check = model::HttpHealthCheck::new()
        .set_name("hc")
        .set_port(10256)
        .set_request_path("/healthz");
    let (status, op) = fake.insert("httpHealthChecks", serde_json::to_value(&check).unwrap());
    assert_eq!(status, 200);
    let op: model::Operation = serde_json::from_value(op).unwrap();
    assert_eq!(op.status, Some(model::operation::Status::Pending));
    let pool = model::TargetPool::new()
        .set_name("lb")
        .set_session_affinity(model::target_pool::SessionAffinity::ClientIp)
        .set_health_checks([format!(
            "https://www.googleapis.com/compute/v1/projects/{PROJECT}/global/httpHealthChecks/hc"
        )]);
    fake.insert("targetPools", serde_json::to_value(&pool).unwrap());
    let rule = model::ForwardingRule::new()
        .set_name("lb")
        .set_ip_protocol(model::forwarding_rule::IPProtocol::Udp)
        .set_port_range("53-53")
        .set_target(format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}/regions/{REGION}/targetPools/lb"));
    fake.insert("forwardingRules", serde_json::to_value(&rule).unwrap());
    let firewall =
        model::Firewall::new()
            .set_name("fw")
            .set_allowed([model::firewall::Allowed::new()
                .set_ip_protocol("tcp")
                .set_ports(["80"])]);
    fake.insert("firewalls", serde_json::to_value(&firewall).unwrap());
    fake.insert(
        "addresses",
        serde_json::to_value(model::Address::new().set_name("lb")).unwrap(),
    );

    let got: model::HttpHealthCheck =
        serde_json::from_value(fake.get("httpHealthChecks", "hc").unwrap()).unwrap();
    assert_eq!(
        (got.port, got.request_path.as_deref()),
        (Some(10256), Some("/healthz"))
    );
    assert!(got.id.is_some() && got.self_link.is_some() && got.creation_timestamp.is_some());
    let got: model::TargetPool =
        serde_json::from_value(fake.get("targetPools", "lb").unwrap()).unwrap();
    assert_eq!(
        got.session_affinity,
        Some(model::target_pool::SessionAffinity::ClientIp)
    );
    let got: model::ForwardingRule =
        serde_json::from_value(fake.get("forwardingRules", "lb").unwrap()).unwrap();
    assert_eq!(
        got.ip_protocol,
        Some(model::forwarding_rule::IPProtocol::Udp)
    );
    let got: model::Firewall =
        serde_json::from_value(fake.get("firewalls", "fw").unwrap()).unwrap();
    assert_eq!(got.allowed[0].ports, ["80"]);
    let got: model::Address = serde_json::from_value(fake.get("addresses", "lb").unwrap()).unwrap();
    assert!(got.address.is_some());
    let list: model::AddressList =
        serde_json::from_value(json!({"items": fake.list("addresses")})).unwrap();
    assert_eq!(list.items.len(), 1);
}

/// `targetPools.getHealth` answers in the client's `TargetPoolInstanceHealth` shape with what the
/// lab cloud reported: a member nobody reported on is UNHEALTHY (GCP: new members start
/// unhealthy), a non-member is refused.
#[tokio::test]
async fn the_fakes_pool_health_is_what_the_lab_cloud_reported_in_the_clients_shape() {
    let fake = FakeCompute::start().await;
    let node = |name: &str| {
        format!(
            "https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/{REGION}-a/instances/{name}"
        )
    };
    let pool = model::TargetPool::new()
        .set_name("lb")
        .set_instances([node("node-0"), node("node-1")]);
    fake.insert("targetPools", serde_json::to_value(&pool).unwrap());
    let rule = model::ForwardingRule::new()
        .set_name("lb")
        .set_ip_address("203.0.113.9")
        .set_target(format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}/regions/{REGION}/targetPools/lb"));
    fake.insert("forwardingRules", serde_json::to_value(&rule).unwrap());
    let state = |instance: &str| {
        let (status, body) = fake.pool_health("lb", instance);
        assert_eq!(status, 200, "{body}");
        let health: model::TargetPoolInstanceHealth = serde_json::from_value(body).unwrap();
        assert_eq!(health.health_status.len(), 1);
        let status = &health.health_status[0];
        assert_eq!(status.ip_address.as_deref(), Some("203.0.113.9"));
        assert_eq!(status.instance.as_deref(), Some(instance));
        status.health_state.clone()
    };
    use model::health_status::HealthState;
    assert_eq!(state(&node("node-0")), Some(HealthState::Unhealthy));
    let (status, _) = fake.report_health("lb", json!({ node("node-0"): "HEALTHY" }));
    assert_eq!(status, 200);
    assert_eq!(state(&node("node-0")), Some(HealthState::Healthy));
    assert_eq!(state(&node("node-1")), Some(HealthState::Unhealthy));
    let (status, body) = fake.pool_health("lb", &node("node-9"));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a member")
    );
    let (status, _) = fake.report_health("lb", json!({ node("node-0"): "GREEN" }));
    assert_eq!(status, 400);
}

#[test]
fn gcp_without_its_flags_is_a_start_up_error_naming_them() {
    let Some(binary) = portico_tests::workspace_binary("portico-controller") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    for (args, flag) in [
        (
            vec!["--provider", "gcp", "--cluster-name", "lab"],
            "--gcp-project",
        ),
        (
            vec![
                "--provider",
                "gcp",
                "--cluster-name",
                "lab",
                "--gcp-project",
                "p",
                "--gcp-region",
                "r",
            ],
            "--gcp-node-tags",
        ),
    ] {
        let output = portico_tests::cli::isolated(&binary, home.path())
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(flag), "{stderr}");
    }
}
