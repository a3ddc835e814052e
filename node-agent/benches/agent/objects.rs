//! The Services and EndpointSlices the bench writes, as a real cluster serves them
//! (managedFields from server-side apply, a `last-applied-configuration` annotation, labels).

use std::net::Ipv4Addr;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};
use portico_tests::lab_cluster::LabCluster;
use serde_json::json;

use crate::{ENDPOINTS, PARALLEL};

fn last_applied(value: &serde_json::Value) -> String {
    value.to_string()
}

pub fn service_json(index: u32) -> serde_json::Value {
    let name = format!("svc-{index}");
    let lb = index.is_multiple_of(10);
    let mut spec = json!({
        "selector": {"app": name.clone(), "tier": "backend"},
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
    });
    if lb {
        spec["type"] = json!("LoadBalancer");
        spec["externalTrafficPolicy"] = json!("Local");
        spec["loadBalancerClass"] = json!("portico.dev/lb");
    }
    let mut object = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": name.clone(), "namespace": namespace(index),
            "labels": {"app.kubernetes.io/name": name.clone(), "app.kubernetes.io/part-of": "bench",
                       "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "bench-1.2.3"},
            "annotations": {"meta.helm.sh/release-name": "bench", "meta.helm.sh/release-namespace": namespace(index)},
        },
        "spec": spec,
    });
    let applied = last_applied(&object);
    object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
        json!(applied);
    object
}

pub fn namespace(index: u32) -> String {
    format!("ns-{}", index % 20)
}

pub fn pod_ip(index: u32, endpoint: u32, generation: u32) -> Ipv4Addr {
    let base = u32::from(Ipv4Addr::new(10, 244, 0, 0));
    Ipv4Addr::from(base + (generation * 100_000 + index) * 8 + endpoint)
}

pub fn slice_json(index: u32, generation: u32) -> serde_json::Value {
    let service = format!("svc-{index}");
    let endpoints: Vec<serde_json::Value> = (0..ENDPOINTS)
        .map(|e| {
            json!({
                "addresses": [pod_ip(index, e, generation).to_string()],
                "nodeName": format!("bench-node-{}", e + 1),
                "zone": "zone-a",
                "conditions": {"ready": true, "serving": true, "terminating": false},
                "targetRef": {"kind": "Pod", "namespace": namespace(index),
                              "name": format!("{service}-7d9f8b6c5d-{e}x{generation}"),
                              "uid": format!("00000000-0000-0000-{e:04}-{index:012}")},
            })
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{service}-abcde"), "namespace": namespace(index),
            "labels": {"kubernetes.io/service-name": service.clone(),
                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                       "app.kubernetes.io/name": service.clone()},
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "2026-11-30T00:00:00Z"},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    })
}

pub fn apply_params() -> PatchParams {
    PatchParams::apply("kube-controller-manager").force()
}

pub async fn create_objects(cluster: &LabCluster, count: u32) {
    let client = cluster.client.clone();
    futures::stream::iter(0..count)
        .map(|index| {
            let client = client.clone();
            async move {
                let ns = namespace(index);
                let services: Api<Service> = Api::namespaced(client.clone(), &ns);
                let name = format!("svc-{index}");
                let service: Service = serde_json::from_value(service_json(index)).unwrap();
                let service = services
                    .patch(
                        &name,
                        &PatchParams::apply("kubectl-client-side-apply"),
                        &Patch::Apply(&service),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("apply {name}: {e}"));
                if index.is_multiple_of(10) {
                    let vip = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 0, 0)) + index);
                    let status = json!({"status": {"loadBalancer": {"ingress": [{"ip": vip.to_string(), "ipMode": "VIP"}]}}});
                    services
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                        .await
                        .unwrap();
                }
                let _ = service;
                let slices: Api<EndpointSlice> = Api::namespaced(client, &ns);
                let slice: EndpointSlice = serde_json::from_value(slice_json(index, 0)).unwrap();
                slices
                    .patch(
                        &format!("{name}-abcde"),
                        &apply_params(),
                        &Patch::Apply(&slice),
                    )
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(PARALLEL)
        .collect::<Vec<_>>()
        .await;
}

pub async fn create_namespaces(cluster: &LabCluster) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cluster.client.clone());
    for i in 0..20 {
        let ns = serde_json::from_value(json!({"metadata": {"name": format!("ns-{i}")}})).unwrap();
        let _ = api.create(&PostParams::default(), &ns).await;
    }
}
