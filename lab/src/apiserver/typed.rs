//! Built-in kinds decoded through their typed form, as the real API server decodes every write
//! through its Go types: a field of the wrong type is refused with its path, a field the type
//! does not declare is dropped (or refused under `fieldValidation=Strict`), and what is stored
//! is the type's own serialization (timestamps in RFC 3339 UTC, as `metav1.Time` writes them).
//!
//! ```text
//!   body ──▶ nulls dropped ──▶ k8s-openapi type (serde_path_to_error: the failing field)
//!                                   │
//!                                   ▼
//!            serialized again ──▶ compared with the body: keys it lost were unknown
//! ```
//! Custom kinds have no type here: their CRD schema prunes and validates them (`crd.rs`).

use k8s_openapi::api::{apps, coordination, core, discovery, events, rbac};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::resources::ResourceType;

/// A write as its type reads it.
#[derive(Debug, PartialEq)]
pub struct Decoded {
    /// The type's serialization of the body: unknown fields gone, values normalized.
    pub object: Value,
    /// The fields the type does not declare, as `unknown field "spec.x"` names them.
    pub unknown: Vec<String>,
}

/// A value the type cannot hold.
#[derive(Debug, PartialEq)]
pub struct TypeError {
    /// `spec.ports[0].port`.
    pub field: String,
    pub message: String,
}

/// Decodes `object` as the built-in kind `rt` names; `None` for kinds without a type here.
pub fn decode(rt: &ResourceType, object: &Value) -> Option<Result<Decoded, TypeError>> {
    use core::v1 as c;
    let decoded = match (rt.group.as_str(), rt.version.as_str(), rt.plural.as_str()) {
        ("", "v1", "namespaces") => round_trip::<c::Namespace>(object),
        ("", "v1", "nodes") => round_trip::<c::Node>(object),
        ("", "v1", "services") => round_trip::<c::Service>(object),
        ("", "v1", "pods") => round_trip::<c::Pod>(object),
        ("", "v1", "events") => round_trip::<c::Event>(object),
        ("", "v1", "endpoints") => round_trip::<c::Endpoints>(object),
        ("", "v1", "configmaps") => round_trip::<c::ConfigMap>(object),
        ("", "v1", "secrets") => round_trip::<c::Secret>(object),
        ("", "v1", "serviceaccounts") => round_trip::<c::ServiceAccount>(object),
        ("apps", "v1", "deployments") => round_trip::<apps::v1::Deployment>(object),
        ("apps", "v1", "daemonsets") => round_trip::<apps::v1::DaemonSet>(object),
        ("discovery.k8s.io", "v1", "endpointslices") => {
            round_trip::<discovery::v1::EndpointSlice>(object)
        }
        ("coordination.k8s.io", "v1", "leases") => round_trip::<coordination::v1::Lease>(object),
        ("events.k8s.io", "v1", "events") => round_trip::<events::v1::Event>(object),
        ("rbac.authorization.k8s.io", "v1", "clusterroles") => {
            round_trip::<rbac::v1::ClusterRole>(object)
        }
        ("rbac.authorization.k8s.io", "v1", "clusterrolebindings") => {
            round_trip::<rbac::v1::ClusterRoleBinding>(object)
        }
        ("rbac.authorization.k8s.io", "v1", "roles") => round_trip::<rbac::v1::Role>(object),
        ("rbac.authorization.k8s.io", "v1", "rolebindings") => {
            round_trip::<rbac::v1::RoleBinding>(object)
        }
        ("apiextensions.k8s.io", "v1", "customresourcedefinitions") => {
            round_trip::<CustomResourceDefinition>(object)
        }
        _ => return None,
    };
    Some(decoded)
}

/// A partial object (a server-side apply configuration) without the fields its type does not
/// declare, and their paths. Values are kept as written: the configuration must claim exactly
/// the fields it names, not the ones the type fills in with defaults.
pub fn known_fields(rt: &ResourceType, config: &Value) -> Option<Result<Decoded, TypeError>> {
    let decoded = decode(rt, config)?;
    Some(decoded.map(|typed| {
        let mut object = config.clone();
        let mut unknown = Vec::new();
        retain_known(&mut object, &typed.object, "", &mut unknown);
        Decoded { object, unknown }
    }))
}

fn round_trip<T: DeserializeOwned + Serialize>(input: &Value) -> Result<Decoded, TypeError> {
    // Go's decoder leaves a field at its zero value for `null`; the types here take `null`
    // only where the field is optional, so nulls are dropped first.
    let input = without_nulls(input);
    let typed: T = serde_path_to_error::deserialize(&input).map_err(|e| TypeError {
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    let object = serde_json::to_value(&typed).map_err(|e| TypeError {
        field: String::new(),
        message: e.to_string(),
    })?;
    let mut object = object;
    unset_zero_times(&input, &mut object);
    let mut unknown = Vec::new();
    let mut kept = input;
    retain_known(&mut kept, &object, "", &mut unknown);
    Ok(Decoded { object, unknown })
}

/// The types fill a required timestamp the body left out with the Unix epoch; Go leaves it at
/// its zero value, which serializes as `null` and which validation then reports as required.
fn unset_zero_times(input: &Value, typed: &mut Value) {
    const EPOCHS: &[&str] = &["1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000000Z"];
    match (input, typed) {
        (Value::Object(given), Value::Object(fields)) => {
            for (key, value) in fields.iter_mut() {
                match given.get(key) {
                    Some(given) => unset_zero_times(given, value),
                    None if value.as_str().is_some_and(|v| EPOCHS.contains(&v)) => {
                        *value = Value::Null
                    }
                    None => {}
                }
            }
        }
        (Value::Array(given), Value::Array(items)) => {
            for (given, item) in given.iter().zip(items) {
                unset_zero_times(given, item);
            }
        }
        _ => {}
    }
}

fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Removes from `input` every key its typed serialization `typed` lost, recording its path.
fn retain_known(input: &mut Value, typed: &Value, path: &str, unknown: &mut Vec<String>) {
    match (input, typed) {
        (Value::Object(fields), Value::Object(known)) => {
            fields.retain(|key, value| {
                let field = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match known.get(key) {
                    Some(typed) => {
                        retain_known(value, typed, &field, unknown);
                        true
                    }
                    None if value.is_null() => true,
                    None => {
                        unknown.push(field);
                        false
                    }
                }
            });
        }
        (Value::Array(items), Value::Array(known)) => {
            for (i, (item, typed)) in items.iter_mut().zip(known).enumerate() {
                retain_known(item, typed, &format!("{path}[{i}]"), unknown);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;

/// Fields the Go types always serialize (no `omitempty`, or a struct, which `omitempty` never
/// omits) and the types here leave out when unset: clients sort and print by them
/// (`kubectl get events --sort-by=.lastTimestamp` needs every item to have the field). Added
/// to what is stored; decoding drops them again.
pub fn add_go_zero_fields(rt: &ResourceType, object: &mut Value) {
    fn fill(object: &mut Value, field: &str, zero: Value) {
        if let Some(map) = object.as_object_mut() {
            map.entry(field).or_insert(zero);
        }
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "events") => {
            for field in ["firstTimestamp", "lastTimestamp", "eventTime"] {
                fill(object, field, Value::Null);
            }
            for field in ["reportingComponent", "reportingInstance"] {
                fill(object, field, Value::String(String::new()));
            }
            for field in ["involvedObject", "source"] {
                fill(object, field, Value::Object(Map::new()));
            }
        }
        ("coordination.k8s.io", "leases") => fill(object, "spec", Value::Object(Map::new())),
        ("", "pods") | ("", "namespaces") | ("apps", _) => {
            fill(object, "spec", Value::Object(Map::new()));
            fill(object, "status", Value::Object(Map::new()));
        }
        ("", "nodes") => {
            fill(object, "spec", Value::Object(Map::new()));
            fill(object, "status", Value::Object(Map::new()));
            let status = &mut object["status"];
            fill(
                status,
                "daemonEndpoints",
                serde_json::json!({"kubeletEndpoint": {"Port": 0}}),
            );
            fill(status, "nodeInfo", Value::Object(Map::new()));
            for field in [
                "machineID",
                "systemUUID",
                "bootID",
                "kernelVersion",
                "osImage",
                "containerRuntimeVersion",
                "kubeletVersion",
                "kubeProxyVersion",
                "operatingSystem",
                "architecture",
            ] {
                fill(&mut status["nodeInfo"], field, Value::String(String::new()));
            }
        }
        _ => {}
    }
}
