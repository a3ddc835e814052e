//! The printers of built-in kinds, column for column as kube-apiserver's
//! (`pkg/printers/internalversion/printers.go`), for the kinds a Portico user lists.

use serde_json::{Value, json};

use super::super::meta::{age_seconds, human_duration};
use super::super::resources::ResourceType;
use super::{age, column};

fn joined(values: &Value, empty: &str) -> String {
    let items: Vec<String> = values
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    if items.is_empty() {
        empty.to_string()
    } else {
        items.join(",")
    }
}

/// kubectl's `getServiceExternalIP`.
pub(super) fn service_external_ip(svc: &Value) -> String {
    let spec = &svc["spec"];
    let external = joined(&spec["externalIPs"], "");
    match spec["type"].as_str().unwrap_or("ClusterIP") {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".into()
            } else {
                external
            }
        }
        "LoadBalancer" => {
            let mut ips: Vec<String> = svc["status"]["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    i["ip"]
                        .as_str()
                        .or(i["hostname"].as_str())
                        .map(String::from)
                })
                .collect();
            if !external.is_empty() {
                ips.push(external);
            }
            if ips.is_empty() {
                "<pending>".into()
            } else {
                ips.join(",")
            }
        }
        "ExternalName" => spec["externalName"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        _ => "<unknown>".into(),
    }
}

pub(super) fn service_ports(svc: &Value) -> String {
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
    if ports.is_empty() {
        "<none>".into()
    } else {
        ports.join(",")
    }
}

fn selector(map: &Value) -> String {
    let pairs: Vec<String> = map
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

fn node_status(node: &Value) -> String {
    let ready = node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
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
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

/// `kubectl get events`: the only built-in table that does not start with the name.
fn event_columns() -> Vec<Value> {
    let s = |n: &str, p: i64| column(n, "string", "", p, "");
    vec![
        s("Last Seen", 0),
        s("Type", 0),
        s("Reason", 0),
        s("Object", 0),
        s("Subobject", 1),
        s("Source", 1),
        s("Message", 0),
        s("First Seen", 1),
        column("Count", "integer", "", 1, ""),
        column("Name", "string", "name", 1, ""),
    ]
}

fn event_cells(event: &Value) -> Vec<Value> {
    let when = |t: &Value| {
        t.as_str()
            .filter(|t| !t.is_empty())
            .map(|t| human_duration(age_seconds(t)))
    };
    let last_seen = when(&event["series"]["lastObservedTime"])
        .or_else(|| when(&event["lastTimestamp"]))
        .or_else(|| when(&event["eventTime"]))
        .unwrap_or_else(|| "<unknown>".into());
    let first_seen = when(&event["firstTimestamp"])
        .or_else(|| when(&event["eventTime"]))
        .unwrap_or_else(|| "<unknown>".into());
    let involved = &event["involvedObject"];
    let object = format!(
        "{}/{}",
        involved["kind"].as_str().unwrap_or_default().to_lowercase(),
        involved["name"].as_str().unwrap_or_default()
    );
    let source = event["source"]["component"]
        .as_str()
        .or(event["reportingComponent"].as_str())
        .unwrap_or_default();
    let count = event["series"]["count"]
        .as_i64()
        .or(event["count"].as_i64())
        .unwrap_or(1);
    vec![
        json!(last_seen),
        event["type"].clone(),
        event["reason"].clone(),
        json!(object),
        json!(involved["fieldPath"].as_str().unwrap_or_default()),
        json!(source),
        json!(event["message"].as_str().unwrap_or_default().trim()),
        json!(first_seen),
        json!(count),
        event["metadata"]["name"].clone(),
    ]
}

fn is_event(rt: &ResourceType) -> bool {
    rt.is("", "events") || rt.is("events.k8s.io", "events")
}

fn name_column() -> Value {
    column(
        "Name",
        "string",
        "name",
        0,
        "Name must be unique within a namespace.",
    )
}

fn count(value: &Value) -> Value {
    json!(value.as_i64().unwrap_or(0))
}

/// The column definitions of a built-in kind, None for kinds printed as `Name`, `Created At`.
pub fn columns(rt: &ResourceType) -> Option<Vec<Value>> {
    if is_event(rt) {
        return Some(event_columns());
    }
    let s = |n: &str, p: i64| column(n, "string", "", p, "");
    let i = |n: &str, p: i64| column(n, "integer", "", p, "");
    let rest = match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "services") => vec![
            s("Type", 0),
            s("Cluster-IP", 0),
            s("External-IP", 0),
            s("Port(s)", 0),
            s("Age", 0),
            s("Selector", 1),
        ],
        ("", "nodes") => vec![s("Status", 0), s("Roles", 0), s("Age", 0), s("Version", 0)],
        ("", "namespaces") => vec![s("Status", 0), s("Age", 0)],
        ("", "pods") => vec![
            s("Ready", 0),
            s("Status", 0),
            s("Restarts", 0),
            s("Age", 0),
            s("IP", 1),
            s("Node", 1),
        ],
        ("", "configmaps") => vec![i("Data", 0), s("Age", 0)],
        ("", "secrets") => vec![s("Type", 0), i("Data", 0), s("Age", 0)],
        ("", "serviceaccounts") => vec![i("Secrets", 0), s("Age", 0)],
        ("", "endpoints") => vec![s("Endpoints", 0), s("Age", 0)],
        ("apps", "deployments") => vec![
            s("Ready", 0),
            i("Up-to-date", 0),
            i("Available", 0),
            s("Age", 0),
        ],
        ("apps", "daemonsets") => vec![
            i("Desired", 0),
            i("Current", 0),
            i("Ready", 0),
            i("Up-to-date", 0),
            i("Available", 0),
            s("Node Selector", 0),
            s("Age", 0),
        ],
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            vec![s("Role", 0), s("Age", 0)]
        }
        ("coordination.k8s.io", "leases") => vec![s("Holder", 0), s("Age", 0)],
        ("discovery.k8s.io", "endpointslices") => vec![
            s("AddressType", 0),
            s("Ports", 0),
            s("Endpoints", 0),
            s("Age", 0),
        ],
        _ => return None,
    };
    Some(std::iter::once(name_column()).chain(rest).collect())
}

/// One row of a built-in kind's printer, None for kinds printed as `Name`, `Created At`.
pub fn cells(rt: &ResourceType, object: &Value) -> Option<Vec<Value>> {
    if is_event(rt) {
        // One printer for both Event APIs, reading the core shape, as upstream.
        return Some(event_cells(&super::super::conversion::to_storage(
            rt, object,
        )));
    }
    let mut row = vec![json!(object["metadata"]["name"])];
    let spec = &object["spec"];
    let status = &object["status"];
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "services") => row.extend([
            json!(spec["type"].as_str().unwrap_or("ClusterIP")),
            json!(joined(
                &spec["clusterIPs"],
                spec["clusterIP"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("<none>")
            )),
            json!(service_external_ip(object)),
            json!(service_ports(object)),
            age(object),
            json!(selector(&spec["selector"])),
        ]),
        ("", "nodes") => row.extend([
            json!(node_status(object)),
            json!(node_roles(object)),
            age(object),
            json!(
                status["nodeInfo"]["kubeletVersion"]
                    .as_str()
                    .unwrap_or_default()
            ),
        ]),
        ("", "namespaces") => row.extend([
            json!(status["phase"].as_str().unwrap_or_default()),
            age(object),
        ]),
        ("", "pods") => {
            let total = spec["containers"].as_array().map_or(0, Vec::len);
            let ready = status["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["ready"] == true)
                .count();
            row.extend([
                json!(format!("{ready}/{total}")),
                json!(status["phase"].as_str().unwrap_or("Pending")),
                json!("0"),
                age(object),
                json!(status["podIP"].as_str().unwrap_or("<none>")),
                json!(spec["nodeName"].as_str().unwrap_or("<none>")),
            ]);
        }
        ("coordination.k8s.io", "leases") => row.extend([
            json!(spec["holderIdentity"].as_str().unwrap_or_default()),
            age(object),
        ]),
        ("discovery.k8s.io", "endpointslices") => {
            let ports: Vec<String> = object["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p["port"].to_string())
                .collect();
            let endpoints: Vec<String> = object["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
                .filter_map(|a| a.as_str().map(String::from))
                .collect();
            row.extend([
                json!(object["addressType"].as_str().unwrap_or_default()),
                json!(if ports.is_empty() {
                    "<unset>".to_string()
                } else {
                    ports.join(",")
                }),
                json!(if endpoints.is_empty() {
                    "<unset>".to_string()
                } else {
                    endpoints.join(",")
                }),
                age(object),
            ]);
        }
        ("", "configmaps") => row.extend([
            json!(
                object["data"].as_object().map_or(0, |d| d.len())
                    + object["binaryData"].as_object().map_or(0, |d| d.len())
            ),
            age(object),
        ]),
        ("", "secrets") => row.extend([
            json!(object["type"].as_str().unwrap_or("Opaque")),
            json!(object["data"].as_object().map_or(0, |d| d.len())),
            age(object),
        ]),
        ("", "serviceaccounts") => row.extend([
            json!(object["secrets"].as_array().map_or(0, Vec::len)),
            age(object),
        ]),
        ("", "endpoints") => {
            let addresses: Vec<String> = object["subsets"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| {
                    let ports: Vec<i64> = s["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p["port"].as_i64())
                        .collect();
                    let ips: Vec<String> = s["addresses"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a["ip"].as_str().map(String::from))
                        .collect();
                    ips.into_iter().flat_map(move |ip| {
                        ports.clone().into_iter().map(move |p| format!("{ip}:{p}"))
                    })
                })
                .collect();
            row.extend([
                json!(if addresses.is_empty() {
                    "<none>".to_string()
                } else {
                    addresses.join(",")
                }),
                age(object),
            ]);
        }
        ("apps", "deployments") => row.extend([
            json!(format!(
                "{}/{}",
                status["readyReplicas"].as_i64().unwrap_or(0),
                spec["replicas"].as_i64().unwrap_or(1)
            )),
            count(&status["updatedReplicas"]),
            count(&status["availableReplicas"]),
            age(object),
        ]),
        ("apps", "daemonsets") => row.extend([
            count(&status["desiredNumberScheduled"]),
            count(&status["currentNumberScheduled"]),
            count(&status["numberReady"]),
            count(&status["updatedNumberScheduled"]),
            count(&status["numberAvailable"]),
            json!(selector(&spec["template"]["spec"]["nodeSelector"])),
            age(object),
        ]),
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => row.extend([
            json!(format!(
                "{}/{}",
                object["roleRef"]["kind"].as_str().unwrap_or_default(),
                object["roleRef"]["name"].as_str().unwrap_or_default()
            )),
            age(object),
        ]),
        _ => return None,
    }
    Some(row)
}
