//! Protobuf request bodies: kubectl's `create` generators send built-in kinds as
//! `application/vnd.kubernetes.protobuf`, which the lab stores as JSON and answers in JSON;
//! custom resources have no protobuf form and answer 415, as upstream.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use kube::api::{Api, PostParams};
use prost::Message;

use crate::common::{kubectl, lab, raw};

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// A protobuf body as Go clients frame it: the magic prefix, then `runtime.Unknown`.
fn protobuf_body(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: None,
        content_type: None,
    };
    [b"k8s\0".as_slice(), &unknown.encode_to_vec()].concat()
}

fn post_protobuf(path: &str, body: Vec<u8>) -> http::Request<Vec<u8>> {
    http::Request::post(path)
        .header(http::header::CONTENT_TYPE, PROTOBUF)
        .header(http::header::ACCEPT, format!("{PROTOBUF},application/json"))
        .body(body)
        .unwrap()
}

#[tokio::test]
async fn kubectl_create_namespace_stores_the_namespace() {
    let lab = lab().await;
    let (ok, stdout, stderr) = kubectl(&lab, &["create", "namespace", "proto-ns"]).await;
    assert!(ok, "kubectl create namespace failed: {stderr}");
    assert_eq!(stdout.trim(), "namespace/proto-ns created");
    let namespaces: Api<Namespace> = Api::all(lab.client().await.unwrap());
    let stored = namespaces.get("proto-ns").await.unwrap();
    assert_eq!(stored.status.unwrap().phase.as_deref(), Some("Active"));
    let (ok, stdout, _) = kubectl(&lab, &["get", "namespace", "proto-ns"]).await;
    assert!(ok && stdout.contains("Active"), "{stdout}");
}

#[tokio::test]
async fn kubectl_create_service_loadbalancer_is_allocated_and_shows_pending() {
    let lab = lab().await;
    let (ok, stdout, stderr) = kubectl(
        &lab,
        &["create", "service", "loadbalancer", "web", "--tcp=80:8080"],
    )
    .await;
    assert!(ok, "kubectl create service failed: {stderr}");
    assert_eq!(stdout.trim(), "service/web created");

    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    let spec = services.get("web").await.unwrap().spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(
        spec.selector.unwrap().get("app").map(String::as_str),
        Some("web")
    );
    let port = &spec.ports.unwrap()[0];
    assert_eq!(
        (port.port, port.target_port.clone()),
        (80, Some(IntOrString::Int(8080)))
    );
    assert!(port.node_port.is_some(), "a LoadBalancer gets a node port");
    assert!(spec.cluster_ip.is_some_and(|ip| ip.starts_with("10.96.")));

    let (ok, stdout, stderr) = kubectl(&lab, &["get", "svc", "web"]).await;
    assert!(ok, "{stderr}");
    let row = stdout.lines().nth(1).unwrap_or_default();
    assert!(row.starts_with("web"), "{stdout}");
    assert!(
        row.contains("LoadBalancer") && row.contains("<pending>"),
        "{stdout}"
    );
    assert!(row.contains("80:3"), "{stdout}");
}

#[tokio::test]
async fn kubectl_create_configmap_and_secret_keep_their_data() {
    let lab = lab().await;
    let (ok, _, stderr) = kubectl(
        &lab,
        &[
            "create",
            "configmap",
            "settings",
            "--from-literal=mode=fast",
        ],
    )
    .await;
    assert!(ok, "kubectl create configmap failed: {stderr}");
    let (ok, _, stderr) = kubectl(
        &lab,
        &[
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=token=s3cret",
        ],
    )
    .await;
    assert!(ok, "kubectl create secret failed: {stderr}");

    let client = lab.client().await.unwrap();
    let config_map = Api::<ConfigMap>::namespaced(client.clone(), "default")
        .get("settings")
        .await
        .unwrap();
    assert_eq!(
        config_map.data.unwrap().get("mode").map(String::as_str),
        Some("fast")
    );
    let secret = Api::<Secret>::namespaced(client, "default")
        .get("creds")
        .await
        .unwrap();
    assert_eq!(secret.data.unwrap()["token"].0, b"s3cret");
}

#[tokio::test]
async fn kubectl_create_role_and_rolebinding_store_rules_and_subjects() {
    let lab = lab().await;
    let (ok, _, stderr) = kubectl(
        &lab,
        &[
            "create",
            "role",
            "reader",
            "--verb=get,list",
            "--resource=services",
        ],
    )
    .await;
    assert!(ok, "kubectl create role failed: {stderr}");
    let (ok, _, stderr) = kubectl(
        &lab,
        &[
            "create",
            "rolebinding",
            "readers",
            "--role=reader",
            "--user=alice",
        ],
    )
    .await;
    assert!(ok, "kubectl create rolebinding failed: {stderr}");
    let binding = Api::<RoleBinding>::namespaced(lab.client().await.unwrap(), "default")
        .get("readers")
        .await
        .unwrap();
    assert_eq!(binding.role_ref.name, "reader");
    assert_eq!(binding.subjects.unwrap()[0].name, "alice");
}

#[tokio::test]
async fn protobuf_create_of_a_built_in_kind_answers_json() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let namespace = k8s_pb::api::core::v1::Namespace {
        metadata: Some(ObjectMeta {
            name: Some("raw-proto".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let request = post_protobuf(
        "/api/v1/namespaces",
        protobuf_body("v1", "Namespace", &namespace),
    );
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(
        response.headers()[http::header::CONTENT_TYPE],
        "application/json"
    );
    let body = response.into_body().collect_bytes().await.unwrap();
    let created: Namespace = serde_json::from_slice(&body).unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("raw-proto"));
}

#[tokio::test]
async fn protobuf_body_for_a_custom_resource_answers_415() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in portico_api::crd_yaml::crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let metadata = ObjectMeta {
        name: Some("pool".into()),
        ..Default::default()
    };
    let request = post_protobuf(
        "/apis/portico.dev/v1alpha1/addresspools",
        protobuf_body("portico.dev/v1alpha1", "AddressPool", &metadata),
    );
    let (code, status) = raw(&client, request).await;
    assert_eq!(code, 415, "{status}");
    assert_eq!(status["reason"], "UnsupportedMediaType");
}

#[tokio::test]
async fn kubectl_create_deployment_keeps_zero_replicas_and_the_pod_template() {
    let lab = lab().await;
    let (ok, _, stderr) = kubectl(
        &lab,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--port=80",
            "--replicas=0",
        ],
    )
    .await;
    assert!(ok, "kubectl create deployment failed: {stderr}");
    let deployment = Api::<Deployment>::namespaced(lab.client().await.unwrap(), "default")
        .get("web")
        .await
        .unwrap();
    let spec = deployment.spec.unwrap();
    assert_eq!(
        spec.replicas,
        Some(0),
        "--replicas=0 is not the default of 1"
    );
    let container = &spec.template.spec.unwrap().containers[0];
    assert_eq!(container.image.as_deref(), Some("nginx"));
    assert_eq!(container.ports.as_ref().unwrap()[0].container_port, 80);
}
