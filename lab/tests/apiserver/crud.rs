//! Create, get, list, update and delete through kube-rs, with the metadata the server owns.

use k8s_openapi::api::coordination::v1::Lease;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams, WatchEvent, WatchParams};
use serde_json::json;

use crate::common::{eventually, lab, mk_service, raw, status_of};

#[tokio::test]
async fn create_assigns_uid_timestamp_and_cluster_wide_increasing_resource_versions() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let leases: Api<Lease> = Api::namespaced(client, "default");
    let a = services
        .create(&PostParams::default(), &mk_service("a", "ClusterIP", &[80]))
        .await
        .unwrap();
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("l".into()),
            ..Default::default()
        },
        spec: None,
    };
    let b = leases.create(&PostParams::default(), &lease).await.unwrap();
    assert_eq!(a.metadata.uid.as_ref().unwrap().len(), 36);
    assert!(a.metadata.creation_timestamp.is_some());
    let rv = |m: &ObjectMeta| m.resource_version.as_ref().unwrap().parse::<u64>().unwrap();
    assert!(
        rv(&b.metadata) > rv(&a.metadata),
        "one counter across kinds"
    );
    let fetched = services.get("a").await.unwrap();
    assert_eq!(fetched.metadata.uid, a.metadata.uid);
}

#[tokio::test]
async fn creating_an_existing_name_is_already_exists_and_a_missing_one_is_not_found() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    services
        .create(
            &PostParams::default(),
            &mk_service("dup", "ClusterIP", &[80]),
        )
        .await
        .unwrap();
    let status = status_of(
        services
            .create(
                &PostParams::default(),
                &mk_service("dup", "ClusterIP", &[80]),
            )
            .await,
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
    assert_eq!(status.message, "services \"dup\" already exists");
    let status = status_of(services.get("nope").await);
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(status.message, "services \"nope\" not found");
}

#[tokio::test]
async fn creating_in_a_missing_namespace_is_not_found() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "nowhere");
    let status = status_of(
        services
            .create(&PostParams::default(), &mk_service("a", "ClusterIP", &[80]))
            .await,
    );
    assert_eq!(status.code, 404);
    assert_eq!(status.message, "namespaces \"nowhere\" not found");
}

#[tokio::test]
async fn update_with_a_stale_resource_version_is_a_conflict() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("cm".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let created = maps.create(&PostParams::default(), &cm).await.unwrap();
    let mut first = created.clone();
    first.data = Some([("k".to_string(), "1".to_string())].into());
    maps.replace("cm", &PostParams::default(), &first)
        .await
        .unwrap();
    let mut stale = created;
    stale.data = Some([("k".to_string(), "2".to_string())].into());
    let status = status_of(maps.replace("cm", &PostParams::default(), &stale).await);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(status.message.contains("the object has been modified"));
}

#[tokio::test]
async fn an_update_that_changes_nothing_keeps_the_resource_version() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("same".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let created = maps.create(&PostParams::default(), &cm).await.unwrap();
    let again = maps
        .replace("same", &PostParams::default(), &created)
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        created.metadata.resource_version
    );
}

#[tokio::test]
async fn list_filters_by_label_and_field_selector_and_pages_with_continue() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    for (name, tier) in [("a", "web"), ("b", "web"), ("c", "db"), ("d", "web")] {
        let mut cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        cm.metadata.labels = Some([("tier".to_string(), tier.to_string())].into());
        maps.create(&PostParams::default(), &cm).await.unwrap();
    }
    let names = |list: kube::core::ObjectList<ConfigMap>| {
        list.items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            maps.list(&ListParams::default().labels("tier=web"))
                .await
                .unwrap()
        ),
        ["a", "b", "d"]
    );
    assert_eq!(
        names(
            maps.list(&ListParams::default().labels("tier notin (web)"))
                .await
                .unwrap()
        ),
        ["c"]
    );
    assert_eq!(
        names(
            maps.list(&ListParams::default().fields("metadata.name=b"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    let first = maps.list(&ListParams::default().limit(3)).await.unwrap();
    let token = first.metadata.continue_.clone().expect("more pages");
    assert_eq!(names(first), ["a", "b", "c"]);
    let second = maps
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(second.metadata.continue_, None);
    assert_eq!(names(second), ["d"]);
    let status = status_of(maps.list(&ListParams::default().fields("data.k=1")).await);
    assert_eq!(status.code, 400);
}

#[tokio::test]
async fn delete_with_a_finalizer_marks_the_object_and_removing_the_finalizer_deletes_it() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    let mut cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("fin".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    cm.metadata.finalizers = Some(vec!["portico.dev/test".into()]);
    maps.create(&PostParams::default(), &cm).await.unwrap();
    let pending = maps.delete("fin", &DeleteParams::default()).await.unwrap();
    let marked = pending
        .left()
        .expect("the object stays while it has finalizers");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert!(
        maps.get("fin")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    let patch = json!({"metadata": {"finalizers": null}});
    maps.patch(
        "fin",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap();
    assert_eq!(status_of(maps.get("fin").await).code, 404);
}

#[tokio::test]
async fn delete_without_finalizers_answers_a_success_status_and_honours_uid_preconditions() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("gone".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    maps.create(&PostParams::default(), &cm).await.unwrap();
    let wrong = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("other".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    assert_eq!(status_of(maps.delete("gone", &wrong).await).code, 409);
    let deleted = maps.delete("gone", &DeleteParams::default()).await.unwrap();
    let status = deleted.right().expect("a Status once the object is gone");
    assert_eq!(
        status.status,
        Some(kube::core::response::StatusSummary::Success)
    );
}

#[tokio::test]
async fn generate_name_appends_a_random_suffix() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            generate_name: Some("gen-".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let created = maps.create(&PostParams::default(), &cm).await.unwrap();
    let name = created.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_contents() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("team".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let created = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    let services: Api<Service> = Api::namespaced(client, "team");
    services
        .create(
            &PostParams::default(),
            &mk_service("svc", "ClusterIP", &[80]),
        )
        .await
        .unwrap();
    let mut events = namespaces
        .watch(
            &WatchParams::default().fields("metadata.name=team"),
            created.metadata.resource_version.as_deref().unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    let deleting = namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("the namespace stays while the namespace controller works");
    assert_eq!(
        deleting.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    // As on a real cluster: first Terminating, then (the contents deleted) gone.
    let mut seen = Vec::new();
    while let Some(event) = events.try_next().await.unwrap() {
        match event {
            WatchEvent::Modified(ns) => seen.push(format!(
                "MODIFIED {}",
                ns.status.and_then(|s| s.phase).unwrap_or_default()
            )),
            WatchEvent::Deleted(_) => {
                seen.push("DELETED".into());
                break;
            }
            other => seen.push(format!("{other:?}")),
        }
    }
    assert_eq!(seen, ["MODIFIED Terminating", "DELETED"]);
    assert_eq!(status_of(services.get("svc").await).code, 404);
}

#[tokio::test]
async fn a_foreground_delete_removes_the_dependents_before_the_owner() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let owner = services
        .create(
            &PostParams::default(),
            &mk_service("owner", "ClusterIP", &[80]),
        )
        .await
        .unwrap();
    let slices: Api<EndpointSlice> = Api::namespaced(client, "default");
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "owner-abc", "ownerReferences": [{
            "apiVersion": "v1", "kind": "Service", "name": "owner",
            "uid": owner.metadata.uid, "blockOwnerDeletion": true, "controller": true
        }]},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.0.2"]}]
    }))
    .unwrap();
    slices.create(&PostParams::default(), &slice).await.unwrap();

    let deleting = services
        .delete("owner", &DeleteParams::foreground())
        .await
        .unwrap()
        .left()
        .expect("the owner stays until its dependents are gone");
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(
        deleting.metadata.finalizers.as_deref(),
        Some(&["foregroundDeletion".to_string()][..])
    );
    let gone = eventually(Duration::from_secs(10), || async {
        matches!(services.get("owner").await, Err(kube::Error::Api(e)) if e.code == 404)
    })
    .await;
    assert!(gone, "the owner went once its dependents were deleted");
    assert_eq!(status_of(slices.get("owner-abc").await).code, 404);
}

#[tokio::test]
async fn node_status_is_kept_on_create_but_ignored_by_the_main_endpoint() {
    let lab = lab().await;
    let nodes: Api<Node> = Api::all(lab.client().await.unwrap());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "n1"},
        "status": {"addresses": [{"type": "InternalIP", "address": "198.18.0.11"}]}
    }))
    .unwrap();
    let created = nodes.create(&PostParams::default(), &node).await.unwrap();
    assert_eq!(
        created.status.as_ref().unwrap().addresses.as_ref().unwrap()[0].address,
        "198.18.0.11"
    );
    let mut changed = created.clone();
    changed.status.as_mut().unwrap().addresses = Some(vec![]);
    changed.metadata.labels = Some([("role".to_string(), "edge".to_string())].into());
    let updated = nodes
        .replace("n1", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(updated.metadata.labels.unwrap()["role"], "edge");
    assert_eq!(
        updated.status.unwrap().addresses.unwrap().len(),
        1,
        "status changes need /status"
    );
}

#[tokio::test]
async fn requests_without_the_bearer_token_are_unauthorized() {
    let lab = lab().await;
    let mut config = lab.kube_config().await.unwrap();
    config.auth_info.token = None;
    let anonymous = kube::Client::try_from(config).unwrap();
    let services: Api<Service> = Api::namespaced(anonymous, "default");
    assert_eq!(
        status_of(services.list(&ListParams::default()).await).code,
        401
    );
}

#[tokio::test]
async fn unsupported_verbs_are_method_not_allowed() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let request = http::Request::post("/api/v1/services")
        .body(b"{}".to_vec())
        .unwrap();
    let (code, body) = raw(&client, request).await;
    assert_eq!(code, 405);
    assert_eq!(body["reason"], "MethodNotAllowed");
}

#[tokio::test]
async fn a_namespace_stays_terminating_until_finalized_contents_are_released() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("held".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let services: Api<Service> = Api::namespaced(client, "held");
    let mut svc = mk_service("lb", "LoadBalancer", &[80]);
    svc.metadata.finalizers = Some(vec!["portico.dev/load-balancer-cleanup".into()]);
    services.create(&PostParams::default(), &svc).await.unwrap();
    let deleting = namespaces
        .delete("held", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(
        deleting.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    // The namespace controller marks what finalizers hold (after the DELETE was answered).
    let marked = eventually(Duration::from_secs(10), || async {
        services
            .get("lb")
            .await
            .is_ok_and(|lb| lb.metadata.deletion_timestamp.is_some())
    })
    .await;
    assert!(marked);
    let status = status_of(
        services
            .create(
                &PostParams::default(),
                &mk_service("new", "ClusterIP", &[80]),
            )
            .await,
    );
    assert_eq!(status.code, 403);
    let release = json!({"metadata": {"finalizers": null}});
    services
        .patch(
            "lb",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&release),
        )
        .await
        .unwrap();
    assert_eq!(status_of(namespaces.get("held").await).code, 404);
}

#[tokio::test]
async fn deleting_a_service_answers_the_deleted_service_as_upstream_does() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    services
        .create(
            &PostParams::default(),
            &mk_service("bye", "ClusterIP", &[80]),
        )
        .await
        .unwrap();
    let deleted = services
        .delete("bye", &DeleteParams::default())
        .await
        .unwrap();
    let object = deleted
        .left()
        .expect("Services answer with the object (ReturnDeletedObject)");
    assert_eq!(object.metadata.name.as_deref(), Some("bye"));
    assert_eq!(status_of(services.get("bye").await).code, 404);
}

#[tokio::test]
async fn delete_collection_deletes_the_selected_objects_and_lists_them() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    for (name, tier) in [("a", "web"), ("b", "db"), ("c", "web")] {
        let mut cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        cm.metadata.labels = Some([("tier".to_string(), tier.to_string())].into());
        maps.create(&PostParams::default(), &cm).await.unwrap();
    }
    let deleted = maps
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("tier=web"),
        )
        .await
        .unwrap()
        .left()
        .expect("a list of what was deleted");
    let names: Vec<String> = deleted
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(names, ["a", "c"]);
    let left: Vec<String> = maps
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(left, ["b"]);
}
