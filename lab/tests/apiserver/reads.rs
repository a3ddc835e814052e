//! List and watch options as the real server takes them: bookmarks before a watch times out,
//! the streaming-list parameters together or not at all, `resourceVersionMatch=Exact` lists of
//! the past, and resourceVersions from the future refused.

use serde_json::{Value, json};

use crate::common::{lab, raw};

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

async fn create_configmap(client: &kube::Client, name: &str) -> String {
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    let request = http::Request::post(CONFIGMAPS)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    let (code, created) = raw(client, request).await;
    assert_eq!(code, 201, "{created}");
    created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn get(client: &kube::Client, uri: &str) -> (u16, Value) {
    raw(client, http::Request::get(uri).body(Vec::new()).unwrap()).await
}

/// The whole body of a watch that ends by its timeout, as its event lines.
async fn watch_events(client: &kube::Client, uri: &str) -> Vec<Value> {
    let response = client
        .send(
            http::Request::get(uri)
                .body(Vec::new())
                .unwrap()
                .map(kube::client::Body::from),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect_bytes().await.unwrap();
    body.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect()
}

#[tokio::test]
async fn a_watch_that_allows_bookmarks_gets_one_before_its_timeout_closes_it() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let rv = create_configmap(&client, "a").await;
    let events = watch_events(
        &client,
        &format!(
            "{CONFIGMAPS}?watch=true&allowWatchBookmarks=true&timeoutSeconds=3&resourceVersion={rv}"
        ),
    )
    .await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["BOOKMARK"]);
    let bookmark_rv: u64 = events[0]["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(bookmark_rv >= rv.parse().unwrap());
}

#[tokio::test]
async fn streaming_list_parameters_are_checked_together() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let (code, status) = get(
        &client,
        &format!("{CONFIGMAPS}?watch=true&sendInitialEvents=true"),
    )
    .await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["details"]["kind"], "ListOptions");
    let fields: Vec<&str> = status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["resourceVersionMatch", "allowWatchBookmarks"]);
    let (code, _) = get(&client, &format!("{CONFIGMAPS}?sendInitialEvents=true")).await;
    assert_eq!(code, 422);
    create_configmap(&client, "a").await;
    let events = watch_events(
        &client,
        &format!("{CONFIGMAPS}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"),
    )
    .await;
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(
        events[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
}

#[tokio::test]
async fn an_exact_list_shows_the_past_and_needs_a_resource_version() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let then = create_configmap(&client, "a").await;
    create_configmap(&client, "b").await;
    let (code, list) = get(
        &client,
        &format!("{CONFIGMAPS}?resourceVersion={then}&resourceVersionMatch=Exact"),
    )
    .await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["metadata"]["resourceVersion"], then.as_str());
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a"]);
    let (code, _) = get(&client, &format!("{CONFIGMAPS}?resourceVersionMatch=Exact")).await;
    assert_eq!(code, 422);
}

#[tokio::test]
async fn a_resource_version_from_the_future_is_too_large() {
    let lab = lab().await;
    // kube-rs retries a 504 after its Retry-After, as client-go does; this test wants the 504.
    let mut config = lab.kube_config().await.unwrap();
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    for uri in [
        format!("{CONFIGMAPS}?resourceVersion=99999999"),
        format!("{CONFIGMAPS}?watch=true&resourceVersion=99999999"),
    ] {
        let (code, status) = get(&client, &uri).await;
        assert_eq!(code, 504, "{uri}: {status}");
        assert_eq!(status["reason"], "Timeout");
        assert_eq!(status["details"]["retryAfterSeconds"], 1);
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "ResourceVersionTooLarge"
        );
    }
}

#[tokio::test]
async fn a_client_that_accepts_yaml_first_gets_yaml() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let request = http::Request::get("/api/v1/namespaces/default")
        .header("accept", "application/yaml, application/json")
        .body(Vec::new())
        .unwrap();
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/yaml");
    let body = response.into_body().collect_bytes().await.unwrap();
    let namespace: Value = serde_yaml_ng::from_slice(&body).unwrap();
    assert_eq!(namespace["metadata"]["name"], "default");
    assert!(
        String::from_utf8_lossy(&body).contains("kind: Namespace"),
        "not YAML"
    );
}
