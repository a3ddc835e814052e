//! CustomResourceDefinitions: a created CRD serves its kind at once, with the status
//! subresource, generation, schema defaults, and discovery; deleting it takes the kind away.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::Discovery;
use portico_api::AddressPool;
use serde_json::json;

use crate::common::{lab, raw, status_of};

async fn install_crds(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in portico_api::crd_yaml::crds() {
        let created = crds.create(&PostParams::default(), &crd).await.unwrap();
        let conditions = created.status.unwrap().conditions.unwrap();
        assert!(
            conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        );
    }
}

fn pool(name: &str) -> AddressPool {
    serde_json::from_value(json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "AddressPool",
        "metadata": {"name": name}, "spec": {"addresses": ["198.18.0.200-198.18.0.250"]}
    }))
    .unwrap()
}

#[tokio::test]
async fn a_created_crd_is_established_and_served_with_discovery() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    install_crds(&client).await;
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let group = discovery
        .groups()
        .find(|g| g.name() == "portico.dev")
        .expect("portico.dev is discovered");
    let kinds: Vec<String> = group
        .recommended_resources()
        .into_iter()
        .map(|(ar, _)| ar.kind)
        .collect();
    assert!(kinds.contains(&"AddressPool".to_string()), "{kinds:?}");
    let pools: Api<AddressPool> = Api::all(client);
    let created = pools
        .create(&PostParams::default(), &pool("p"))
        .await
        .unwrap();
    assert!(
        created.spec.auto_assign,
        "the schema default fills autoAssign"
    );
    assert_eq!(
        pools
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn custom_resource_generation_counts_spec_changes_only() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    install_crds(&client).await;
    let pools: Api<AddressPool> = Api::all(client);
    let created = pools
        .create(&PostParams::default(), &pool("g"))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let status = json!({"status": {"assignedIPv4": 3}});
    let after_status = pools
        .patch_status("g", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(after_status.metadata.generation, Some(1));
    let labels = json!({"metadata": {"labels": {"a": "b"}}});
    let after_labels = pools
        .patch("g", &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .unwrap();
    assert_eq!(after_labels.metadata.generation, Some(1));
    let spec = json!({"spec": {"avoidBuggyIPs": true}});
    let after_spec = pools
        .patch("g", &PatchParams::default(), &Patch::Merge(&spec))
        .await
        .unwrap();
    assert_eq!(after_spec.metadata.generation, Some(2));
    assert_eq!(
        after_spec.status.unwrap().assigned_ipv4,
        3,
        "status survives spec writes"
    );
}

#[tokio::test]
async fn strategic_merge_patch_on_a_custom_resource_is_unsupported_media_type() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    install_crds(&client).await;
    let pools: Api<AddressPool> = Api::all(client);
    pools
        .create(&PostParams::default(), &pool("smp"))
        .await
        .unwrap();
    let patch = json!({"spec": {"avoidBuggyIPs": true}});
    let status = status_of(
        pools
            .patch("smp", &PatchParams::default(), &Patch::Strategic(&patch))
            .await,
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (415, "UnsupportedMediaType")
    );
}

#[tokio::test]
async fn deleting_a_crd_stops_serving_its_kind() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    install_crds(&client).await;
    let pools: Api<AddressPool> = Api::all(client.clone());
    pools
        .create(&PostParams::default(), &pool("bye"))
        .await
        .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete("addresspools.portico.dev", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(
        status_of(pools.list(&ListParams::default()).await).code,
        404
    );
    let request = http::Request::get("/apis/portico.dev/v1alpha1")
        .body(Vec::new())
        .unwrap();
    let (code, body) = raw(&client, request).await;
    assert_eq!(code, 200);
    let names: Vec<&str> = body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(!names.contains(&"addresspools"), "{names:?}");
}

#[tokio::test]
async fn custom_resources_breaking_the_crd_schema_are_invalid_with_the_field_path() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    install_crds(&client).await;
    let pools: Api<AddressPool> = Api::all(client);
    let mut bad = pool("bad");
    bad.spec.addresses = vec!["not-an-address".into()];
    let status = status_of(pools.create(&PostParams::default(), &bad).await);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status
            .message
            .starts_with("AddressPool.portico.dev \"bad\" is invalid: spec.addresses[0]"),
        "{}",
        status.message
    );
    let mut empty = pool("empty");
    empty.spec.addresses = vec![];
    let status = status_of(pools.create(&PostParams::default(), &empty).await);
    assert_eq!(status.details.unwrap().causes[0].field, "spec.addresses");
}

#[tokio::test]
async fn aggregated_discovery_lists_built_in_and_custom_kinds() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    install_crds(&client).await;
    let discovery = Discovery::new(client).run_aggregated().await.unwrap();
    let core = discovery
        .groups()
        .find(|g| g.name().is_empty())
        .expect("the core group");
    let (services, caps) = core
        .recommended_resources()
        .into_iter()
        .find(|(ar, _)| ar.plural == "services")
        .expect("services");
    assert_eq!(services.kind, "Service");
    assert!(
        caps.subresources
            .iter()
            .any(|(sub, _)| sub.plural == "status")
    );
    let portico = discovery
        .groups()
        .find(|g| g.name() == "portico.dev")
        .expect("portico.dev");
    assert!(
        portico
            .recommended_resources()
            .iter()
            .any(|(ar, _)| ar.kind == "AddressPool")
    );
}

#[tokio::test]
async fn a_crd_stays_terminating_until_its_finalized_objects_are_released() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    install_crds(&client).await;
    let pools: Api<AddressPool> = Api::all(client.clone());
    let mut held = pool("held");
    held.metadata.finalizers = Some(vec!["portico.dev/pool-in-use".into()]);
    pools.create(&PostParams::default(), &held).await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let terminating = crds
        .delete("addresspools.portico.dev", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("the CRD stays while objects remain");
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert!(
        pools
            .get("held")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    let status = status_of(pools.create(&PostParams::default(), &pool("late")).await);
    assert_eq!(status.code, 405);
    let release = json!({"metadata": {"finalizers": null}});
    pools
        .patch("held", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    assert_eq!(
        status_of(crds.get("addresspools.portico.dev").await).code,
        404
    );
    assert_eq!(
        status_of(pools.list(&ListParams::default()).await).code,
        404
    );
}
