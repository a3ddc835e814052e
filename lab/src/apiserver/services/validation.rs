//! The Service spec rules the API server enforces besides allocation (`ValidateService` in
//! `pkg/apis/core/validation`), the ones a load-balancer controller's users meet: port ranges
//! and names, protocols, types, and the fields only some types may set.

use std::collections::BTreeSet;

use serde_json::Value;

use super::super::status::FieldError;

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn quoted(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn unsupported(field: impl Into<String>, value: &str, supported: &[&str]) -> FieldError {
    FieldError {
        field: field.into(),
        reason: "FieldValueNotSupported",
        detail: format!(
            "Unsupported value: {value:?}: supported values: {}",
            quoted(supported)
        ),
    }
}

pub fn validate_spec(old: Option<&Value>, spec: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let type_ = spec["type"].as_str().unwrap_or("ClusterIP");
    if !TYPES.contains(&type_) {
        errors.push(unsupported("spec.type", type_, TYPES));
    }
    let ports = spec["ports"].as_array().cloned().unwrap_or_default();
    let headless = spec["clusterIP"] == "None";
    if ports.is_empty() && type_ != "ExternalName" && !headless {
        errors.push(FieldError::required("spec.ports", ""));
    }
    let mut names = BTreeSet::new();
    let mut endpoints = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let name = port["name"].as_str().unwrap_or_default();
        if ports.len() > 1 && name.is_empty() {
            errors.push(FieldError::required(format!("spec.ports[{i}].name"), ""));
        } else if !name.is_empty() && !names.insert(name.to_string()) {
            errors.push(FieldError {
                field: format!("spec.ports[{i}].name"),
                reason: "FieldValueDuplicate",
                detail: format!("Duplicate value: {name:?}"),
            });
        }
        let number = port["port"].as_i64().unwrap_or(0);
        if !(1..=65535).contains(&number) {
            errors.push(FieldError::invalid(
                format!("spec.ports[{i}].port"),
                number,
                "must be between 1 and 65535, inclusive",
            ));
        }
        let protocol = port["protocol"].as_str().unwrap_or("TCP");
        if !PROTOCOLS.contains(&protocol) {
            errors.push(unsupported(
                format!("spec.ports[{i}].protocol"),
                protocol,
                PROTOCOLS,
            ));
        }
        if !endpoints.insert((number, protocol.to_string())) {
            errors.push(FieldError {
                field: format!("spec.ports[{i}]"),
                reason: "FieldValueDuplicate",
                detail: format!("Duplicate value: core.ServicePort{{Name:{name:?}, Protocol:{protocol:?}, Port:{number}}}"),
            });
        }
    }
    // The lab's service CIDR is IPv4 only, like a single-stack cluster.
    for (i, family) in spec["ipFamilies"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if family != "IPv4" {
            let shown = family.as_str().unwrap_or_default();
            errors.push(FieldError::invalid(
                format!("spec.ipFamilies[{i}]"),
                format!("{shown:?}"),
                "not configured on this cluster",
            ));
        }
    }
    if spec["ipFamilyPolicy"] == "RequireDualStack" {
        errors.push(FieldError::invalid(
            "spec.ipFamilyPolicy",
            "\"RequireDualStack\"",
            "this cluster is not configured for dual-stack services",
        ));
    }
    errors.extend(super::fields::validate(type_, spec));
    let external = matches!(type_, "NodePort" | "LoadBalancer");
    if let Some(policy) = spec["externalTrafficPolicy"].as_str() {
        if !external {
            errors.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                format!("{policy:?}"),
                "may only be set for externally-accessible services",
            ));
        } else if !matches!(policy, "Cluster" | "Local") {
            errors.push(unsupported(
                "spec.externalTrafficPolicy",
                policy,
                &["Cluster", "Local"],
            ));
        }
    }
    if let Some(class) = spec["loadBalancerClass"].as_str()
        && type_ != "LoadBalancer"
    {
        errors.push(FieldError::invalid(
            "spec.loadBalancerClass",
            format!("{class:?}"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    // Once a LoadBalancer has a class (or none), it keeps it while it stays a LoadBalancer.
    if let Some(old) = old
        && old["type"] == "LoadBalancer"
        && type_ == "LoadBalancer"
        && old["loadBalancerClass"] != spec["loadBalancerClass"]
    {
        let shown = spec["loadBalancerClass"]
            .as_str()
            .map(|c| format!("{c:?}"))
            .unwrap_or_else(|| "null".into());
        errors.push(FieldError::invalid(
            "spec.loadBalancerClass",
            shown,
            "may not change once set",
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unnamed_duplicate_and_out_of_range_ports_are_invalid() {
        let spec = json!({"type": "ClusterIP", "ports": [{"port": 80}, {"port": 80, "name": "b"}, {"port": 70000, "name": "c", "protocol": "ICMP"}]});
        let fields: Vec<String> = validate_spec(None, &spec)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "spec.ports[0].name",
                "spec.ports[1]",
                "spec.ports[2].port",
                "spec.ports[2].protocol"
            ]
        );
    }

    #[test]
    fn load_balancer_class_is_immutable_and_only_for_load_balancers() {
        let old = json!({"type": "LoadBalancer", "loadBalancerClass": "portico.dev/lb", "ports": [{"port": 80}]});
        let changed =
            json!({"type": "LoadBalancer", "loadBalancerClass": "other", "ports": [{"port": 80}]});
        assert_eq!(
            validate_spec(Some(&old), &changed)[0].field,
            "spec.loadBalancerClass"
        );
        let cluster_ip =
            json!({"type": "ClusterIP", "loadBalancerClass": "x", "ports": [{"port": 80}]});
        assert_eq!(
            validate_spec(None, &cluster_ip)[0].field,
            "spec.loadBalancerClass"
        );
    }
}
