//! Watches through kube-rs: resume from a resourceVersion, 410 Gone past the history,
//! streaming lists with their closing bookmark, and selector transitions.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use portico_lab::ApiServerConfig;
use serde_json::json;

use crate::common::{lab, lab_with};

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let mut cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    if !labels.is_empty() {
        cm.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }
    cm
}

fn describe(event: &WatchEvent<ConfigMap>) -> String {
    match event {
        WatchEvent::Added(o) => format!("ADDED {}", o.metadata.name.as_deref().unwrap_or_default()),
        WatchEvent::Modified(o) => format!(
            "MODIFIED {}",
            o.metadata.name.as_deref().unwrap_or_default()
        ),
        WatchEvent::Deleted(o) => {
            format!("DELETED {}", o.metadata.name.as_deref().unwrap_or_default())
        }
        WatchEvent::Bookmark(b) => format!(
            "BOOKMARK {}",
            b.metadata
                .annotations
                .get("k8s.io/initial-events-end")
                .cloned()
                .unwrap_or_default()
        ),
        WatchEvent::Error(s) => format!("ERROR {}", s.code),
    }
}

async fn next_events(
    api: &Api<ConfigMap>,
    params: &WatchParams,
    rv: &str,
    count: usize,
) -> Vec<String> {
    let stream = api.watch(params, rv).await.unwrap();
    let events = tokio::time::timeout(
        Duration::from_secs(5),
        stream.take(count).try_collect::<Vec<_>>(),
    )
    .await;
    events
        .expect("events arrive in time")
        .unwrap()
        .iter()
        .map(describe)
        .collect()
}

#[tokio::test]
async fn watch_from_a_resource_version_replays_the_later_changes_in_order() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    let a = maps
        .create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();
    let rv = a.metadata.resource_version.unwrap();
    maps.create(&PostParams::default(), &cm("b", &[]))
        .await
        .unwrap();
    maps.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    maps.delete("b", &Default::default()).await.unwrap();
    let events = next_events(&maps, &WatchParams::default(), &rv, 3).await;
    assert_eq!(events, ["ADDED b", "MODIFIED a", "DELETED b"]);
}

#[tokio::test]
async fn watch_from_a_version_older_than_the_history_gets_a_410_gone_error_event() {
    let lab = lab_with(ApiServerConfig {
        watch_history: 3,
        ..Default::default()
    })
    .await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    let first = maps
        .create(&PostParams::default(), &cm("first", &[]))
        .await
        .unwrap();
    for i in 0..5 {
        maps.create(&PostParams::default(), &cm(&format!("later-{i}"), &[]))
            .await
            .unwrap();
    }
    let rv = first.metadata.resource_version.unwrap();
    let mut stream = maps
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.next().await {
        Some(Ok(WatchEvent::Error(status))) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
            assert!(
                status.message.starts_with("too old resource version"),
                "{}",
                status.message
            );
        }
        other => panic!("expected an ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn streaming_list_sends_the_state_then_an_initial_events_end_bookmark() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    maps.create(&PostParams::default(), &cm("x", &[]))
        .await
        .unwrap();
    maps.create(&PostParams::default(), &cm("y", &[]))
        .await
        .unwrap();
    let events = next_events(&maps, &WatchParams::streaming_lists(), "", 3).await;
    assert_eq!(events, ["ADDED x", "ADDED y", "BOOKMARK true"]);
}

#[tokio::test]
async fn watch_without_a_version_starts_with_synthetic_added_events() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    maps.create(&PostParams::default(), &cm("present", &[]))
        .await
        .unwrap();
    let events = next_events(&maps, &WatchParams::default(), "0", 1).await;
    assert_eq!(events, ["ADDED present"]);
}

#[tokio::test]
async fn an_object_leaving_a_watched_label_selector_arrives_as_deleted() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    let created = maps
        .create(&PostParams::default(), &cm("sel", &[("app", "web")]))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.unwrap();
    maps.patch(
        "sel",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}})),
    )
    .await
    .unwrap();
    maps.patch(
        "sel",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "web"}}})),
    )
    .await
    .unwrap();
    let events = next_events(&maps, &WatchParams::default().labels("app=web"), &rv, 2).await;
    assert_eq!(events, ["DELETED sel", "ADDED sel"]);
}

#[tokio::test]
async fn periodic_bookmarks_carry_the_current_resource_version() {
    let lab = lab_with(ApiServerConfig {
        bookmark_interval: Duration::from_millis(200),
        ..Default::default()
    })
    .await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    let created = maps
        .create(&PostParams::default(), &cm("bm", &[]))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.unwrap();
    let mut stream = maps
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
        Ok(Some(Ok(WatchEvent::Bookmark(b)))) => assert!(
            b.metadata.resource_version.parse::<u64>().unwrap() >= rv.parse::<u64>().unwrap()
        ),
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn a_delete_held_by_a_finalizer_is_watched_as_modified_then_deleted() {
    let lab = lab().await;
    let maps: Api<ConfigMap> = Api::namespaced(lab.client().await.unwrap(), "default");
    let mut held = cm("held", &[]);
    held.metadata.finalizers = Some(vec!["portico.dev/test".into()]);
    let created = maps.create(&PostParams::default(), &held).await.unwrap();
    let rv = created.metadata.resource_version.unwrap();
    maps.delete("held", &Default::default()).await.unwrap();
    maps.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let events = next_events(&maps, &WatchParams::default(), &rv, 3).await;
    assert_eq!(events, ["MODIFIED held", "MODIFIED held", "DELETED held"]);
}
