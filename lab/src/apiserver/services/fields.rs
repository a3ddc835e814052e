//! The Service spec fields beyond ports and types that `ValidateService` checks: the enum-like
//! policies, session affinity, source ranges, external IPs, port and selector names, with
//! upstream's field paths (including its historical `spec.LoadBalancerSourceRanges`).

use std::net::IpAddr;

use serde_json::Value;

use super::super::names::{self, invalid_each};
use super::super::status::FieldError;
use super::validation::unsupported;

const SESSION_AFFINITIES: &[&str] = &["ClientIP", "None"];
const TRAFFIC_POLICIES: &[&str] = &["Cluster", "Local"];
const FAMILY_POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];
const MAX_AFFINITY_TIMEOUT: i64 = 86400;

pub fn validate(type_: &str, spec: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    errors.extend(session_affinity(spec));
    if let Some(policy) = spec["internalTrafficPolicy"].as_str()
        && !TRAFFIC_POLICIES.contains(&policy)
    {
        errors.push(unsupported(
            "spec.internalTrafficPolicy",
            policy,
            TRAFFIC_POLICIES,
        ));
    }
    if let Some(policy) = spec["ipFamilyPolicy"].as_str()
        && !FAMILY_POLICIES.contains(&policy)
    {
        errors.push(unsupported("spec.ipFamilyPolicy", policy, FAMILY_POLICIES));
    }
    errors.extend(source_ranges(type_, spec));
    for (i, ip) in strings(&spec["externalIPs"]).enumerate() {
        errors.extend(non_special_ip(&format!("spec.externalIPs[{i}]"), ip));
    }
    for (i, port) in spec["ports"].as_array().into_iter().flatten().enumerate() {
        errors.extend(port_names(i, port));
    }
    errors.extend(names::labels("spec.selector", &spec["selector"]));
    if type_ == "ExternalName" {
        let name = spec["externalName"].as_str().unwrap_or_default();
        let trimmed = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            errors.push(FieldError::required("spec.externalName", ""));
        } else if !super::super::meta::is_dns_subdomain(trimmed) {
            errors.push(FieldError::invalid(
                "spec.externalName",
                format!("{name:?}"),
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            ));
        }
    }
    errors
}

fn strings(list: &Value) -> impl Iterator<Item = &str> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().unwrap_or_default())
}

fn session_affinity(spec: &Value) -> Vec<FieldError> {
    let affinity = spec["sessionAffinity"].as_str().unwrap_or("None");
    let config = &spec["sessionAffinityConfig"];
    if !SESSION_AFFINITIES.contains(&affinity) {
        return vec![unsupported(
            "spec.sessionAffinity",
            affinity,
            SESSION_AFFINITIES,
        )];
    }
    if affinity != "ClientIP" {
        return if config.is_null() {
            Vec::new()
        } else {
            vec![FieldError::forbidden(
                "spec.sessionAffinityConfig",
                "must not be set when session affinity is None",
            )]
        };
    }
    let why = "when session affinity type is ClientIP";
    let path = "spec.sessionAffinityConfig.clientIP.timeoutSeconds";
    match config["clientIP"]["timeoutSeconds"].as_i64() {
        None => vec![FieldError::required(path, why)],
        Some(t) if t <= 0 || t > MAX_AFFINITY_TIMEOUT => vec![FieldError::invalid(
            path,
            t,
            &format!("must be greater than 0 and less than {MAX_AFFINITY_TIMEOUT}"),
        )],
        Some(_) => Vec::new(),
    }
}

fn source_ranges(type_: &str, spec: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let ranges: Vec<&str> = strings(&spec["loadBalancerSourceRanges"]).collect();
    if ranges.is_empty() {
        return errors;
    }
    let path = "spec.LoadBalancerSourceRanges";
    if type_ != "LoadBalancer" {
        errors.push(FieldError::forbidden(
            path,
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    for (i, range) in ranges.iter().enumerate() {
        // Space-padded values are allowed, a leftover of the annotation they replaced.
        if range.trim().parse::<ipnet::IpNet>().is_err() {
            errors.push(FieldError::invalid(
                format!("{path}[{i}]"),
                format!("{:?}", range.trim()),
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ));
        }
    }
    errors
}

/// `ValidateNonSpecialIP`: an address a Service may announce.
fn non_special_ip(path: &str, text: &str) -> Vec<FieldError> {
    let shown = format!("{text:?}");
    let why = match text.parse::<IpAddr>() {
        Err(_) => "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        Ok(ip) if ip.is_unspecified() => {
            if ip.is_ipv4() {
                "may not be unspecified (0.0.0.0)"
            } else {
                "may not be unspecified (::)"
            }
        }
        Ok(ip) if ip.is_loopback() => "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        Ok(IpAddr::V4(ip)) if ip.is_link_local() => {
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
        }
        Ok(IpAddr::V6(ip)) if ip.segments()[0] & 0xffc0 == 0xfe80 => {
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
        }
        Ok(IpAddr::V4(ip)) if ip.octets()[..3] == [224, 0, 0] => {
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"
        }
        Ok(IpAddr::V6(ip)) if ip.segments()[0] & 0xff0f == 0xff02 => {
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"
        }
        Ok(_) => return Vec::new(),
    };
    vec![FieldError::invalid(path, shown, why)]
}

fn port_names(i: usize, port: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(name) = port["name"].as_str().filter(|n| !n.is_empty()) {
        errors.extend(invalid_each(
            &format!("spec.ports[{i}].name"),
            name,
            names::dns1123_label(name),
        ));
    }
    let target = format!("spec.ports[{i}].targetPort");
    match &port["targetPort"] {
        Value::Number(n) => {
            let n = n.as_i64().unwrap_or(0);
            if !(1..=65535).contains(&n) {
                errors.push(FieldError::invalid(
                    target,
                    n,
                    "must be between 1 and 65535, inclusive",
                ));
            }
        }
        Value::String(name) => {
            errors.extend(invalid_each(&target, name, names::port_name(name)));
        }
        _ => {}
    }
    if let Some(protocol) = port["appProtocol"].as_str() {
        errors.extend(invalid_each(
            &format!("spec.ports[{i}].appProtocol"),
            protocol,
            names::qualified_name(protocol),
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(spec: Value) -> Vec<String> {
        let type_ = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
        validate(&type_, &spec)
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn the_enum_like_policies_take_only_their_values() {
        let spec = json!({"type": "LoadBalancer", "sessionAffinity": "Bogus",
            "internalTrafficPolicy": "Bogus", "ipFamilyPolicy": "Bogus"});
        assert_eq!(
            fields(spec),
            [
                "spec.sessionAffinity",
                "spec.internalTrafficPolicy",
                "spec.ipFamilyPolicy"
            ]
        );
    }

    #[test]
    fn client_ip_affinity_needs_a_timeout_in_range() {
        let spec = json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 90000}}});
        assert_eq!(
            fields(spec),
            ["spec.sessionAffinityConfig.clientIP.timeoutSeconds"]
        );
        let none = json!({"sessionAffinity": "None", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10}}});
        assert_eq!(fields(none), ["spec.sessionAffinityConfig"]);
    }

    #[test]
    fn source_ranges_and_external_ips_must_parse_and_be_announceable() {
        let spec = json!({"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8", " 192.168.0.0/16 ", "nonsense"],
            "externalIPs": ["198.18.0.10", "nonsense", "127.0.0.1", "0.0.0.0"]});
        assert_eq!(
            fields(spec),
            [
                "spec.LoadBalancerSourceRanges[2]",
                "spec.externalIPs[1]",
                "spec.externalIPs[2]",
                "spec.externalIPs[3]"
            ]
        );
        let cluster_ip = json!({"type": "ClusterIP", "loadBalancerSourceRanges": ["10.0.0.0/8"]});
        assert_eq!(fields(cluster_ip), ["spec.LoadBalancerSourceRanges"]);
    }

    #[test]
    fn port_names_target_ports_and_selector_keys_follow_the_name_grammars() {
        let spec = json!({"ports": [{"name": "A_B", "port": 80, "targetPort": "http"},
                {"name": "ok", "port": 81, "targetPort": "Not_A_Name", "appProtocol": "bad proto"},
                {"name": "big", "port": 82, "targetPort": 70000}],
            "selector": {"bad key!": "web"}});
        assert_eq!(
            fields(spec),
            [
                "spec.ports[0].name",
                "spec.ports[1].targetPort",
                "spec.ports[1].appProtocol",
                "spec.ports[2].targetPort",
                "spec.selector"
            ]
        );
    }
}
