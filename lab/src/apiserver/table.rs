//! `meta.k8s.io/v1` Table responses, which `kubectl get` asks for and prints as given: the
//! built-in columns for the kinds kubectl users look at (Services as `kubectl get svc` shows
//! them), a CRD's `additionalPrinterColumns` for custom kinds, `Name`/`Created At` otherwise.

use serde_json::{Value, json};

use super::meta::{age_seconds, human_duration};
use super::resources::ResourceType;

fn column(name: &str, type_: &str, format: &str, priority: i64, description: &str) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}

fn age(object: &Value) -> Value {
    json!(human_duration(age_seconds(object["metadata"]["creationTimestamp"].as_str().unwrap_or_default())))
}

fn joined(values: &Value, empty: &str) -> String {
    let items: Vec<String> = values.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
    if items.is_empty() { empty.to_string() } else { items.join(",") }
}

/// kubectl's `getServiceExternalIP`.
fn service_external_ip(svc: &Value) -> String {
    let spec = &svc["spec"];
    let external = joined(&spec["externalIPs"], "");
    match spec["type"].as_str().unwrap_or("ClusterIP") {
        "ClusterIP" | "NodePort" => if external.is_empty() { "<none>".into() } else { external },
        "LoadBalancer" => {
            let mut ips: Vec<String> = svc["status"]["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["ip"].as_str().or(i["hostname"].as_str()).map(String::from))
                .collect();
            if !external.is_empty() {
                ips.push(external);
            }
            if ips.is_empty() { "<pending>".into() } else { ips.join(",") }
        }
        "ExternalName" => spec["externalName"].as_str().unwrap_or_default().to_string(),
        _ => "<unknown>".into(),
    }
}

fn service_ports(svc: &Value) -> String {
    let ports: Vec<String> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_u64() {
                Some(node_port) => format!("{}:{node_port}/{protocol}", p["port"]),
                None => format!("{}/{protocol}", p["port"]),
            }
        })
        .collect();
    if ports.is_empty() { "<none>".into() } else { ports.join(",") }
}

fn selector(map: &Value) -> String {
    let pairs: Vec<String> = map.as_object().into_iter().flatten().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect();
    if pairs.is_empty() { "<none>".into() } else { pairs.join(",") }
}

fn node_status(node: &Value) -> String {
    let ready = node["status"]["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == "Ready");
    let mut status = match ready.and_then(|c| c["status"].as_str()) {
        Some("True") => "Ready".to_string(),
        Some("False") => "NotReady".to_string(),
        _ => "Unknown".to_string(),
    };
    if node["spec"]["unschedulable"] == true {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn node_roles(node: &Value) -> String {
    let roles: Vec<&str> = node["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
        .collect();
    if roles.is_empty() { "<none>".into() } else { roles.join(",") }
}

/// Evaluates the simple JSONPath CRDs use: `.a.b`, `.a[0]`, `.a[?(@.k=="v")].b`.
pub fn json_path<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = object;
    let mut rest = path.trim().trim_start_matches('{').trim_end_matches('}').trim_start_matches('$');
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
                at = at.as_array()?.iter().find(|item| match &item[field.trim()] {
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
    let Some(value) = value.filter(|v| !v.is_null()) else { return Value::Null };
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

/// Column definitions and the cells of one row, per kind.
fn columns(rt: &ResourceType) -> Vec<Value> {
    let name = column("Name", "string", "name", 0, "Name must be unique within a namespace.");
    let mut cols = vec![name];
    if let Some(custom) = &rt.printer_columns {
        if custom.is_empty() {
            cols.push(column("Age", "date", "", 0, "Custom resource definition column (in JSONPath format): .metadata.creationTimestamp"));
        }
        for c in custom {
            cols.push(column(&c.name, &c.type_, &c.format, c.priority, &c.description));
        }
        return cols;
    }
    let s = |n: &str, p: i64| column(n, "string", "", p, "");
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "services") => cols.extend([s("Type", 0), s("Cluster-IP", 0), s("External-IP", 0), s("Port(s)", 0), s("Age", 0), s("Selector", 1)]),
        ("", "nodes") => cols.extend([s("Status", 0), s("Roles", 0), s("Age", 0), s("Version", 0)]),
        ("", "namespaces") => cols.extend([s("Status", 0), s("Age", 0)]),
        ("", "pods") => cols.extend([s("Ready", 0), s("Status", 0), column("Restarts", "string", "", 0, ""), s("Age", 0), s("IP", 1), s("Node", 1)]),
        ("coordination.k8s.io", "leases") => cols.extend([s("Holder", 0), s("Age", 0)]),
        ("discovery.k8s.io", "endpointslices") => cols.extend([s("AddressType", 0), s("Ports", 0), s("Endpoints", 0), s("Age", 0)]),
        _ => cols.push(column("Created At", "date", "", 0, "CreationTimestamp is a timestamp representing the server time when this object was created.")),
    }
    cols
}

fn cells(rt: &ResourceType, object: &Value) -> Vec<Value> {
    let name = json!(object["metadata"]["name"]);
    let mut row = vec![name];
    if let Some(custom) = &rt.printer_columns {
        if custom.is_empty() {
            row.push(age(object));
        }
        for c in custom {
            row.push(custom_cell(&c.type_, json_path(object, &c.json_path)));
        }
        return row;
    }
    let spec = &object["spec"];
    let status = &object["status"];
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "services") => row.extend([
            json!(spec["type"].as_str().unwrap_or("ClusterIP")),
            json!(joined(&spec["clusterIPs"], spec["clusterIP"].as_str().filter(|s| !s.is_empty()).unwrap_or("<none>"))),
            json!(service_external_ip(object)),
            json!(service_ports(object)),
            age(object),
            json!(selector(&spec["selector"])),
        ]),
        ("", "nodes") => row.extend([
            json!(node_status(object)),
            json!(node_roles(object)),
            age(object),
            json!(status["nodeInfo"]["kubeletVersion"].as_str().unwrap_or_default()),
        ]),
        ("", "namespaces") => row.extend([json!(status["phase"].as_str().unwrap_or_default()), age(object)]),
        ("", "pods") => {
            let total = spec["containers"].as_array().map_or(0, Vec::len);
            let ready = status["containerStatuses"].as_array().into_iter().flatten().filter(|c| c["ready"] == true).count();
            row.extend([
                json!(format!("{ready}/{total}")),
                json!(status["phase"].as_str().unwrap_or("Pending")),
                json!("0"),
                age(object),
                json!(status["podIP"].as_str().unwrap_or("<none>")),
                json!(spec["nodeName"].as_str().unwrap_or("<none>")),
            ]);
        }
        ("coordination.k8s.io", "leases") => row.extend([json!(spec["holderIdentity"].as_str().unwrap_or_default()), age(object)]),
        ("discovery.k8s.io", "endpointslices") => {
            let ports: Vec<String> = object["ports"].as_array().into_iter().flatten().map(|p| p["port"].to_string()).collect();
            let endpoints: Vec<String> = object["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
                .filter_map(|a| a.as_str().map(String::from))
                .collect();
            row.extend([
                json!(object["addressType"].as_str().unwrap_or_default()),
                json!(if ports.is_empty() { "<unset>".to_string() } else { ports.join(",") }),
                json!(if endpoints.is_empty() { "<unset>".to_string() } else { endpoints.join(",") }),
                age(object),
            ]);
        }
        _ => row.push(object["metadata"]["creationTimestamp"].clone()),
    }
    row
}

/// A Table of `objects`; `include_object` is the request's `includeObject` (default Metadata).
pub fn table(rt: &ResourceType, objects: &[Value], resource_version: &Value, continue_token: &Value, include_object: &str) -> Value {
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
        assert_eq!(service_external_ip(&svc), "<pending>");
        assert_eq!(service_ports(&svc), "80:30080/TCP");
    }

    #[test]
    fn json_path_follows_fields_indices_and_filters() {
        let obj = json!({"status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        assert_eq!(json_path(&obj, ".status.conditions[?(@.type==\"Ready\")].status"), Some(&json!("True")));
        assert_eq!(json_path(&obj, ".status.conditions[0].type"), Some(&json!("A")));
        assert_eq!(custom_cell("string", Some(&json!(["a", "b"]))), json!("[\"a\",\"b\"]"));
    }
}
