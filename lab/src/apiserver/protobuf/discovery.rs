//! discovery.k8s.io/v1 EndpointSlices (what the EndpointSlice controller writes).

use k8s_pb::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
use serde_json::{Value, json};

use super::core::object_reference;
use super::json::Fields;

pub fn endpoint_slice(slice: &EndpointSlice) -> Value {
    Fields::object(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        slice.metadata.as_ref(),
    )
    .value(
        "addressType",
        json!(slice.address_type.as_deref().unwrap_or("")),
    )
    .value(
        "endpoints",
        Value::Array(slice.endpoints.iter().map(endpoint).collect()),
    )
    .list("ports", slice.ports.iter().map(endpoint_port).collect())
    .build()
}

fn endpoint(endpoint: &Endpoint) -> Value {
    // Conditions are pointers: `ready: false` is the point of a not-ready endpoint.
    let conditions = endpoint.conditions.as_ref().map_or_else(
        || json!({}),
        |c| {
            Fields::new()
                .opt_bool("ready", c.ready)
                .opt_bool("serving", c.serving)
                .opt_bool("terminating", c.terminating)
                .build()
        },
    );
    let hints = endpoint.hints.as_ref().map(|h| {
        let names = |names: Vec<&Option<String>>| -> Vec<Value> {
            names
                .into_iter()
                .map(|n| json!({"name": n.as_deref().unwrap_or("")}))
                .collect()
        };
        Fields::new()
            .list(
                "forZones",
                names(h.for_zones.iter().map(|z| &z.name).collect()),
            )
            .list(
                "forNodes",
                names(h.for_nodes.iter().map(|n| &n.name).collect()),
            )
            .build()
    });
    Fields::new()
        .value("addresses", json!(endpoint.addresses))
        .value("conditions", conditions)
        .opt_string("hostname", &endpoint.hostname)
        .opt_value(
            "targetRef",
            endpoint.target_ref.as_ref().map(object_reference),
        )
        .map("deprecatedTopology", &endpoint.deprecated_topology)
        .opt_string("nodeName", &endpoint.node_name)
        .opt_string("zone", &endpoint.zone)
        .opt_value("hints", hints)
        .build()
}

fn endpoint_port(port: &EndpointPort) -> Value {
    Fields::new()
        .opt_string("name", &port.name)
        .opt_string("protocol", &port.protocol)
        .opt_int("port", port.port)
        .opt_string("appProtocol", &port.app_protocol)
        .build()
}
