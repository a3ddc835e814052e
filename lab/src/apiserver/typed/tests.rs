use serde_json::json;

use super::*;
use crate::apiserver::resources::Registry;

fn rt(group: &str, plural: &str) -> ResourceType {
    Registry::default()
        .find(group, "v1", plural)
        .unwrap()
        .as_ref()
        .clone()
}

#[test]
fn a_wrong_type_names_its_field() {
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
        "spec": {"leaseDurationSeconds": "15"}});
    let error = decode(&rt("coordination.k8s.io", "leases"), &lease)
        .unwrap()
        .unwrap_err();
    assert_eq!(error.field, "spec.leaseDurationSeconds");
    let service = json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": "80"}]}});
    let error = decode(&rt("", "services"), &service).unwrap().unwrap_err();
    assert_eq!(error.field, "spec.ports[0].port");
}

#[test]
fn a_timestamp_that_is_not_rfc3339_is_refused_and_one_with_an_offset_is_normalized() {
    let leases = rt("coordination.k8s.io", "leases");
    let bad = json!({"metadata": {"name": "l"}, "spec": {"renewTime": "yesterday"}});
    assert_eq!(
        decode(&leases, &bad).unwrap().unwrap_err().field,
        "spec.renewTime"
    );
    let offset = json!({"metadata": {"name": "l"}, "spec": {"renewTime": "2026-01-02T03:04:05.123456+02:00"}});
    let decoded = decode(&leases, &offset).unwrap().unwrap();
    assert_eq!(
        decoded.object["spec"]["renewTime"],
        "2026-01-02T01:04:05.123456Z"
    );
    assert!(decoded.unknown.is_empty());
}

#[test]
fn unknown_fields_are_dropped_and_named_with_list_indices() {
    let service = json!({"metadata": {"name": "web", "creationTimestamp": null},
        "spec": {"externalTrafficPolicyy": "Local", "ports": [{"port": 80}, {"port": 81, "bogus": 1}]},
        "status": {"loadBalancer": {}}});
    let decoded = decode(&rt("", "services"), &service).unwrap().unwrap();
    assert_eq!(
        decoded.unknown,
        ["spec.externalTrafficPolicyy", "spec.ports[1].bogus"]
    );
    assert!(
        decoded.object["spec"]
            .get("externalTrafficPolicyy")
            .is_none()
    );
    assert_eq!(decoded.object["spec"]["ports"][1]["port"], 81);
    assert_eq!(decoded.object["status"], json!({"loadBalancer": {}}));
}

#[test]
fn system_fields_survive_the_round_trip() {
    let node = json!({"metadata": {"name": "n1", "uid": "u", "resourceVersion": "7",
            "managedFields": [{"manager": "m", "operation": "Apply", "apiVersion": "v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:conditions": {}}}, "time": "2026-01-01T00:00:00Z"}]},
        "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-01T00:00:00Z"}],
            "capacity": {"cpu": "2"}}});
    let decoded = decode(&rt("", "nodes"), &node).unwrap().unwrap();
    assert!(decoded.unknown.is_empty(), "{:?}", decoded.unknown);
    assert_eq!(
        decoded.object["metadata"]["managedFields"],
        node["metadata"]["managedFields"]
    );
    assert_eq!(decoded.object["status"], node["status"]);
}

#[test]
fn an_apply_configuration_keeps_only_the_fields_it_names() {
    let config = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "s"}, "ports": [{"port": 80, "extra": true}]});
    let known = known_fields(&rt("discovery.k8s.io", "endpointslices"), &config)
        .unwrap()
        .unwrap();
    assert_eq!(known.unknown, ["ports[0].extra"]);
    // The type's defaults for required fields (addressType, endpoints) are not claimed.
    assert_eq!(
        known.object,
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "s"}, "ports": [{"port": 80}]})
    );
}

#[test]
fn custom_kinds_have_no_type_here() {
    let mut custom = rt("", "services");
    custom.group = "portico.dev".into();
    custom.plural = "addresspools".into();
    assert!(decode(&custom, &json!({})).is_none());
}

#[test]
fn a_required_timestamp_left_out_stays_unset() {
    let event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "reason": "R"});
    let decoded = decode(&rt("events.k8s.io", "events"), &event)
        .unwrap()
        .unwrap();
    assert_eq!(decoded.object["eventTime"], Value::Null);
}

#[test]
fn core_events_carry_their_timestamps_as_null() {
    let events = rt("", "events");
    let mut event = decode(
        &events,
        &json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Service"}}),
    )
    .unwrap()
    .unwrap()
    .object;
    add_go_zero_fields(&events, &mut event);
    assert_eq!(event["lastTimestamp"], Value::Null);
    assert!(event.as_object().unwrap().contains_key("lastTimestamp"));
    assert_eq!(event["reportingComponent"], "");
}
