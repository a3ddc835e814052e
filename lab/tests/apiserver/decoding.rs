//! Writes of built-in kinds go through their types, as the real server decodes them through
//! its Go types: a wrong type is refused naming the field, unknown fields are dropped with a
//! warning (refused under `fieldValidation=Strict`), timestamps are stored in RFC 3339 UTC,
//! and the write options take only the values the real server takes.

use serde_json::{Value, json};

use crate::common::{lab, raw};

/// Sends a JSON request and returns the status code, the `Warning` headers and the body.
async fn send(
    client: &kube::Client,
    method: &str,
    uri: &str,
    content_type: &str,
    body: &Value,
) -> (u16, Vec<String>, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(serde_json::to_vec(body).unwrap())
        .unwrap();
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .expect("request is sent");
    let code = response.status().as_u16();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let body = response.into_body().collect_bytes().await.unwrap();
    (
        code,
        warnings,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

async fn post(client: &kube::Client, uri: &str, body: &Value) -> (u16, Vec<String>, Value) {
    send(client, "POST", uri, "application/json", body).await
}

fn lease(spec: Value) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": spec})
}

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

#[tokio::test]
async fn a_field_of_the_wrong_type_is_refused_naming_the_field() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let cases = [
        (
            LEASES,
            lease(json!({"renewTime": "yesterday"})),
            "spec.renewTime",
        ),
        (
            LEASES,
            lease(json!({"leaseDurationSeconds": "15"})),
            "spec.leaseDurationSeconds",
        ),
        (
            "/api/v1/namespaces/default/services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                "spec": {"sessionAffinity": 5, "ports": [{"port": 80}]}}),
            "spec.sessionAffinity",
        ),
        (
            "/api/v1/namespaces/default/services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                "spec": {"ports": [{"port": "80"}]}}),
            "spec.ports[0].port",
        ),
        (
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "e"},
                "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": "true"}}]}),
            "endpoints[0].conditions.ready",
        ),
        (
            "/api/v1/nodes",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
                "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "now"}]}}),
            "status.conditions[0].lastHeartbeatTime",
        ),
    ];
    for (uri, body, field) in cases {
        let (code, _, status) = post(&client, uri, &body).await;
        assert_eq!(code, 400, "{field}: {status}");
        assert_eq!(status["reason"], "BadRequest");
        let message = status["message"].as_str().unwrap();
        assert!(message.contains(field), "{field} not named in {message}");
    }
    // Nothing was stored, so typed lists keep working.
    let (code, list) = raw(
        &client,
        http::Request::get(LEASES).body(Vec::new()).unwrap(),
    )
    .await;
    assert_eq!((code, list["items"].as_array().unwrap().len()), (200, 0));
}

#[tokio::test]
async fn timestamps_are_stored_in_utc() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let body = lease(
        json!({"renewTime": "2026-01-02T03:04:05.250000+02:00", "acquireTime": "2026-01-02T03:04:05+02:00"}),
    );
    let (code, _, created) = post(&client, LEASES, &body).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["renewTime"], "2026-01-02T01:04:05.250000Z");
    assert_eq!(
        created["spec"]["acquireTime"],
        "2026-01-02T01:04:05.000000Z"
    );
    // A `metav1.Time` (seconds) as well as the `MicroTime`s above.
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
        "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-02T03:04:05-01:00"}]}});
    let (code, _, created) = post(&client, "/api/v1/nodes", &node).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(
        created["status"]["conditions"][0]["lastHeartbeatTime"],
        "2026-01-02T04:04:05Z"
    );
}

#[tokio::test]
async fn unknown_fields_are_dropped_with_a_warning_and_refused_under_strict() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let uri = "/api/v1/namespaces/default/services";
    let service = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicyy": "Local", "bogusField": 1, "ports": [{"port": 80}]}})
    };
    let (code, warnings, created) = post(&client, uri, &service("warned")).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(
        warnings,
        [
            r#"299 - "unknown field \"spec.bogusField\"""#,
            r#"299 - "unknown field \"spec.externalTrafficPolicyy\"""#
        ]
    );
    assert!(created["spec"].get("bogusField").is_none());
    assert_eq!(created["spec"]["externalTrafficPolicy"], "Cluster");

    let (code, warnings, _) = post(
        &client,
        &format!("{uri}?fieldValidation=Ignore"),
        &service("ignored"),
    )
    .await;
    assert_eq!((code, warnings.len()), (201, 0));

    let (code, _, status) = post(
        &client,
        &format!("{uri}?fieldValidation=Strict"),
        &service("strict"),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        status["message"],
        "Service in version \"v1\" cannot be handled as a Service: strict decoding error: unknown field \"spec.bogusField\", unknown field \"spec.externalTrafficPolicyy\""
    );

    // A merge patch and an apply configuration are held to the same rule.
    let (code, warnings, patched) = send(
        &client,
        "PATCH",
        &format!("{uri}/warned"),
        "application/merge-patch+json",
        &json!({"spec": {"sessionAffinityy": "ClientIP"}}),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        warnings,
        [r#"299 - "unknown field \"spec.sessionAffinityy\"""#]
    );
    assert!(patched["spec"].get("sessionAffinityy").is_none());
    let applied = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "warned"},
        "spec": {"ports": [{"port": 80, "protocol": "TCP", "bogus": true}]}});
    let (code, _, status) = send(
        &client,
        "PATCH",
        &format!("{uri}/warned?fieldManager=tester&fieldValidation=Strict"),
        "application/apply-patch+yaml",
        &applied,
    )
    .await;
    assert_eq!(code, 400, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"spec.ports[0].bogus\"")
    );
    let (code, _, applied) = send(
        &client,
        "PATCH",
        &format!("{uri}/warned?fieldManager=tester"),
        "application/apply-patch+yaml",
        &applied,
    )
    .await;
    assert_eq!(code, 200, "{applied}");
    let owned = serde_json::to_string(&applied["metadata"]["managedFields"]).unwrap();
    assert!(!owned.contains("bogus"), "{owned}");
}

#[tokio::test]
async fn the_service_fields_are_validated_as_upstream_does() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let uri = "/api/v1/namespaces/default/services";
    let cases = [
        (json!({"sessionAffinity": "Bogus"}), "spec.sessionAffinity"),
        (
            json!({"internalTrafficPolicy": "Bogus"}),
            "spec.internalTrafficPolicy",
        ),
        (json!({"ipFamilyPolicy": "Bogus"}), "spec.ipFamilyPolicy"),
        (
            json!({"loadBalancerSourceRanges": ["nonsense"]}),
            "spec.LoadBalancerSourceRanges[0]",
        ),
        (json!({"externalIPs": ["nonsense"]}), "spec.externalIPs[0]"),
        (json!({"selector": {"bad key!": "x"}}), "spec.selector"),
        (
            json!({"ports": [{"port": 80, "name": "A_B"}]}),
            "spec.ports[0].name",
        ),
    ];
    for (fields, expected) in cases {
        let mut spec = json!({"type": "LoadBalancer", "ports": [{"port": 80}]});
        for (k, v) in fields.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let body =
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec});
        let (code, _, status) = post(&client, uri, &body).await;
        assert_eq!(code, 422, "{expected}: {status}");
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(
            status["details"]["causes"][0]["field"], expected,
            "{status}"
        );
    }
}

#[tokio::test]
async fn write_options_take_only_the_values_the_real_server_takes() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let uri = "/api/v1/namespaces/default/configmaps";
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    for dry_run in ["Bogus", "all"] {
        let (code, _, status) = post(&client, &format!("{uri}?dryRun={dry_run}"), &cm).await;
        assert_eq!(code, 422, "{status}");
        assert_eq!(status["details"]["kind"], "CreateOptions");
        assert_eq!(status["details"]["causes"][0]["field"], "dryRun");
    }
    let (code, list) = raw(&client, http::Request::get(uri).body(Vec::new()).unwrap()).await;
    assert_eq!((code, list["items"].as_array().unwrap().len()), (200, 0));

    let (code, _, status) = send(
        &client,
        "PATCH",
        &format!("{uri}/c"),
        "application/apply-patch+yaml",
        &cm,
    )
    .await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "fieldManager");

    let (code, _, _) = post(&client, uri, &cm).await;
    assert_eq!(code, 201);
    let (code, _, status) = send(
        &client,
        "PATCH",
        &format!("{uri}/c?force=true"),
        "application/merge-patch+json",
        &json!({"data": {"a": "b"}}),
    )
    .await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "force");
}

#[tokio::test]
async fn events_k8s_io_events_need_their_fields_and_record_their_own_field_names() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let uri = "/apis/events.k8s.io/v1/namespaces/default/events";
    let mut event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
        "regarding": {"kind": "Service", "namespace": "default", "name": "web"},
        "reason": "Ensured", "action": "Ensure", "type": "Normal", "note": "ok",
        "reportingController": "portico.dev/controller", "reportingInstance": "pod-1"});
    let (code, _, status) = post(&client, uri, &event).await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "eventTime");

    event["eventTime"] = json!("2026-01-02T03:04:05.000000Z");
    let (code, _, created) = post(&client, &format!("{uri}?fieldManager=recorder"), &event).await;
    assert_eq!(code, 201, "{created}");
    let managed = &created["metadata"]["managedFields"][0];
    assert_eq!(managed["apiVersion"], "events.k8s.io/v1");
    let fields = serde_json::to_string(&managed["fieldsV1"]).unwrap();
    assert!(
        fields.contains("f:regarding") && fields.contains("f:note"),
        "{fields}"
    );
    assert!(!fields.contains("f:involvedObject"), "{fields}");

    // Read as a core Event, the timestamps it has not set are there, as null.
    let (code, core) = raw(
        &client,
        http::Request::get("/api/v1/namespaces/default/events/e")
            .body(Vec::new())
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200);
    let fields = core.as_object().unwrap();
    assert_eq!(fields.get("lastTimestamp"), Some(&Value::Null));
    assert_eq!(fields.get("firstTimestamp"), Some(&Value::Null));
    assert_eq!(core["message"], "ok");
}
