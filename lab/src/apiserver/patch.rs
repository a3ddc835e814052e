//! PATCH bodies: RFC 6902 JSON patch and RFC 7386 merge patch (both by the `json-patch` crate),
//! and strategic merge patch for built-in kinds, whose lists merge by key where the Go types
//! declare a `patchMergeKey` (`spec.ports` by port, containers by name, conditions by type,
//! finalizers as a set) and are replaced otherwise. Custom kinds answer 415 to strategic merge,
//! as upstream does.

use serde_json::{Map, Value};

use super::resources::ResourceType;
use super::status::ApiError;

/// How a list merges, shared with server-side apply.
#[derive(Clone, Debug, PartialEq)]
pub enum ListKind {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// Where list semantics come from: built-in knowledge or a CRD's structural schema. `path`
/// holds field names, with `[]` where it passes through a list element.
pub struct ListRules<'a> {
    pub builtin: bool,
    pub schema: Option<&'a Value>,
    /// Server-side apply keys some lists by more fields than strategic merge does.
    pub apply: bool,
}

impl ListRules<'_> {
    pub fn for_type(rt: &ResourceType, apply: bool) -> ListRules<'_> {
        ListRules {
            builtin: rt.printer_columns.is_none(),
            schema: rt.schema.as_ref(),
            apply,
        }
    }

    pub fn kind(&self, path: &[String]) -> ListKind {
        let last = path.last().map(String::as_str).unwrap_or_default();
        let first = path.first().map(String::as_str).unwrap_or_default();
        let keys = |k: &[&str]| ListKind::Map(k.iter().map(|s| s.to_string()).collect());
        // Metadata lists behave the same on every kind.
        if path.len() == 2 && first == "metadata" {
            return match last {
                "finalizers" => ListKind::Set,
                "ownerReferences" => keys(&["uid"]),
                _ => ListKind::Atomic,
            };
        }
        if !self.builtin {
            return self
                .schema
                .map(|s| schema_list_kind(s, path))
                .unwrap_or(ListKind::Atomic);
        }
        match last {
            "ports" if path.len() == 2 && first == "spec" => {
                if self.apply {
                    keys(&["port", "protocol"])
                } else {
                    keys(&["port"])
                }
            }
            "ports" if path.iter().any(|p| p.ends_with("ontainers")) => {
                if self.apply {
                    keys(&["containerPort", "protocol"])
                } else {
                    keys(&["containerPort"])
                }
            }
            "containers"
            | "initContainers"
            | "ephemeralContainers"
            | "volumes"
            | "env"
            | "imagePullSecrets" => keys(&["name"]),
            "volumeMounts" => keys(&["mountPath"]),
            "conditions" | "addresses" if first == "status" => keys(&["type"]),
            _ => ListKind::Atomic,
        }
    }
}

/// Follows `path` through a structural schema and reads `x-kubernetes-list-type`.
fn schema_list_kind(schema: &Value, path: &[String]) -> ListKind {
    let mut node = schema;
    for part in path {
        node = if part == "[]" {
            &node["items"]
        } else {
            &node["properties"][part.as_str()]
        };
        if node.is_null() {
            return ListKind::Atomic;
        }
    }
    match node["x-kubernetes-list-type"].as_str() {
        Some("set") => ListKind::Set,
        Some("map") => ListKind::Map(
            node["x-kubernetes-list-map-keys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str().map(String::from))
                .collect(),
        ),
        _ => ListKind::Atomic,
    }
}

pub const JSON_PATCH: &str = "application/json-patch+json";
pub const MERGE_PATCH: &str = "application/merge-patch+json";
pub const STRATEGIC_MERGE_PATCH: &str = "application/strategic-merge-patch+json";
pub const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// The API server's JSON patch library (evanphx/json-patch) passes a `test` of `null` against
/// a path that does not exist; RFC 6902 (and the json-patch crate) fail it. kube-runtime's
/// finalizer helper relies on the API server's reading when it adds the first finalizer, so such
/// tests are dropped before applying.
fn without_null_tests_of_absent_paths(operations: Value, current: &Value) -> Value {
    match operations {
        Value::Array(ops) => Value::Array(
            ops.into_iter()
                .filter(|op| {
                    let is_null_test =
                        op["op"] == "test" && op.get("value").is_some_and(Value::is_null);
                    let path = op["path"].as_str().unwrap_or_default();
                    !(is_null_test && current.pointer(path).is_none())
                })
                .collect(),
        ),
        other => other,
    }
}

/// Applies a non-apply PATCH body to the current object.
pub fn patch_object(
    content_type: &str,
    rt: &ResourceType,
    current: &Value,
    body: &[u8],
) -> Result<Value, ApiError> {
    let decode = |body: &[u8]| -> Result<Value, ApiError> {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
    };
    let mut patched = current.clone();
    match content_type {
        JSON_PATCH => {
            let operations = without_null_tests_of_absent_paths(decode(body)?, current);
            let patch: json_patch::Patch = serde_json::from_value(operations)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::patch(&mut patched, &patch).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
        }
        MERGE_PATCH => json_patch::merge(&mut patched, &decode(body)?),
        STRATEGIC_MERGE_PATCH if rt.strategic_merge && rt.printer_columns.is_none() => {
            let patch = decode(body)?;
            strategic_merge(
                &mut patched,
                &patch,
                &ListRules::for_type(rt, false),
                &mut Vec::new(),
            );
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    }
    Ok(patched)
}

fn without_directives(patch: &Map<String, Value>) -> Map<String, Value> {
    patch
        .iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Merges `patch` into `target` with strategic merge semantics.
pub fn strategic_merge(
    target: &mut Value,
    patch: &Value,
    rules: &ListRules,
    path: &mut Vec<String>,
) {
    let Some(patch_map) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = Value::Object(without_directives(patch_map));
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target_map = target.as_object_mut().expect("made an object above");
    for (key, value) in patch_map {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(remove)) = (
                target_map.get_mut(field).and_then(Value::as_array_mut),
                value.as_array(),
            ) {
                list.retain(|item| !remove.contains(item));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            target_map.remove(key);
            continue;
        }
        path.push(key.clone());
        let slot = target_map.entry(key.clone()).or_insert(Value::Null);
        match value {
            Value::Object(_) => {
                strategic_merge(slot, value, rules, path);
                if slot.is_null() {
                    target_map.remove(key);
                }
            }
            Value::Array(items) => merge_list(slot, items, rules, path),
            _ => *slot = value.clone(),
        }
        path.pop();
    }
    if let Some(retain) = patch_map.get("$retainKeys").and_then(Value::as_array) {
        target_map.retain(|k, _| retain.iter().any(|r| r.as_str() == Some(k)));
    }
}

/// A list item's value for a merge key; an unset `protocol` is TCP, its default on every kind
/// that keys by it, so a config that leaves it out still finds the stored entry.
pub fn key_value(item: &Value, key: &str) -> Value {
    match &item[key] {
        Value::Null if key == "protocol" => Value::String("TCP".into()),
        other => other.clone(),
    }
}

fn key_matches(a: &Value, b: &Value, keys: &[String]) -> bool {
    keys.iter().all(|k| key_value(a, k) == key_value(b, k))
}

fn merge_list(slot: &mut Value, items: &[Value], rules: &ListRules, path: &mut Vec<String>) {
    let kind = rules.kind(path);
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *slot = Value::Array(
            items
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .cloned()
                .collect(),
        );
        return;
    }
    match kind {
        ListKind::Atomic => *slot = Value::Array(items.to_vec()),
        ListKind::Set => {
            let mut list = slot.as_array().cloned().unwrap_or_default();
            for item in items {
                if !list.contains(item) {
                    list.push(item.clone());
                }
            }
            *slot = Value::Array(list);
        }
        ListKind::Map(keys) => {
            let mut list = slot.as_array().cloned().unwrap_or_default();
            path.push("[]".into());
            for item in items {
                let position = list
                    .iter()
                    .position(|existing| key_matches(existing, item, &keys));
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (position, delete) {
                    (Some(i), true) => {
                        list.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => strategic_merge(&mut list[i], item, rules, path),
                    (None, false) => {
                        let mut fresh = Value::Object(Map::new());
                        strategic_merge(&mut fresh, item, rules, path);
                        list.push(fresh);
                    }
                }
            }
            path.pop();
            *slot = Value::Array(list);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> ListRules<'static> {
        ListRules {
            builtin: true,
            schema: None,
            apply: false,
        }
    }

    #[test]
    fn strategic_merge_merges_service_ports_by_port_and_finalizers_as_a_set() {
        let mut svc = json!({
            "metadata": {"finalizers": ["a"]},
            "spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}
        });
        let patch = json!({
            "metadata": {"finalizers": ["b"]},
            "spec": {"ports": [{"port": 443, "name": "tls"}, {"port": 53, "$patch": "delete"}]}
        });
        strategic_merge(&mut svc, &patch, &rules(), &mut Vec::new());
        assert_eq!(svc["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(
            svc["spec"]["ports"],
            json!([{"port": 80, "name": "http"}, {"port": 443, "name": "tls"}])
        );
    }

    #[test]
    fn strategic_merge_honours_delete_directives_and_null() {
        let mut obj =
            json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}}});
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "labels": {"x": null}}});
        strategic_merge(&mut obj, &patch, &rules(), &mut Vec::new());
        assert_eq!(
            obj,
            json!({"metadata": {"finalizers": ["b"], "labels": {"y": "2"}}})
        );
    }

    #[test]
    fn custom_schema_list_map_keys_decide_list_merging() {
        let schema = json!({"properties": {"spec": {"properties": {"items": {
            "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"]}}}}});
        let rules = ListRules {
            builtin: false,
            schema: Some(&schema),
            apply: true,
        };
        assert_eq!(
            rules.kind(&["spec".into(), "items".into()]),
            ListKind::Map(vec!["id".into()])
        );
        assert_eq!(
            rules.kind(&["spec".into(), "other".into()]),
            ListKind::Atomic
        );
    }
}
