//! Validation of the built-in kinds Portico writes or its tests feed it, beyond Service specs
//! (`services/validation.rs`): Service status (what the controller publishes) and
//! EndpointSlices, with upstream's field paths and wording.

use std::net::IpAddr;

use serde_json::Value;

use super::meta::is_dns_subdomain;
use super::resources::ResourceType;
use super::status::FieldError;

pub fn validate(rt: &ResourceType, object: &Value) -> Vec<FieldError> {
    let mut errors = super::names::object_meta(object);
    errors.extend(match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "services") => service_status(&object["status"]),
        ("discovery.k8s.io", "endpointslices") => endpoint_slice(object),
        _ => Vec::new(),
    });
    errors
}

/// What `ValidateEventCreate` asks of an Event created through `events.k8s.io/v1` (in that
/// shape): the fields a reader of the new API relies on, and none of the deprecated ones.
pub fn event_v1_create(event: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let text = |field: &str| event[field].as_str().unwrap_or_default().to_string();
    if text("reportingController").is_empty() {
        errors.push(FieldError::required("reportingController", ""));
    } else {
        let controller = text("reportingController");
        errors.extend(super::names::invalid_each(
            "reportingController",
            &controller,
            super::names::qualified_name(&controller),
        ));
    }
    for field in ["reportingInstance", "action", "reason"] {
        if text(field).is_empty() {
            errors.push(FieldError::required(field, ""));
        }
    }
    if event["eventTime"].is_null() {
        errors.push(FieldError::required("eventTime", ""));
    }
    let type_ = text("type");
    if type_ != "Normal" && type_ != "Warning" {
        errors.push(FieldError::invalid(
            "type",
            "\"\"",
            &format!("has invalid value: {type_}"),
        ));
    }
    let set = |field: &str| match &event[field] {
        Value::Null => false,
        Value::Number(n) => n.as_i64() != Some(0),
        Value::Object(source) => source
            .values()
            .any(|v| v.as_str().is_some_and(|s| !s.is_empty())),
        _ => true,
    };
    for field in [
        "deprecatedFirstTimestamp",
        "deprecatedLastTimestamp",
        "deprecatedCount",
        "deprecatedSource",
    ] {
        if set(field) {
            errors.push(FieldError::invalid(field, "\"\"", "needs to be unset"));
        }
    }
    if !event["series"].is_null() && event["series"]["count"].as_i64().unwrap_or(0) < 2 {
        errors.push(FieldError::invalid(
            "series.count",
            "\"\"",
            "should be at least 2",
        ));
    }
    let namespace = event["metadata"]["namespace"].as_str().unwrap_or_default();
    let regarding = event["regarding"]["namespace"].as_str().unwrap_or_default();
    let matches = if regarding.is_empty() {
        namespace.is_empty() || namespace == "default"
    } else {
        regarding == namespace
    };
    if !matches {
        errors.push(FieldError::invalid(
            "involvedObject.namespace",
            format!("{regarding:?}"),
            "does not match event.namespace",
        ));
    }
    errors
}

fn service_status(status: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let ingress = status["loadBalancer"]["ingress"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (i, entry) in ingress.iter().enumerate() {
        let path = format!("status.loadBalancer.ingress[{i}]");
        if let Some(ip) = entry["ip"].as_str()
            && ip.parse::<IpAddr>().is_err()
        {
            errors.push(FieldError::invalid(
                format!("{path}.ip"),
                format!("{ip:?}"),
                "must be a valid IP address",
            ));
        }
        if let Some(hostname) = entry["hostname"].as_str() {
            if hostname.parse::<IpAddr>().is_ok() {
                errors.push(FieldError::invalid(
                    format!("{path}.hostname"),
                    format!("{hostname:?}"),
                    "must be a DNS name, not an IP address",
                ));
            } else if !is_dns_subdomain(hostname) {
                errors.push(FieldError::invalid(
                    format!("{path}.hostname"),
                    format!("{hostname:?}"),
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                ));
            }
        }
        if let Some(mode) = entry["ipMode"].as_str() {
            if entry["ip"].is_null() {
                errors.push(FieldError::required(
                    format!("{path}.ip"),
                    "must be specified when `ipMode` is set",
                ));
            } else if !matches!(mode, "VIP" | "Proxy") {
                errors.push(FieldError {
                    field: format!("{path}.ipMode"),
                    reason: "FieldValueNotSupported",
                    detail: format!(
                        "Unsupported value: {mode:?}: supported values: \"Proxy\", \"VIP\""
                    ),
                });
            }
        }
    }
    errors
}

fn endpoint_slice(slice: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let address_type = slice["addressType"].as_str().unwrap_or_default();
    if address_type.is_empty() {
        errors.push(FieldError::required("addressType", ""));
        return errors;
    }
    if !matches!(address_type, "IPv4" | "IPv6" | "FQDN") {
        errors.push(FieldError {
            field: "addressType".into(),
            reason: "FieldValueNotSupported",
            detail: format!("Unsupported value: {address_type:?}: supported values: \"FQDN\", \"IPv4\", \"IPv6\""),
        });
        return errors;
    }
    for (i, endpoint) in slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let addresses = endpoint["addresses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if addresses.is_empty() {
            errors.push(FieldError::required(
                format!("endpoints[{i}].addresses"),
                "must contain at least 1 address",
            ));
        }
        for (j, address) in addresses.iter().enumerate() {
            let text = address.as_str().unwrap_or_default();
            let ok = match address_type {
                "IPv4" => text.parse::<std::net::Ipv4Addr>().is_ok(),
                "IPv6" => text.parse::<std::net::Ipv6Addr>().is_ok(),
                _ => is_dns_subdomain(text),
            };
            if !ok {
                let why = match address_type {
                    "IPv4" => "must be a valid IPv4 address",
                    "IPv6" => "must be a valid IPv6 address",
                    _ => "must be a valid DNS subdomain",
                };
                errors.push(FieldError::invalid(
                    format!("endpoints[{i}].addresses[{j}]"),
                    format!("{text:?}"),
                    why,
                ));
            }
        }
    }
    for (i, port) in slice["ports"].as_array().into_iter().flatten().enumerate() {
        if let Some(number) = port["port"].as_i64()
            && !(1..=65535).contains(&number)
        {
            errors.push(FieldError::invalid(
                format!("ports[{i}].port"),
                number,
                "must be between 1 and 65535, inclusive",
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rt(group: &str, plural: &str) -> ResourceType {
        super::super::resources::Registry::default()
            .find(group, "v1", plural)
            .unwrap()
            .as_ref()
            .clone()
    }

    #[test]
    fn service_status_ingress_must_hold_an_ip_or_a_hostname() {
        let svc = json!({"status": {"loadBalancer": {"ingress": [{"ip": "198.18.0.200"}, {"ip": "nope"}, {"hostname": "10.0.0.1"}]}}});
        let fields: Vec<String> = validate(&rt("", "services"), &svc)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "status.loadBalancer.ingress[1].ip",
                "status.loadBalancer.ingress[2].hostname"
            ]
        );
    }

    #[test]
    fn endpoint_slice_addresses_must_match_the_address_type() {
        let slice = json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.244.1.5"]}, {"addresses": ["fd00::1"]}, {"addresses": []}]});
        let fields: Vec<String> = validate(&rt("discovery.k8s.io", "endpointslices"), &slice)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            ["endpoints[1].addresses[0]", "endpoints[2].addresses"]
        );
        assert_eq!(
            validate(&rt("discovery.k8s.io", "endpointslices"), &json!({}))[0].field,
            "addressType"
        );
    }
}
