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
use k8s_openapi::schemars::JsonSchema;
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

/// Something done with the Rust type of a built-in kind (decoding a body, describing its
/// schema), so that the kind-to-type table below exists once.
pub trait WithType {
    type Output;
    fn with<T>(self) -> Self::Output
    where
        T: DeserializeOwned + Serialize + JsonSchema;
}

/// Runs `action` with the type of the built-in kind `rt` names; `None` for other kinds.
pub fn with_type<A: WithType>(rt: &ResourceType, action: A) -> Option<A::Output> {
    use core::v1 as c;
    let output = match (rt.group.as_str(), rt.version.as_str(), rt.plural.as_str()) {
        ("", "v1", "namespaces") => action.with::<c::Namespace>(),
        ("", "v1", "nodes") => action.with::<c::Node>(),
        ("", "v1", "services") => action.with::<c::Service>(),
        ("", "v1", "pods") => action.with::<c::Pod>(),
        ("", "v1", "events") => action.with::<c::Event>(),
        ("", "v1", "endpoints") => action.with::<c::Endpoints>(),
        ("", "v1", "configmaps") => action.with::<c::ConfigMap>(),
        ("", "v1", "secrets") => action.with::<c::Secret>(),
        ("", "v1", "serviceaccounts") => action.with::<c::ServiceAccount>(),
        ("apps", "v1", "deployments") => action.with::<apps::v1::Deployment>(),
        ("apps", "v1", "daemonsets") => action.with::<apps::v1::DaemonSet>(),
        ("discovery.k8s.io", "v1", "endpointslices") => {
            action.with::<discovery::v1::EndpointSlice>()
        }
        ("coordination.k8s.io", "v1", "leases") => action.with::<coordination::v1::Lease>(),
        ("events.k8s.io", "v1", "events") => action.with::<events::v1::Event>(),
        ("rbac.authorization.k8s.io", "v1", "clusterroles") => {
            action.with::<rbac::v1::ClusterRole>()
        }
        ("rbac.authorization.k8s.io", "v1", "clusterrolebindings") => {
            action.with::<rbac::v1::ClusterRoleBinding>()
        }
        ("rbac.authorization.k8s.io", "v1", "roles") => action.with::<rbac::v1::Role>(),
        ("rbac.authorization.k8s.io", "v1", "rolebindings") => {
            action.with::<rbac::v1::RoleBinding>()
        }
        ("apiextensions.k8s.io", "v1", "customresourcedefinitions") => {
            action.with::<CustomResourceDefinition>()
        }
        _ => return None,
    };
    Some(output)
}

struct RoundTrip<'a>(&'a Value);

impl WithType for RoundTrip<'_> {
    type Output = Result<Decoded, TypeError>;
    fn with<T>(self) -> Self::Output
    where
        T: DeserializeOwned + Serialize + JsonSchema,
    {
        round_trip::<T>(self.0)
    }
}

/// Decodes `object` as the built-in kind `rt` names; `None` for kinds without a type here.
pub fn decode(rt: &ResourceType, object: &Value) -> Option<Result<Decoded, TypeError>> {
    with_type(rt, RoundTrip(object))
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
