//! Service defaulting and allocation, as the API server's service registry does it: a
//! clusterIP from the service CIDR (unless `None`), a nodePort per port for NodePort and
//! LoadBalancer Services (unless `allocateLoadBalancerNodePorts: false`), a
//! healthCheckNodePort for LoadBalancer + `externalTrafficPolicy: Local`, released when the
//! Service goes or no longer needs them. Pure: no I/O, the caller holds the store's lock.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use ipnet::Ipv4Net;
use serde_json::{Map, Value, json};

use super::status::FieldError;

#[derive(Clone, Debug)]
pub struct ServiceAllocator {
    cidr: Ipv4Net,
    node_ports: RangeInclusive<u16>,
    used_ips: BTreeSet<Ipv4Addr>,
    used_ports: BTreeSet<u16>,
    ip_cursor: u32,
    port_cursor: u16,
}

/// What one Service holds.
#[derive(Debug, Default, PartialEq)]
struct Held {
    ips: BTreeSet<Ipv4Addr>,
    ports: BTreeSet<u16>,
}

fn str_of<'a>(spec: &'a Value, field: &str) -> &'a str {
    spec[field].as_str().unwrap_or_default()
}

fn needs_node_ports(spec: &Value) -> bool {
    match str_of(spec, "type") {
        "NodePort" => true,
        "LoadBalancer" => spec["allocateLoadBalancerNodePorts"].as_bool() != Some(false),
        _ => false,
    }
}

fn allows_node_ports(spec: &Value) -> bool {
    matches!(str_of(spec, "type"), "NodePort" | "LoadBalancer")
}

fn needs_health_check_port(spec: &Value) -> bool {
    str_of(spec, "type") == "LoadBalancer" && str_of(spec, "externalTrafficPolicy") == "Local"
}

fn held_by(spec: &Value) -> Held {
    let mut held = Held::default();
    if let Ok(ip) = str_of(spec, "clusterIP").parse() {
        held.ips.insert(ip);
    }
    for port in spec["ports"].as_array().into_iter().flatten() {
        if let Some(p) = port["nodePort"].as_u64() {
            held.ports.insert(p as u16);
        }
    }
    if let Some(p) = spec["healthCheckNodePort"].as_u64() {
        held.ports.insert(p as u16);
    }
    held
}

fn apply_defaults(spec: &mut Map<String, Value>) {
    let type_ = spec
        .entry("type")
        .or_insert_with(|| json!("ClusterIP"))
        .as_str()
        .unwrap_or_default()
        .to_string();
    let affinity = spec
        .entry("sessionAffinity")
        .or_insert_with(|| json!("None"));
    if affinity == "ClientIP" && spec.get("sessionAffinityConfig").is_none() {
        spec.insert(
            "sessionAffinityConfig".into(),
            json!({"clientIP": {"timeoutSeconds": 10800}}),
        );
    }
    if type_ != "ExternalName" {
        spec.entry("internalTrafficPolicy")
            .or_insert_with(|| json!("Cluster"));
    }
    if matches!(type_.as_str(), "NodePort" | "LoadBalancer") {
        spec.entry("externalTrafficPolicy")
            .or_insert_with(|| json!("Cluster"));
    }
    if type_ == "LoadBalancer" {
        spec.entry("allocateLoadBalancerNodePorts")
            .or_insert_with(|| json!(true));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            port.entry("protocol").or_insert_with(|| json!("TCP"));
            if let Some(p) = port.get("port").cloned() {
                port.entry("targetPort").or_insert(p);
            }
        }
    }
}

impl ServiceAllocator {
    pub fn new(cidr: Ipv4Net, node_ports: RangeInclusive<u16>) -> Self {
        // Dynamic allocation starts above the band kept for static choices, as upstream does.
        let ip_offset = (cidr.hosts().count() as u32 / 16).clamp(16, 256);
        let port_offset = ((node_ports.end() - node_ports.start()) / 32).clamp(16, 128);
        ServiceAllocator {
            cidr,
            port_cursor: node_ports.start() + port_offset,
            node_ports,
            used_ips: BTreeSet::new(),
            used_ports: BTreeSet::new(),
            ip_cursor: ip_offset,
        }
    }

    pub fn cidr(&self) -> Ipv4Net {
        self.cidr
    }

    fn next_ip(&mut self, taken: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        let base = u32::from(self.cidr.network());
        let size = (u32::from(self.cidr.broadcast()) - base).max(2);
        for _ in 0..size {
            let offset = self.ip_cursor % size;
            self.ip_cursor = self.ip_cursor.wrapping_add(1);
            if offset == 0 {
                continue;
            }
            let ip = Ipv4Addr::from(base + offset);
            if !self.used_ips.contains(&ip) && !taken.contains(&ip) {
                return Some(ip);
            }
        }
        None
    }

    fn next_port(&mut self, taken: &BTreeSet<u16>) -> Option<u16> {
        let (start, end) = (*self.node_ports.start(), *self.node_ports.end());
        for _ in start..=end {
            if self.port_cursor > end || self.port_cursor < start {
                self.port_cursor = start;
            }
            let port = self.port_cursor;
            self.port_cursor += 1;
            if !self.used_ports.contains(&port) && !taken.contains(&port) {
                return Some(port);
            }
        }
        None
    }

    /// Defaults a Service's spec and allocates what it needs, keeping what `old` already held.
    /// On error nothing is allocated or released.
    pub fn prepare(
        &mut self,
        old: Option<&Value>,
        service: &mut Value,
    ) -> Result<(), Vec<FieldError>> {
        if !service["spec"].is_object() {
            service["spec"] = json!({});
        }
        let old_spec = old.map(|o| &o["spec"]);
        let spec = service["spec"].as_object_mut().expect("spec is an object");
        apply_defaults(spec);
        if let Some(old_spec) = old_spec {
            drop_type_dependent_fields(old_spec, spec);
            patch_allocated_values(old_spec, spec);
        }
        let spec_value = Value::Object(spec.clone());
        let old_held = old_spec.map(held_by).unwrap_or_default();
        let mut errors = validation::validate_spec(old_spec, &spec_value);
        errors.extend(self.validate(old_spec, &spec_value, &old_held));
        if !errors.is_empty() {
            return Err(errors);
        }

        // Allocate what is still missing, never handing out a value this Service also asks for.
        let mut taken = held_by(&spec_value);
        let type_ = str_of(&spec_value, "type").to_string();
        let cluster_ip = str_of(&spec_value, "clusterIP").to_string();
        if type_ != "ExternalName" {
            let ip = if cluster_ip.is_empty() {
                match self.next_ip(&taken.ips) {
                    Some(ip) => ip.to_string(),
                    None => {
                        errors.push(FieldError::invalid(
                            "spec.clusterIPs",
                            "[]",
                            "failed to allocate IP: range is full",
                        ));
                        return Err(errors);
                    }
                }
            } else {
                cluster_ip
            };
            if let Ok(parsed) = ip.parse() {
                taken.ips.insert(parsed);
            }
            spec.insert("clusterIP".into(), json!(ip));
            spec.insert("clusterIPs".into(), json!([ip]));
            spec.insert("ipFamilies".into(), json!(["IPv4"]));
            spec.entry("ipFamilyPolicy")
                .or_insert_with(|| json!("SingleStack"));
        }
        if needs_node_ports(&spec_value)
            && let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut)
        {
            for (i, port) in ports.iter_mut().enumerate() {
                if port["nodePort"].as_u64().is_some() {
                    continue;
                }
                match self.next_port(&taken.ports) {
                    Some(p) => {
                        taken.ports.insert(p);
                        port["nodePort"] = json!(p);
                    }
                    None => {
                        errors.push(FieldError::invalid(
                            format!("spec.ports[{i}].nodePort"),
                            0,
                            "failed to allocate a nodePort: range is full",
                        ));
                    }
                }
            }
        }
        if needs_health_check_port(&spec_value)
            && spec_value["healthCheckNodePort"].as_u64().is_none()
        {
            match self.next_port(&taken.ports) {
                Some(p) => {
                    taken.ports.insert(p);
                    spec.insert("healthCheckNodePort".into(), json!(p));
                }
                None => errors.push(FieldError::invalid(
                    "spec.healthCheckNodePort",
                    0,
                    "failed to allocate a nodePort: range is full",
                )),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let new_held = held_by(&service["spec"]);
        self.release_held(&old_held);
        self.used_ips.extend(new_held.ips);
        self.used_ports.extend(new_held.ports);
        Ok(())
    }

    fn validate(&self, old_spec: Option<&Value>, spec: &Value, old_held: &Held) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let (start, end) = (*self.node_ports.start(), *self.node_ports.end());
        let cluster_ip = str_of(spec, "clusterIP");
        if let Some(old_ip) = old_spec
            .map(|o| str_of(o, "clusterIP"))
            .filter(|ip| !ip.is_empty())
            && str_of(spec, "type") != "ExternalName"
            && cluster_ip != old_ip
        {
            errors.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                format!("{cluster_ip:?}"),
                "may not change once set",
            ));
        } else if !cluster_ip.is_empty() && cluster_ip != "None" {
            match cluster_ip.parse::<Ipv4Addr>() {
                Err(_) => errors.push(FieldError::invalid("spec.clusterIPs[0]", format!("{cluster_ip:?}"), "must be a valid IP address")),
                Ok(ip) if !self.cidr.contains(&ip) => errors.push(FieldError::invalid(
                    "spec.clusterIPs",
                    format!("[]string{{{cluster_ip:?}}}"),
                    &format!(
                        "failed to allocate IP {cluster_ip}: the provided IP ({cluster_ip}) is not in the valid range. The range of valid IPs is {}",
                        self.cidr
                    ),
                )),
                Ok(ip) if self.used_ips.contains(&ip) && !old_held.ips.contains(&ip) => errors.push(FieldError::invalid(
                    "spec.clusterIPs",
                    format!("[]string{{{cluster_ip:?}}}"),
                    &format!("failed to allocate IP {cluster_ip}: provided IP is already allocated"),
                )),
                Ok(_) => {}
            }
        }
        let mut seen = BTreeSet::new();
        for (i, port) in spec["ports"].as_array().into_iter().flatten().enumerate() {
            let Some(node_port) = port["nodePort"].as_u64() else {
                continue;
            };
            let field = format!("spec.ports[{i}].nodePort");
            if !allows_node_ports(spec) {
                errors.push(FieldError::forbidden(
                    field,
                    &format!("may not be used when `type` is '{}'", str_of(spec, "type")),
                ));
            } else if node_port < start as u64 || node_port > end as u64 {
                errors.push(FieldError::invalid(
                    field,
                    node_port,
                    &format!("provided port is not in the valid range. The range of valid ports is {start}-{end}"),
                ));
            } else if !seen.insert((node_port, str_of(port, "protocol").to_string())) {
                errors.push(FieldError {
                    field,
                    reason: "FieldValueDuplicate",
                    detail: format!("Duplicate value: {node_port}"),
                });
            } else if self.used_ports.contains(&(node_port as u16))
                && !old_held.ports.contains(&(node_port as u16))
            {
                errors.push(FieldError::invalid(
                    field,
                    node_port,
                    "provided port is already allocated",
                ));
            }
        }
        if let Some(hc) = spec["healthCheckNodePort"].as_u64() {
            let field = "spec.healthCheckNodePort";
            if !needs_health_check_port(spec) {
                errors.push(FieldError::invalid(field, hc, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"));
            } else if hc < start as u64 || hc > end as u64 {
                errors.push(FieldError::invalid(field, hc, &format!("provided port is not in the valid range. The range of valid ports is {start}-{end}")));
            } else if self.used_ports.contains(&(hc as u16))
                && !old_held.ports.contains(&(hc as u16))
            {
                errors.push(FieldError::invalid(
                    field,
                    hc,
                    "provided port is already allocated",
                ));
            }
        }
        errors
    }

    fn release_held(&mut self, held: &Held) {
        for ip in &held.ips {
            self.used_ips.remove(ip);
        }
        for port in &held.ports {
            self.used_ports.remove(port);
        }
    }

    /// Frees everything a deleted Service held.
    pub fn release(&mut self, service: &Value) {
        self.release_held(&held_by(&service["spec"]));
    }
}

/// A type or policy change drops the values only the old type needed, when the client left
/// them as they were (`dropTypeDependentFields` upstream), so `{"spec":{"type":"ClusterIP"}}`
/// works as a merge patch.
fn drop_type_dependent_fields(old: &Value, spec: &mut Map<String, Value>) {
    let now = Value::Object(spec.clone());
    if !needs_node_ports(&now)
        && let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut)
    {
        for (i, port) in ports.iter_mut().enumerate() {
            let old_node_port = &old["ports"][i]["nodePort"];
            if !old_node_port.is_null()
                && port["nodePort"] == *old_node_port
                && let Some(port) = port.as_object_mut()
            {
                port.remove("nodePort");
            }
        }
    }
    if !needs_health_check_port(&now)
        && !old["healthCheckNodePort"].is_null()
        && spec.get("healthCheckNodePort") == Some(&old["healthCheckNodePort"])
    {
        spec.remove("healthCheckNodePort");
    }
    if str_of(&now, "type") != "LoadBalancer"
        && spec.get("allocateLoadBalancerNodePorts") == Some(&old["allocateLoadBalancerNodePorts"])
    {
        spec.remove("allocateLoadBalancerNodePorts");
    }
    if str_of(&now, "type") != "LoadBalancer"
        && spec.get("loadBalancerClass") == Some(&old["loadBalancerClass"])
    {
        spec.remove("loadBalancerClass");
    }
    if !allows_node_ports(&now)
        && spec.get("externalTrafficPolicy") == Some(&old["externalTrafficPolicy"])
    {
        spec.remove("externalTrafficPolicy");
    }
    if str_of(&now, "type") == "ExternalName" && spec.get("clusterIP") == Some(&old["clusterIP"]) {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
}

/// An update that leaves out allocated values keeps them (`patchAllocatedValues` upstream), so
/// a client that PUTs a Service without its clusterIP or nodePorts does not lose them.
fn patch_allocated_values(old: &Value, spec: &mut Map<String, Value>) {
    let now = Value::Object(spec.clone());
    if str_of(&now, "type") != "ExternalName"
        && str_of(&now, "clusterIP").is_empty()
        && !str_of(old, "clusterIP").is_empty()
    {
        spec.insert("clusterIP".into(), old["clusterIP"].clone());
        spec.insert("clusterIPs".into(), old["clusterIPs"].clone());
    }
    if needs_node_ports(&now)
        && let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut)
    {
        for port in ports.iter_mut().filter(|p| p["nodePort"].is_null()) {
            let same = old["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| o["port"] == port["port"] && o["protocol"] == port["protocol"]);
            if let Some(node_port) = same.map(|o| &o["nodePort"]).filter(|p| !p.is_null()) {
                port["nodePort"] = node_port.clone();
            }
        }
    }
    if needs_health_check_port(&now)
        && spec.get("healthCheckNodePort").is_none_or(Value::is_null)
        && !old["healthCheckNodePort"].is_null()
    {
        spec.insert(
            "healthCheckNodePort".into(),
            old["healthCheckNodePort"].clone(),
        );
    }
}

mod fields;
mod validation;

#[cfg(test)]
mod tests;
