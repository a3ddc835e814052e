//! Every PATCH flavour kube-rs sends: merge, JSON, strategic merge, server-side apply.

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::{lab, mk_service, status_of};

async fn configmap(maps: &Api<ConfigMap>, name: &str) {
    let mut cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    cm.data = Some(
        [
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
        ]
        .into(),
    );
    maps.create(&PostParams::default(), &cm).await.unwrap();
}

#[tokio::test]
async fn merge_patch_sets_and_removes_fields() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    configmap(&maps, "m").await;
    let patch = json!({"data": {"a": null, "c": "3"}});
    let patched = maps
        .patch("m", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let data = patched.data.unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), ["b", "c"]);
}

#[tokio::test]
async fn json_patch_applies_operations_and_a_failed_test_is_rejected() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    configmap(&maps, "j").await;
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "replace", "path": "/data/a", "value": "10"},
    ]))
    .unwrap();
    let patched = maps
        .patch("j", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["a"], "10");
    let failing: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/a", "value": "1"}])).unwrap();
    let status = status_of(
        maps.patch("j", &PatchParams::default(), &Patch::<()>::Json(failing))
            .await,
    );
    assert_eq!(status.code, 422);
}

#[tokio::test]
async fn strategic_merge_patch_merges_service_ports_by_port() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    services
        .create(
            &PostParams::default(),
            &mk_service("s", "ClusterIP", &[80, 443]),
        )
        .await
        .unwrap();
    let patch =
        json!({"spec": {"ports": [{"port": 443, "name": "tls"}, {"port": 8080, "name": "alt"}]}});
    let patched = services
        .patch("s", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    let ports: Vec<(i32, String)> = patched
        .spec
        .unwrap()
        .ports
        .unwrap()
        .into_iter()
        .map(|p| (p.port, p.name.unwrap()))
        .collect();
    assert_eq!(
        ports,
        [
            (80, "p80".to_string()),
            (443, "tls".to_string()),
            (8080, "alt".to_string())
        ]
    );
}

#[tokio::test]
async fn server_side_apply_creates_then_conflicts_with_another_manager_unless_forced() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    let config = |value: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"owner": value}});
    let created = maps
        .patch(
            "ssa",
            &PatchParams::apply("alice"),
            &Patch::Apply(config("alice")),
        )
        .await
        .unwrap();
    let managed = created.metadata.managed_fields.unwrap();
    assert_eq!(managed[0].manager.as_deref(), Some("alice"));
    assert_eq!(managed[0].operation.as_deref(), Some("Apply"));
    let status = status_of(
        maps.patch(
            "ssa",
            &PatchParams::apply("bob"),
            &Patch::Apply(config("bob")),
        )
        .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(
        status.message.contains("conflict with \"alice\""),
        "{}",
        status.message
    );
    let forced = maps
        .patch(
            "ssa",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(config("bob")),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["owner"], "bob");
}

#[tokio::test]
async fn server_side_apply_removes_fields_the_manager_stops_applying() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    let both = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shrink"}, "data": {"a": "1", "b": "2"}});
    maps.patch("shrink", &PatchParams::apply("me"), &Patch::Apply(both))
        .await
        .unwrap();
    let one = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shrink"}, "data": {"a": "1"}});
    let after = maps
        .patch("shrink", &PatchParams::apply("me"), &Patch::Apply(one))
        .await
        .unwrap();
    assert_eq!(after.data.unwrap().keys().collect::<Vec<_>>(), ["a"]);
}

#[tokio::test]
async fn status_patch_changes_only_status_and_main_patch_ignores_status() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    services
        .create(
            &PostParams::default(),
            &mk_service("lb", "LoadBalancer", &[80]),
        )
        .await
        .unwrap();
    let ingress = json!({"status": {"loadBalancer": {"ingress": [{"ip": "198.18.0.200"}]}}, "metadata": {"labels": {"x": "y"}}});
    let patched = services
        .patch_status("lb", &PatchParams::default(), &Patch::Merge(&ingress))
        .await
        .unwrap();
    assert_eq!(
        patched
            .status
            .unwrap()
            .load_balancer
            .unwrap()
            .ingress
            .unwrap()[0]
            .ip
            .as_deref(),
        Some("198.18.0.200")
    );
    assert!(
        patched.metadata.labels.is_none(),
        "the status endpoint ignores metadata"
    );
    let clear = json!({"status": {"loadBalancer": {}}});
    let main = services
        .patch("lb", &PatchParams::default(), &Patch::Merge(&clear))
        .await
        .unwrap();
    assert_eq!(
        main.status
            .unwrap()
            .load_balancer
            .unwrap()
            .ingress
            .unwrap()
            .len(),
        1,
        "the main endpoint ignores status"
    );
}

#[tokio::test]
async fn server_side_apply_of_status_through_the_status_subresource() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    services
        .create(
            &PostParams::default(),
            &mk_service("applied", "LoadBalancer", &[80]),
        )
        .await
        .unwrap();
    let status = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "applied"},
        "status": {"loadBalancer": {"ingress": [{"ip": "198.18.0.201"}]}}});
    let patched = services
        .patch_status(
            "applied",
            &PatchParams::apply("portico-controller").force(),
            &Patch::Apply(status),
        )
        .await
        .unwrap();
    assert_eq!(
        patched
            .status
            .unwrap()
            .load_balancer
            .unwrap()
            .ingress
            .unwrap()[0]
            .ip
            .as_deref(),
        Some("198.18.0.201")
    );
    let managers: Vec<(String, Option<String>)> = patched
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| (m.manager.unwrap(), m.subresource))
        .collect();
    assert!(
        managers.contains(&("portico-controller".to_string(), Some("status".to_string()))),
        "{managers:?}"
    );
}

#[tokio::test]
async fn apply_conflicts_with_a_field_another_manager_set_by_an_ordinary_patch() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    configmap(&maps, "edited").await;
    let edit = json!({"data": {"a": "edited"}});
    let params = PatchParams {
        field_manager: Some("editor".into()),
        ..Default::default()
    };
    maps.patch("edited", &params, &Patch::Merge(&edit))
        .await
        .unwrap();
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "edited"}, "data": {"a": "applied"}});
    let status = status_of(
        maps.patch(
            "edited",
            &PatchParams::apply("applier"),
            &Patch::Apply(&config),
        )
        .await,
    );
    assert_eq!(status.code, 409);
    assert!(
        status.message.contains("conflict with \"editor\""),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn a_patch_carrying_a_stale_resource_version_is_a_conflict() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    configmap(&maps, "guarded").await;
    let first = maps.get("guarded").await.unwrap();
    let stale = first.metadata.resource_version.clone().unwrap();
    maps.patch(
        "guarded",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .unwrap();
    let guarded = json!({"metadata": {"resourceVersion": stale}, "data": {"a": "3"}});
    let status = status_of(
        maps.patch("guarded", &PatchParams::default(), &Patch::Merge(&guarded))
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
}
