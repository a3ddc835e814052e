"""Server-side apply through the client: a field manager owns what it applies, a second
manager changing an owned field gets 409 Conflict naming the manager and the field, and
force takes the field over."""

from kubernetes import client

from labclient import check, connect, expect_refused, expect_status, run

api = connect()
core = client.CoreV1Api(api)
NS = "default"
APPLY = "application/apply-patch+yaml"


def service(traffic_policy):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "applied"},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": traffic_policy,
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}


def apply(body, manager, **options):
    return core.patch_namespaced_service("applied", NS, body, field_manager=manager,
                                         _content_type=APPLY, **options)


def apply_creates_and_records_the_manager():
    created = apply(service("Local"), "first")
    managers = [m.manager for m in created.metadata.managed_fields]
    check("first" in managers, f"managers: {managers}")
    check(created.spec.external_traffic_policy == "Local", f"{created.spec}")


def a_second_manager_conflicts_and_force_takes_over():
    body = expect_status(lambda: apply(service("Cluster"), "second"), 409, "Conflict")
    causes = body["details"]["causes"]
    check(any(c["field"] == ".spec.externalTrafficPolicy" for c in causes), f"{causes}")
    check("first" in body["message"], f"{body['message']}")
    forced = apply(service("Cluster"), "second", force=True)
    check(forced.spec.external_traffic_policy == "Cluster", f"{forced.spec}")


def apply_without_a_field_manager_is_invalid():
    body = expect_refused(api, "PATCH", f"/api/v1/namespaces/{NS}/services/applied",
                          service("Local"), 422, "Invalid", "fieldManager", content_type=APPLY)
    check(body["details"]["kind"] == "PatchOptions", f"{body}")


def a_merge_patch_takes_no_force():
    expect_status(lambda: core.patch_namespaced_service("applied", NS, {"metadata": {"labels": {"a": "b"}}},
                                                       force=True),
                  422, "Invalid", "force")


run(apply_creates_and_records_the_manager, a_second_manager_conflicts_and_force_takes_over,
    apply_without_a_field_manager_is_invalid, a_merge_patch_takes_no_force)
