"""Refused writes answer a Status the client can act on: the reason, and the field at fault in
`details.causes[].field` (422) or in the message (400, as the real server words decode errors);
refused writes store nothing, so typed lists keep working."""

from kubernetes import client

from labclient import check, connect, expect_refused, expect_status, run, send

api = connect()
core = client.CoreV1Api(api)
coordination = client.CoordinationV1Api(api)
NS = "default"


def service(name, **spec):
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}
    body["spec"].update(spec)
    return body


def wrong_types_are_bad_requests_naming_the_field():
    leases = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}}
    for spec, field in [({"renewTime": "yesterday"}, "spec.renewTime"),
                        ({"leaseDurationSeconds": "15"}, "spec.leaseDurationSeconds")]:
        expect_refused(api, "POST", leases, dict(lease, spec=spec), 400, "BadRequest", field)
    services = f"/api/v1/namespaces/{NS}/services"
    expect_refused(api, "POST", services, service("s", sessionAffinity=5),
                   400, "BadRequest", "spec.sessionAffinity")
    expect_refused(api, "POST", services, service("s", ports=[{"port": "80"}]),
                   400, "BadRequest", "spec.ports[0].port")
    slices = f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"
    slice_ = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "e"},
              "addressType": "IPv4",
              "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": "true"}}]}
    expect_refused(api, "POST", slices, slice_, 400, "BadRequest", "endpoints[0].conditions.ready")
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "now"}]}}
    expect_refused(api, "POST", "/api/v1/nodes", node, 400, "BadRequest",
                   "status.conditions[0].lastHeartbeatTime")
    # Nothing was stored: the typed lists, which would fail on such values, keep working.
    check(coordination.list_namespaced_lease(NS).items == [], "a refused Lease was stored")
    client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(NS)
    core.list_node()


def invalid_fields_are_named_in_causes():
    for spec, field in [({"sessionAffinity": "Bogus"}, "spec.sessionAffinity"),
                        ({"internalTrafficPolicy": "Bogus"}, "spec.internalTrafficPolicy"),
                        ({"ipFamilyPolicy": "Bogus"}, "spec.ipFamilyPolicy"),
                        ({"loadBalancerSourceRanges": ["nonsense"]}, "spec.LoadBalancerSourceRanges[0]"),
                        ({"externalIPs": ["nonsense"]}, "spec.externalIPs[0]"),
                        ({"ports": [{"port": 80, "name": "A_B"}]}, "spec.ports[0].name"),
                        ({"selector": {"bad key!": "x"}}, "spec.selector"),
                        ({"ports": [{"port": 80, "nodePort": 80}]}, "spec.ports[0].nodePort")]:
        body = expect_status(lambda: core.create_namespaced_service(NS, service("s", **spec)),
                             422, "Invalid", field)
        check(body["details"]["kind"] == "Service" and body["details"]["name"] == "s", f"{body}")
    core.list_namespaced_service(NS)


def strict_field_validation_refuses_unknown_fields():
    services = f"/api/v1/namespaces/{NS}/services"
    expect_refused(api, "POST", services, service("strict", bogusField=1), 400, "BadRequest",
                   "spec.bogusField", query=[("fieldValidation", "Strict")])
    got, created = send(api, "POST", services, service("lenient", externalTrafficPolicyy="Local"))
    check(got == 201 and "externalTrafficPolicyy" not in created["spec"], f"{got}: {created}")
    typed = core.read_namespaced_service("lenient", NS)
    check(typed.spec.external_traffic_policy == "Cluster", f"{typed.spec}")


def not_found_conflict_and_already_exists():
    expect_status(lambda: core.read_namespaced_service("missing", NS), 404, "NotFound")
    core.create_namespaced_config_map(NS, {"metadata": {"name": "c"}})
    expect_status(lambda: core.create_namespaced_config_map(NS, {"metadata": {"name": "c"}}),
                  409, "AlreadyExists")
    stale = {"metadata": {"name": "c", "resourceVersion": "1"}, "data": {"a": "b"}}
    expect_status(lambda: core.replace_namespaced_config_map("c", NS, stale), 409, "Conflict")
    expect_status(lambda: core.create_namespaced_config_map("nowhere", {"metadata": {"name": "c"}}),
                  404, "NotFound")


def options_are_checked():
    body = {"metadata": {"name": "d"}}
    got = expect_status(lambda: core.create_namespaced_config_map(NS, body, dry_run="Bogus"),
                        422, "Invalid", "dryRun")
    check(got["details"]["kind"] == "CreateOptions", f"{got}")
    check(core.list_namespaced_config_map(NS, field_selector="metadata.name=d").items == [],
          "dryRun=Bogus created the object")


def events_k8s_io_needs_event_time():
    event = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
             "regarding": {"kind": "Service", "namespace": NS, "name": "web"},
             "reason": "R", "action": "A", "type": "Normal",
             "reportingController": "example.com/c", "reportingInstance": "i"}
    expect_refused(api, "POST", f"/apis/events.k8s.io/v1/namespaces/{NS}/events", event,
                   422, "Invalid", "eventTime")
    client.EventsV1Api(api).list_namespaced_event(NS)


run(wrong_types_are_bad_requests_naming_the_field, invalid_fields_are_named_in_causes,
    strict_field_validation_refuses_unknown_fields, not_found_conflict_and_already_exists,
    options_are_checked, events_k8s_io_needs_event_time)
