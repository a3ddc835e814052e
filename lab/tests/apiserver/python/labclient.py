"""Shared by the conformance scripts: a client for the lab API server from the kubeconfig
given as the first argument, and small checks that fail with a message naming what differs.

Each script drives the lab API server with the official Kubernetes Python client, whose
generated models deserialize every response (and refuse a missing required field), so a
response shaped unlike the real API server's fails here as it would against a cluster."""

import json
import sys

import kubernetes
from kubernetes.client.rest import ApiException


def connect():
    kubeconfig = sys.argv[1]
    kubernetes.config.load_kube_config(config_file=kubeconfig)
    return kubernetes.client.ApiClient()


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def status_of(call):
    """Runs a call that must fail; returns (HTTP status, the Status body as a dict)."""
    try:
        result = call()
    except ApiException as e:
        return e.status, json.loads(e.body) if e.body else {}
    raise AssertionError(f"expected an API error, got {result!r}")


def send(api, method, path, body, content_type="application/json", query=None):
    """A request as given, for bodies the typed methods refuse to send (they validate their
    arguments first); returns (HTTP status, the body as a dict)."""
    request = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=query or [],
        header_params={"Content-Type": content_type, "Accept": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*request)
    response.read()
    return response.status, json.loads(response.data) if response.data else {}


def check_status(got, body, code, reason, field=None):
    """A Status of this code and reason and, when given, a cause naming the field (or, for
    400s, which carry no causes, a message naming it)."""
    check(got == code, f"expected {code}, got {got}: {body}")
    check(body.get("kind") == "Status", f"not a Status: {body}")
    check(body.get("reason") == reason, f"expected reason {reason}: {body}")
    if field is not None:
        causes = [c.get("field") for c in body.get("details", {}).get("causes", [])]
        check(
            field in causes or field in body.get("message", ""),
            f"{field} named neither in causes {causes} nor in the message: {body}",
        )
    return body


def expect_status(call, code, reason, field=None):
    """A typed call that fails with that Status."""
    got, body = status_of(call)
    return check_status(got, body, code, reason, field)


def expect_refused(api, method, path, body, code, reason, field=None, **options):
    """A raw request that fails with that Status."""
    got, answer = send(api, method, path, body, **options)
    return check_status(got, answer, code, reason, field)


def run(*tests):
    for test in tests:
        test()
        print(f"ok {test.__name__}")
