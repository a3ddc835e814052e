//! Service allocation as the API server does it, seen through kube-rs.

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::{lab, mk_service, status_of};

#[tokio::test]
async fn load_balancer_services_get_cluster_ip_and_node_ports_and_local_gets_health_check_port() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    let mut svc = mk_service("lb", "LoadBalancer", &[80, 443]);
    svc.spec.as_mut().unwrap().external_traffic_policy = Some("Local".into());
    let created = services.create(&PostParams::default(), &svc).await.unwrap();
    let spec = created.spec.unwrap();
    let ip: std::net::Ipv4Addr = spec.cluster_ip.unwrap().parse().unwrap();
    assert!(
        "10.96.0.0/16"
            .parse::<ipnet::Ipv4Net>()
            .unwrap()
            .contains(&ip)
    );
    for port in spec.ports.unwrap() {
        assert!((30000..=32767).contains(&port.node_port.unwrap()));
    }
    assert!(spec.health_check_node_port.is_some());
    assert_eq!(spec.allocate_load_balancer_node_ports, Some(true));
}

#[tokio::test]
async fn a_taken_node_port_is_invalid_naming_the_field_path() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    let mut first = mk_service("first", "NodePort", &[80]);
    first.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = Some(30080);
    services
        .create(&PostParams::default(), &first)
        .await
        .unwrap();
    let mut second = mk_service("second", "NodePort", &[81, 80]);
    second.spec.as_mut().unwrap().ports.as_mut().unwrap()[1].node_port = Some(30080);
    let status = status_of(services.create(&PostParams::default(), &second).await);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    let cause = &status.details.unwrap().causes[0];
    assert_eq!(cause.field, "spec.ports[1].nodePort");
    assert!(
        status
            .message
            .contains("provided port is already allocated"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn an_out_of_range_node_port_is_invalid_naming_the_field_path() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    let mut svc = mk_service("far", "NodePort", &[80]);
    svc.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = Some(40000);
    let status = status_of(services.create(&PostParams::default(), &svc).await);
    assert_eq!(status.code, 422);
    assert_eq!(
        status.details.unwrap().causes[0].field,
        "spec.ports[0].nodePort"
    );
    assert!(
        status
            .message
            .contains("The range of valid ports is 30000-32767")
    );
}

#[tokio::test]
async fn deleting_a_service_releases_its_node_port() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    let mut svc = mk_service("holder", "NodePort", &[80]);
    svc.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = Some(31000);
    services.create(&PostParams::default(), &svc).await.unwrap();
    services
        .delete("holder", &DeleteParams::default())
        .await
        .unwrap();
    let mut again = mk_service("next", "NodePort", &[80]);
    again.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = Some(31000);
    services
        .create(&PostParams::default(), &again)
        .await
        .expect("the port is free again");
}

#[tokio::test]
async fn changing_type_to_cluster_ip_releases_node_ports() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    let created = services
        .create(
            &PostParams::default(),
            &mk_service("shrink", "LoadBalancer", &[80]),
        )
        .await
        .unwrap();
    let node_port = created.spec.unwrap().ports.unwrap()[0].node_port.unwrap();
    let patch = json!({"spec": {"type": "ClusterIP"}});
    let patched = services
        .patch("shrink", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().ports.unwrap()[0].node_port, None);
    let mut reuse = mk_service("reuse", "NodePort", &[80]);
    reuse.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = Some(node_port);
    services
        .create(&PostParams::default(), &reuse)
        .await
        .expect("the released port is free");
}

#[tokio::test]
async fn a_cluster_ip_outside_the_service_cidr_is_invalid() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    let mut svc = mk_service("outside", "ClusterIP", &[80]);
    svc.spec.as_mut().unwrap().cluster_ip = Some("192.0.2.1".into());
    let status = status_of(services.create(&PostParams::default(), &svc).await);
    assert_eq!(status.code, 422);
    assert_eq!(status.details.unwrap().causes[0].field, "spec.clusterIPs");
}

#[tokio::test]
async fn load_balancer_class_may_not_change_once_set() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    let mut svc = mk_service("classy", "LoadBalancer", &[80]);
    svc.spec.as_mut().unwrap().load_balancer_class = Some("portico.dev/lb".into());
    services.create(&PostParams::default(), &svc).await.unwrap();
    let patch = json!({"spec": {"loadBalancerClass": "example.com/other"}});
    let status = status_of(
        services
            .patch("classy", &PatchParams::default(), &Patch::Merge(&patch))
            .await,
    );
    assert_eq!(status.code, 422);
    assert_eq!(
        status.details.unwrap().causes[0].field,
        "spec.loadBalancerClass"
    );
}

#[tokio::test]
async fn a_dry_run_create_answers_the_allocated_service_but_stores_and_holds_nothing() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    let mut svc = mk_service("dry", "NodePort", &[80]);
    svc.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = Some(30500);
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let answered = services.create(&dry, &svc).await.unwrap();
    assert!(answered.spec.unwrap().cluster_ip.is_some());
    assert_eq!(answered.metadata.resource_version, None);
    assert_eq!(status_of(services.get("dry").await).code, 404);
    services
        .create(&PostParams::default(), &svc)
        .await
        .expect("the nodePort was not held by the dry run");
}

#[tokio::test]
async fn a_load_balancer_ingress_that_is_not_an_ip_is_invalid() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    services
        .create(
            &PostParams::default(),
            &mk_service("bad-status", "LoadBalancer", &[80]),
        )
        .await
        .unwrap();
    let status = json!({"status": {"loadBalancer": {"ingress": [{"ip": "198.18.0.300"}]}}});
    let error = status_of(
        services
            .patch_status(
                "bad-status",
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await,
    );
    assert_eq!(error.code, 422);
    assert_eq!(
        error.details.unwrap().causes[0].field,
        "status.loadBalancer.ingress[0].ip"
    );
}
