//! The defaults a Pod gets from the API server (`SetDefaults_PodSpec`, `SetDefaults_Container`,
//! the Pod strategy's initial status), so that clients reading a Pod find what a cluster would
//! show: a restart and DNS policy, protocols on ports, a pull policy, and a `Pending` phase with
//! its QoS class until a kubelet reports otherwise. Pure: JSON in, JSON out.

use serde_json::{Map, Value, json};

fn entry(map: &mut Map<String, Value>, field: &str, default: Value) {
    map.entry(field).or_insert(default);
}

/// Fills in every default the Pod does not set, at create and at every update.
pub fn apply_defaults(pod: &mut Value) {
    if !pod["spec"].is_object() {
        pod["spec"] = json!({});
    }
    if let Some(spec) = pod["spec"].as_object_mut() {
        entry(spec, "restartPolicy", json!("Always"));
        entry(spec, "dnsPolicy", json!("ClusterFirst"));
        entry(spec, "terminationGracePeriodSeconds", json!(30));
        entry(spec, "schedulerName", json!("default-scheduler"));
        entry(spec, "securityContext", json!({}));
        entry(spec, "enableServiceLinks", json!(true));
        entry(spec, "priority", json!(0));
        entry(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
        for list in ["initContainers", "containers"] {
            for container in spec
                .get_mut(list)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object_mut)
            {
                container_defaults(container);
            }
        }
    }
    if !pod["status"].is_object() {
        pod["status"] = json!({});
    }
    let qos = qos_class(&pod["spec"]);
    if let Some(status) = pod["status"].as_object_mut() {
        entry(status, "phase", json!("Pending"));
        entry(status, "qosClass", json!(qos));
    }
}

fn container_defaults(container: &mut Map<String, Value>) {
    entry(
        container,
        "terminationMessagePath",
        json!("/dev/termination-log"),
    );
    entry(container, "terminationMessagePolicy", json!("File"));
    entry(container, "resources", json!({}));
    let image = container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // `:latest` or no tag pulls every time; a pinned tag or digest only when missing.
    let last = image.rsplit('/').next().unwrap_or_default();
    let pull =
        if image.contains('@') || last.split_once(':').is_some_and(|(_, tag)| tag != "latest") {
            "IfNotPresent"
        } else {
            "Always"
        };
    entry(container, "imagePullPolicy", json!(pull));
    for port in container
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        entry(port, "protocol", json!("TCP"));
    }
}

/// `qos.GetPodQOS`, reduced to CPU and memory: no requests or limits anywhere is BestEffort,
/// limits equal to requests for both in every container is Guaranteed, anything else Burstable.
fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|list| spec[*list].as_array().into_iter().flatten())
        .collect();
    let resources = |c: &Value, kind: &str, name: &str| c["resources"][kind][name].clone();
    let any = containers.iter().any(|c| {
        ["requests", "limits"].iter().any(|kind| {
            c["resources"][*kind]
                .as_object()
                .is_some_and(|m| !m.is_empty())
        })
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|name| {
            let limit = resources(c, "limits", name);
            let request = resources(c, "requests", name);
            !limit.is_null() && (request.is_null() || request == limit)
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_pod_gets_the_api_servers_defaults_and_a_pending_status() {
        let mut pod = json!({"spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]},
            {"name": "side", "image": "registry.local:5000/side:1.2"}]}});
        apply_defaults(&mut pod);
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["dnsPolicy"], "ClusterFirst");
        let web = &pod["spec"]["containers"][0];
        assert_eq!(web["ports"][0]["protocol"], "TCP");
        assert_eq!(web["imagePullPolicy"], "Always");
        assert_eq!(
            pod["spec"]["containers"][1]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(
            pod["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
    }

    #[test]
    fn set_values_and_a_reported_status_are_kept() {
        let mut pod = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x",
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]},
            "status": {"phase": "Running", "podIP": "10.244.1.5"}});
        apply_defaults(&mut pod);
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["status"]["qosClass"], "Guaranteed");
    }
}
