//! kube-runtime against the lab: a reflector's store follows the server, and a Controller
//! reconciles Services by writing their status.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;

use crate::common::{eventually, lab, mk_service};

#[tokio::test]
async fn a_reflector_store_follows_creates_and_deletes() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    let (reader, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(services.clone(), watcher::Config::default()),
    )
    .applied_objects();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    for name in ["r1", "r2", "r3"] {
        services
            .create(
                &PostParams::default(),
                &mk_service(name, "ClusterIP", &[80]),
            )
            .await
            .unwrap();
    }
    // The kubernetes Service is there too, as in any cluster.
    assert!(
        eventually(Duration::from_secs(5), || async {
            reader.state().len() == 4
        })
        .await
    );
    services
        .delete("r2", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            reader.state().len() == 3
        })
        .await
    );
    task.abort();
}

#[tokio::test]
async fn a_streaming_list_watcher_sees_the_initial_state_and_later_changes() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    services
        .create(
            &PostParams::default(),
            &mk_service("before", "ClusterIP", &[80]),
        )
        .await
        .unwrap();
    let (reader, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(
            services.clone(),
            watcher::Config::default().streaming_lists(),
        ),
    );
    let task = tokio::spawn(stream.for_each(|_| async {}));
    assert!(
        eventually(Duration::from_secs(5), || async {
            reader.state().len() == 2
        })
        .await
    );
    services
        .create(
            &PostParams::default(),
            &mk_service("after", "ClusterIP", &[80]),
        )
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            reader.state().len() == 3
        })
        .await
    );
    task.abort();
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ReconcileError(#[from] kube::Error);

async fn reconcile(svc: Arc<Service>, api: Arc<Api<Service>>) -> Result<Action, ReconcileError> {
    if svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer") {
        let name = svc.metadata.name.clone().unwrap_or_default();
        let status = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "status": {"loadBalancer": {"ingress": [{"ip": "198.18.0.210"}]}}});
        api.patch_status(
            &name,
            &PatchParams::apply("test-controller").force(),
            &Patch::Apply(status),
        )
        .await?;
    }
    Ok(Action::await_change())
}

#[tokio::test]
async fn a_controller_reconciles_services_and_writes_their_status() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    let api = Arc::new(services.clone());
    let controller = Controller::new(services.clone(), watcher::Config::default())
        .run(
            reconcile,
            |_, _: &ReconcileError, _| Action::requeue(Duration::from_secs(1)),
            api,
        )
        .for_each(|_| async {});
    let task = tokio::spawn(controller);
    services
        .create(
            &PostParams::default(),
            &mk_service("ctl", "LoadBalancer", &[80]),
        )
        .await
        .unwrap();
    let has_ingress = || async {
        let svc = services.get("ctl").await.unwrap();
        svc.status
            .and_then(|s| s.load_balancer)
            .and_then(|lb| lb.ingress)
            .is_some_and(|i| !i.is_empty())
    };
    assert!(eventually(Duration::from_secs(10), has_ingress).await);
    task.abort();
}

#[tokio::test]
async fn a_metadata_only_watcher_gets_partial_object_metadata() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    services
        .create(
            &PostParams::default(),
            &mk_service("meta", "ClusterIP", &[80]),
        )
        .await
        .unwrap();
    let listed = services.list_metadata(&Default::default()).await.unwrap();
    let kinds: Vec<String> = listed
        .items
        .iter()
        .filter_map(|i| i.types.as_ref().map(|t| t.kind.clone()))
        .collect();
    assert_eq!(kinds, ["PartialObjectMetadata", "PartialObjectMetadata"]);
    let metadata: Api<kube::core::PartialObjectMeta<Service>> = Api::namespaced(client, "default");
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(metadata, watcher::Config::default()));
    let task = tokio::spawn(stream.for_each(|_| async {}));
    assert!(
        eventually(Duration::from_secs(5), || async {
            reader.state().len() == 2
        })
        .await
    );
    task.abort();
}
