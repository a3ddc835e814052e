"""Typed writes and reads of every built-in kind a load-balancer controller, its agent and
their tests write, and of a custom resource: every response must deserialize into the
client's models."""

import datetime

from kubernetes import client

from labclient import check, connect, run

api = connect()
core = client.CoreV1Api(api)
NS = "conformance"
NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def namespaces():
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    names = [n.metadata.name for n in core.list_namespace().items]
    check(NS in names and "default" in names, f"namespaces: {names}")
    ns = core.read_namespace(NS)
    check(ns.status.phase == "Active", f"phase: {ns.status}")


def services():
    svc = client.V1Service(
        metadata=client.V1ObjectMeta(name="web", labels={"app": "web"}),
        spec=client.V1ServiceSpec(
            type="LoadBalancer",
            selector={"app": "web"},
            external_traffic_policy="Local",
            ports=[client.V1ServicePort(name="http", port=80, target_port=8080)],
        ),
    )
    created = core.create_namespaced_service(NS, svc)
    check(created.spec.cluster_ip, "no clusterIP")
    check(created.spec.ports[0].node_port, "no nodePort")
    check(created.spec.health_check_node_port, "no healthCheckNodePort")
    status = client.V1Service(
        metadata=client.V1ObjectMeta(name="web"),
        status=client.V1ServiceStatus(
            load_balancer=client.V1LoadBalancerStatus(
                ingress=[client.V1LoadBalancerIngress(ip="198.18.0.200", ip_mode="VIP")]
            )
        ),
    )
    core.patch_namespaced_service_status("web", NS, status)
    listed = core.list_namespaced_service(NS).items
    check(listed[0].status.load_balancer.ingress[0].ip == "198.18.0.200", f"{listed}")
    core.list_service_for_all_namespaces()


def endpoint_slices():
    discovery = client.DiscoveryV1Api(api)
    slice_ = client.V1EndpointSlice(
        metadata=client.V1ObjectMeta(
            name="web-abc", labels={"kubernetes.io/service-name": "web"}
        ),
        address_type="IPv4",
        endpoints=[
            client.V1Endpoint(
                addresses=["10.244.1.5"],
                node_name="node-1",
                conditions=client.V1EndpointConditions(
                    ready=True, serving=True, terminating=False
                ),
            )
        ],
        ports=[client.DiscoveryV1EndpointPort(name="http", port=8080, protocol="TCP")],
    )
    discovery.create_namespaced_endpoint_slice(NS, slice_)
    listed = discovery.list_namespaced_endpoint_slice(
        NS, label_selector="kubernetes.io/service-name=web"
    ).items
    check(listed[0].endpoints[0].conditions.ready is True, f"{listed}")


def nodes():
    node = client.V1Node(
        metadata=client.V1ObjectMeta(name="node-1", labels={"kubernetes.io/hostname": "node-1"}),
        status=client.V1NodeStatus(
            addresses=[client.V1NodeAddress(type="InternalIP", address="10.0.0.11")],
            conditions=[
                client.V1NodeCondition(
                    type="Ready",
                    status="True",
                    last_heartbeat_time=NOW,
                    last_transition_time=NOW,
                    reason="KubeletReady",
                    message="ready",
                )
            ],
        ),
    )
    core.create_node(node)
    listed = core.list_node().items
    ready = listed[0].status.conditions[0]
    check(ready.last_heartbeat_time == NOW, f"heartbeat {ready.last_heartbeat_time} != {NOW}")
    check(listed[0].status.node_info is not None, "nodeInfo missing")


def leases():
    coordination = client.CoordinationV1Api(api)
    lease = client.V1Lease(
        metadata=client.V1ObjectMeta(name="portico-controller"),
        spec=client.V1LeaseSpec(
            holder_identity="pod-1",
            lease_duration_seconds=15,
            acquire_time=NOW,
            renew_time=NOW,
            lease_transitions=0,
        ),
    )
    coordination.create_namespaced_lease(NS, lease)
    got = coordination.list_namespaced_lease(NS).items[0]
    check(got.spec.renew_time == NOW and got.spec.lease_duration_seconds == 15, f"{got.spec}")


def pods():
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="web-0", labels={"app": "web"}),
        spec=client.V1PodSpec(
            node_name="node-1",
            containers=[
                client.V1Container(
                    name="web",
                    image="nginx",
                    ports=[client.V1ContainerPort(container_port=8080)],
                )
            ],
        ),
    )
    core.create_namespaced_pod(NS, pod)
    got = core.read_namespaced_pod("web-0", NS)
    check(got.spec.restart_policy == "Always" and got.spec.dns_policy == "ClusterFirst",
          f"pod defaults: {got.spec}")
    check(got.spec.containers[0].ports[0].protocol == "TCP", f"{got.spec.containers[0]}")
    check(got.status.phase == "Pending", f"pod status: {got.status}")
    core.list_namespaced_pod(NS)
    core.list_pod_for_all_namespaces()


def events():
    regarding = client.V1ObjectReference(kind="Service", namespace=NS, name="web", api_version="v1")
    v1 = client.EventsV1Event(
        metadata=client.V1ObjectMeta(name="web.1"),
        event_time=datetime.datetime.now(datetime.timezone.utc),
        action="Ensure",
        reason="EnsuredLoadBalancer",
        note="assigned 198.18.0.200",
        type="Normal",
        regarding=regarding,
        reporting_controller="example.com/controller",
        reporting_instance="pod-1",
    )
    client.EventsV1Api(api).create_namespaced_event(NS, v1)
    legacy = client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="web.2"),
        involved_object=regarding,
        reason="Announced",
        message="announced by node-1",
        type="Normal",
        first_timestamp=NOW,
        last_timestamp=NOW,
        count=1,
        source=client.V1EventSource(component="agent", host="node-1"),
    )
    core.create_namespaced_event(NS, legacy)
    listed = core.list_namespaced_event(NS).items
    check(len(listed) == 2, f"core events: {listed}")
    by_name = {e.metadata.name: e for e in listed}
    check(by_name["web.1"].message == "assigned 198.18.0.200", f"{by_name['web.1']}")
    check(by_name["web.1"].reporting_component == "example.com/controller", "reportingComponent")
    # Read through events.k8s.io, an Event written through the core API has no eventTime
    # (null, as from a real server), which the client's EventsV1Event refuses; so only the
    # one written through events.k8s.io is read that way.
    new = client.EventsV1Api(api).list_namespaced_event(NS, field_selector="metadata.name=web.1")
    check([e.note for e in new.items] == ["assigned 198.18.0.200"], f"events.k8s.io: {new}")
    check(new.items[0].regarding.name == "web", f"{new.items[0]}")


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1},
                                    "addresses": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        },
                    }
                },
            }
        ],
    },
}


def custom_resources():
    extensions = client.ApiextensionsV1Api(api)
    extensions.create_custom_resource_definition(CRD)
    crds = extensions.list_custom_resource_definition().items
    check(crds[0].status.accepted_names.kind == "Widget", f"{crds[0].status}")
    custom = client.CustomObjectsApi(api)
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 2}}
    custom.create_namespaced_custom_object("example.com", "v1", NS, "widgets", widget)
    custom.patch_namespaced_custom_object_status(
        "example.com", "v1", NS, "widgets", "w", {"status": {"ready": True}}
    )
    got = custom.get_namespaced_custom_object("example.com", "v1", NS, "widgets", "w")
    check(got["status"] == {"ready": True} and got["spec"]["size"] == 2, f"{got}")
    listed = custom.list_cluster_custom_object("example.com", "v1", "widgets")
    check(len(listed["items"]) == 1, f"{listed}")


run(namespaces, services, endpoint_slices, nodes, leases, pods, events, custom_resources)
