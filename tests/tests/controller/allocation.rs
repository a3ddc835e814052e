//! A pool and a Service give an EXTERNAL-IP; deleting the Service frees it.

use std::process::Command;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::DeleteParams;
use portico_api::AddressPool;
use portico_api::keys::{FINALIZER, reason};
use portico_tests::lab_cluster::{LabCluster, mk_lb_service, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_and_a_service_get_an_external_ip_that_kubectl_shows() {
    let cluster = LabCluster::start().await;
    let _controller = cluster.spawn_controller("controller", &[]);
    cluster.create_pool("lab", &["198.19.0.0/30"], true).await;
    cluster
        .create_service("default", &mk_lb_service("echo", 80, &[]))
        .await;

    let ips = cluster.wait_for_ingress("default", "echo").await;
    assert_eq!(ips.len(), 1);
    assert!(
        ["198.19.0.0", "198.19.0.1", "198.19.0.2", "198.19.0.3"].contains(&ips[0].as_str()),
        "{ips:?}"
    );
    let service = cluster.services("default").get("echo").await.unwrap();
    assert!(
        service.finalizers().iter().any(|f| f == FINALIZER),
        "finalizer added"
    );
    let ingress = &service
        .status
        .unwrap()
        .load_balancer
        .unwrap()
        .ingress
        .unwrap()[0];
    assert_eq!(ingress.ip_mode.as_deref(), Some("VIP"));

    // The Event is published after the status write: wait for it rather than read once.
    wait_for("the IPAllocated Event", Duration::from_secs(10), || async {
        let events = cluster.events_for("default", "echo").await;
        events
            .iter()
            .any(|(t, r, note)| {
                t == "Normal" && r == reason::IP_ALLOCATED && note.contains(&ips[0])
            })
            .then_some(())
    })
    .await;

    if let Some(kubectl) = portico_tests::tool("kubectl") {
        let output = Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .args(["get", "svc", "echo"])
            .output()
            .unwrap();
        let table = String::from_utf8_lossy(&output.stdout);
        let header = table.lines().next().unwrap_or_default();
        assert!(header.contains("EXTERNAL-IP"), "{table}");
        assert!(
            table
                .lines()
                .nth(1)
                .is_some_and(|row| row.contains(&ips[0])),
            "kubectl get svc shows the IP:\n{table}"
        );
    }

    let pools: kube::Api<AddressPool> = kube::Api::all(cluster.client.clone());
    let status = wait_for("pool status counts", Duration::from_secs(10), || async {
        let status = pools.get("lab").await.ok()?.status?;
        (status.assigned_ipv4 == 1).then_some(status)
    })
    .await;
    assert_eq!(status.available_ipv4, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_service_frees_its_ip_for_the_next_one() {
    let cluster = LabCluster::start().await;
    let _controller = cluster.spawn_controller("controller", &[]);
    cluster.create_pool("one", &["198.19.0.10/32"], true).await;
    cluster
        .create_service("default", &mk_lb_service("first", 80, &[]))
        .await;
    assert_eq!(
        cluster.wait_for_ingress("default", "first").await,
        ["198.19.0.10"]
    );

    cluster
        .create_service("default", &mk_lb_service("second", 80, &[]))
        .await;
    cluster
        .wait_for_warning(
            "default",
            "second",
            reason::ALLOCATION_FAILED,
            &["\"one\"", "no free IPv4 address"],
        )
        .await;

    cluster
        .services("default")
        .delete("first", &DeleteParams::default())
        .await
        .unwrap();
    let services = cluster.services("default");
    wait_for(
        "the first Service to be gone (finalizer removed)",
        Duration::from_secs(10),
        || async {
            services
                .get_opt("first")
                .await
                .ok()
                .and_then(|s| s.is_none().then_some(()))
        },
    )
    .await;
    assert_eq!(
        cluster.wait_for_ingress("default", "second").await,
        ["198.19.0.10"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_stops_being_a_load_balancer_gives_its_ip_back() {
    let cluster = LabCluster::start().await;
    let _controller = cluster.spawn_controller("controller", &[]);
    cluster.create_pool("one", &["198.19.0.20/32"], true).await;
    cluster
        .create_service("default", &mk_lb_service("echo", 80, &[]))
        .await;
    cluster.wait_for_ingress("default", "echo").await;

    let services = cluster.services("default");
    let patch = serde_json::json!({ "spec": { "type": "ClusterIP", "loadBalancerClass": null } });
    services
        .patch(
            "echo",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    wait_for(
        "status cleared and finalizer removed",
        Duration::from_secs(10),
        || async {
            let service = services.get("echo").await.ok()?;
            let cleared = portico_tests::lab_cluster::ingress_ips(&service).is_empty();
            (cleared && !service.finalizers().iter().any(|f| f == FINALIZER)).then_some(())
        },
    )
    .await;
    cluster
        .create_service("default", &mk_lb_service("next", 80, &[]))
        .await;
    assert_eq!(
        cluster.wait_for_ingress("default", "next").await,
        ["198.19.0.20"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_keeps_its_ip_when_the_pool_shrinks_and_is_warned() {
    let cluster = LabCluster::start().await;
    let _controller = cluster.spawn_controller("controller", &[]);
    cluster.create_pool("lab", &["198.19.0.64/30"], true).await;
    cluster
        .create_service("default", &mk_lb_service("echo", 80, &[]))
        .await;
    let ips = cluster.wait_for_ingress("default", "echo").await;

    let pools: kube::Api<AddressPool> = kube::Api::all(cluster.client.clone());
    let patch = serde_json::json!({ "spec": { "addresses": ["198.19.0.128/30"] } });
    pools
        .patch(
            "lab",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    cluster
        .wait_for_warning(
            "default",
            "echo",
            reason::ADDRESS_OUTSIDE_POOL,
            &[&ips[0], "keeps the address"],
        )
        .await;
    let now = portico_tests::lab_cluster::ingress_ips(
        &cluster.services("default").get("echo").await.unwrap(),
    );
    assert_eq!(now, ips, "no silent renumbering");

    cluster
        .create_service("default", &mk_lb_service("next", 80, &[]))
        .await;
    let next = cluster.wait_for_ingress("default", "next").await;
    assert!(
        next[0].starts_with("198.19.0.12"),
        "new Services come from the new range: {next:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_service_is_not_reconciled_again_for_the_controllers_own_writes() {
    const SERVICES: usize = 20;
    let cluster = LabCluster::start().await;
    let controller = cluster.spawn_controller("controller", &[]);
    cluster.create_pool("lab", &["198.19.11.0/24"], true).await;
    for i in 0..SERVICES {
        let name = format!("svc-{i}");
        cluster
            .create_service("default", &mk_lb_service(&name, 80, &[]))
            .await;
        cluster.wait_for_ingress("default", &name).await;
    }
    let reconciles: f64 = ["success", "error"]
        .iter()
        .filter_map(|result| {
            controller.metric(&format!(
                "portico_controller_reconciles_total{{result=\"{result}\"}}"
            ))
        })
        .sum();
    // One reconcile each (the creation); the finalizer and the status it wrote come back through
    // the watch and would each start another (two or three per Service before).
    assert!(
        reconciles < SERVICES as f64 * 1.5,
        "{reconciles} reconciles for {SERVICES} Services\n{}",
        controller.logs()
    );
}
