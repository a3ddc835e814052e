"""Watch semantics through the client's Watch helper: initial ADDED events, live changes,
bookmarks before the timeout closes a watch, resuming from a bookmark, and 410 Gone for a
resourceVersion older than the retained history (the lab keeps a short one for this test)."""

from kubernetes import client, watch

from labclient import check, connect, expect_status, run

api = connect()
core = client.CoreV1Api(api)
NS = "default"


def cm(name, value="1"):
    return {"metadata": {"name": name, "labels": {"app": "w"}}, "data": {"v": value}}


def initial_events_then_live_changes():
    core.create_namespaced_config_map(NS, cm("a"))
    w = watch.Watch()
    seen = []
    for event in w.stream(core.list_namespaced_config_map, NS, label_selector="app=w",
                          timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 1:
            core.patch_namespaced_config_map("a", NS, {"data": {"v": "2"}})
        if len(seen) == 2:
            w.stop()
    check(seen == [("ADDED", "a"), ("MODIFIED", "a")], f"{seen}")


def a_bookmark_comes_before_the_timeout_and_resumes():
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    bookmarks = []
    for event in watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=rv,
                                      allow_watch_bookmarks=True, timeout_seconds=3):
        if event["type"] == "BOOKMARK":
            bookmarks.append(event["raw_object"]["metadata"]["resourceVersion"])
    check(bookmarks, "no BOOKMARK before the watch timed out")
    core.create_namespaced_config_map(NS, cm("b"))
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_config_map, NS, resource_version=bookmarks[-1],
                          timeout_seconds=5):
        check((event["type"], event["object"].metadata.name) == ("ADDED", "b"), f"{event}")
        w.stop()


def an_expired_resource_version_is_gone():
    first = core.create_namespaced_config_map(NS, cm("old")).metadata.resource_version
    for i in range(40):
        core.patch_namespaced_config_map("old", NS, {"data": {"v": str(i)}})
    try:
        for event in watch.Watch().stream(core.list_namespaced_config_map, NS,
                                          resource_version=first, timeout_seconds=3):
            raise AssertionError(f"an event from an expired resourceVersion: {event['type']}")
    except client.exceptions.ApiException as e:
        check(e.status == 410, f"expected 410, got {e.status}")
    else:
        raise AssertionError("no 410 for an expired resourceVersion")


def list_resource_version_rules():
    rv = core.create_namespaced_config_map(NS, cm("x")).metadata.resource_version
    core.create_namespaced_config_map(NS, cm("y"))
    then = core.list_namespaced_config_map(NS, resource_version=rv,
                                           resource_version_match="Exact")
    names = [i.metadata.name for i in then.items]
    check("x" in names and "y" not in names, f"Exact list at {rv}: {names}")
    expect_status(lambda: core.list_namespaced_config_map(NS, resource_version_match="Exact"),
                  422, "Invalid", "resourceVersionMatch")
    body = expect_status(lambda: core.list_namespaced_config_map(NS, resource_version="99999999"),
                         504, "Timeout")
    check(body["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge", f"{body}")


run(initial_events_then_live_changes, a_bookmark_comes_before_the_timeout_and_resumes,
    an_expired_resource_version_is_gone, list_resource_version_rules)
