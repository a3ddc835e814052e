//! `meta.k8s.io/v1` Table responses, which `kubectl get` asks for and prints as given: the
//! built-in columns for the kinds kubectl users look at (Services as `kubectl get svc` shows
//! them), a CRD's `additionalPrinterColumns` for custom kinds, `Name`/`Created At` otherwise.

use serde_json::{Value, json};

use super::meta::{age_seconds, human_duration};
use super::resources::ResourceType;

mod builtin;

pub(super) fn column(
    name: &str,
    type_: &str,
    format: &str,
    priority: i64,
    description: &str,
) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}

pub(super) fn age(object: &Value) -> Value {
    json!(human_duration(age_seconds(
        object["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default()
    )))
}

/// Evaluates the simple JSONPath CRDs use: `.a.b`, `.a[0]`, `.a[?(@.k=="v")].b`.
pub fn json_path<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = object;
    let mut rest = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            at = at.get(&after[..end])?;
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let inner = &after[..end];
            rest = &after[end + 1..];
            if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (field, value) = filter.split_once("==")?;
                let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
                at = at
                    .as_array()?
                    .iter()
                    .find(|item| match &item[field.trim()] {
                        Value::String(s) => s == value,
                        other => value.parse::<Value>().ok().as_ref() == Some(other),
                    })?;
            } else {
                at = at.get(inner.parse::<usize>().ok()?)?;
            }
        } else {
            return None;
        }
    }
    Some(at)
}

/// One cell of a custom column, as the CRD table convertor renders it.
fn custom_cell(type_: &str, value: Option<&Value>) -> Value {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match (type_, value) {
        ("string", Value::String(s)) => json!(s),
        ("string", other) => json!(other.to_string()),
        ("integer", Value::Number(n)) => json!(n.as_i64().or(n.as_f64().map(|f| f as i64))),
        ("number", Value::Number(n)) => json!(n),
        ("boolean", Value::Bool(b)) => json!(b),
        ("date", Value::String(s)) => json!(human_duration(age_seconds(s))),
        _ => Value::Null,
    }
}

/// Column definitions per kind: a CRD's printer columns, a built-in printer, or the default.
fn columns(rt: &ResourceType) -> Vec<Value> {
    let name = column(
        "Name",
        "string",
        "name",
        0,
        "Name must be unique within a namespace.",
    );
    if let Some(custom) = &rt.printer_columns {
        let mut cols = vec![name];
        if custom.is_empty() {
            cols.push(column("Age", "date", "", 0, "Custom resource definition column (in JSONPath format): .metadata.creationTimestamp"));
        }
        for c in custom {
            cols.push(column(
                &c.name,
                &c.type_,
                &c.format,
                c.priority,
                &c.description,
            ));
        }
        return cols;
    }
    builtin::columns(rt).unwrap_or_else(|| {
        vec![
            name,
            column("Created At", "date", "", 0, "CreationTimestamp is a timestamp representing the server time when this object was created."),
        ]
    })
}

fn cells(rt: &ResourceType, object: &Value) -> Vec<Value> {
    if let Some(custom) = &rt.printer_columns {
        let mut row = vec![json!(object["metadata"]["name"])];
        if custom.is_empty() {
            row.push(age(object));
        }
        for c in custom {
            row.push(custom_cell(&c.type_, json_path(object, &c.json_path)));
        }
        return row;
    }
    builtin::cells(rt, object).unwrap_or_else(|| {
        vec![
            json!(object["metadata"]["name"]),
            object["metadata"]["creationTimestamp"].clone(),
        ]
    })
}

/// A Table of `objects`; `include_object` is the request's `includeObject` (default Metadata).
pub fn table(
    rt: &ResourceType,
    objects: &[Value],
    resource_version: &Value,
    continue_token: &Value,
    include_object: &str,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let embedded = match include_object {
                "None" => Value::Null,
                "Object" => object.clone(),
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object["metadata"]}),
            };
            json!({"cells": cells(rt, object), "object": embedded})
        })
        .collect();
    let mut metadata = json!({"resourceVersion": resource_version});
    if !continue_token.is_null() {
        metadata["continue"] = continue_token.clone();
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": columns(rt), "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_load_balancer_and_node_ports_render_like_kubectl() {
        let svc = json!({"spec": {"type": "LoadBalancer", "clusterIP": "10.96.1.5", "clusterIPs": ["10.96.1.5"],
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}, "status": {"loadBalancer": {}}});
        assert_eq!(builtin::service_external_ip(&svc), "<pending>");
        assert_eq!(builtin::service_ports(&svc), "80:30080/TCP");
    }

    #[test]
    fn json_path_follows_fields_indices_and_filters() {
        let obj = json!({"status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        assert_eq!(
            json_path(&obj, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(&json!("True"))
        );
        assert_eq!(
            json_path(&obj, ".status.conditions[0].type"),
            Some(&json!("A"))
        );
        assert_eq!(
            custom_cell("string", Some(&json!(["a", "b"]))),
            json!("[\"a\",\"b\"]")
        );
    }
}
