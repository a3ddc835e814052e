//! `AddressPool`: a set of addresses the bare-metal provider hands out to LoadBalancer Services
//! (MetalLB's `IPAddressPool`, under Portico's names).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::address_range::AddressRange;
use crate::validation::{ValidationErrors, is_dns1123_label, validate_label_selector};

/// Longest address entry the schema admits (an IPv6 range is at most 79 characters).
pub const ADDRESS_MAX_LENGTH: u32 = 100;
/// Most entries one pool may list; keeps the CEL cost estimate of the schema bounded.
pub const ADDRESSES_MAX_ITEMS: u32 = 1024;

/// The addresses of one pool and how they are handed out.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "portico.dev",
    version = "v1alpha1",
    kind = "AddressPool",
    doc = "A set of addresses that LoadBalancer Services get their external IPs from.",
    plural = "addresspools",
    shortname = "ap",
    category = "portico",
    status = "AddressPoolStatus",
    printcolumn = r#"{"name":"Auto Assign","type":"boolean","jsonPath":".spec.autoAssign"}"#,
    printcolumn = r#"{"name":"Avoid Buggy IPs","type":"boolean","jsonPath":".spec.avoidBuggyIPs"}"#,
    printcolumn = r#"{"name":"Addresses","type":"string","jsonPath":".spec.addresses"}"#,
    printcolumn = r#"{"name":"Assigned IPv4","type":"integer","jsonPath":".status.assignedIPv4"}"#,
    printcolumn = r#"{"name":"Available IPv4","type":"integer","jsonPath":".status.availableIPv4"}"#,
    printcolumn = r#"{"name":"Assigned IPv6","type":"integer","jsonPath":".status.assignedIPv6","priority":1}"#,
    printcolumn = r#"{"name":"Available IPv6","type":"integer","jsonPath":".status.availableIPv6","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AddressPoolSpec {
    /// CIDRs (`192.168.10.0/24`, `fc00:f853:ccd:e799::/124`) or inclusive ranges
    /// (`192.168.10.10-192.168.10.20`), IPv4 or IPv6; entries must not overlap.
    #[schemars(schema_with = "addresses_schema")]
    pub addresses: Vec<String>,

    /// Whether Services may get addresses from this pool without naming it in the
    /// `portico.dev/address-pool` annotation.
    #[serde(default = "default_true")]
    pub auto_assign: bool,

    /// Skip the addresses ending in `.0` and `.255` that some old client stacks drop.
    #[serde(default, rename = "avoidBuggyIPs")]
    pub avoid_buggy_ips: bool,

    /// Which Services this pool serves first, and which it serves at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_allocation: Option<ServiceAllocation>,
}

fn default_true() -> bool {
    true
}

/// Restricts a pool to some namespaces or Services and orders pools between them.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAllocation {
    /// Pools with a lower number are tried first; pools without a priority come last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Namespaces whose Services may use this pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Namespaces, by label, whose Services may use this pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_selectors: Vec<LabelSelector>,
    /// Services, by label, that may use this pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<LabelSelector>,
}

/// What the controller reports about a pool.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressPoolStatus {
    /// IPv4 addresses held by Services.
    #[serde(default, rename = "assignedIPv4")]
    pub assigned_ipv4: i64,
    /// IPv4 addresses still free (saturates at the largest int64).
    #[serde(default, rename = "availableIPv4")]
    pub available_ipv4: i64,
    #[serde(default, rename = "assignedIPv6")]
    pub assigned_ipv6: i64,
    #[serde(default, rename = "availableIPv6")]
    pub available_ipv6: i64,
    /// `Valid` (the spec parses) and `Overlapping` (another pool shares addresses), as conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A CEL rule in the form `x-kubernetes-validations` holds.
fn cel_rule(rule: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "rule": rule, "message": message })
}

/// The schema of `spec.addresses`: shape by pattern, meaning by CEL (IP/CIDR library, 1.31+).
fn addresses_schema(_: &mut SchemaGenerator) -> Schema {
    let is_range = "self.split('-').size() == 2 && isIP(self.split('-')[0]) && isIP(self.split('-')[1]) \
         && ip(self.split('-')[0]).family() == ip(self.split('-')[1]).family()";
    json_schema!({
        "type": "array",
        "minItems": 1,
        "maxItems": ADDRESSES_MAX_ITEMS,
        "items": {
            "type": "string",
            "maxLength": ADDRESS_MAX_LENGTH,
            "pattern": "^[0-9A-Fa-f:.]+(/[0-9]{1,3}|-[0-9A-Fa-f:.]+)$",
            "x-kubernetes-validations": [
                cel_rule(
                    &format!("self.contains('/') ? isCIDR(self) : ({is_range})"),
                    "must be a CIDR (192.168.10.0/24) or a range of two addresses of one family (192.168.10.10-192.168.10.20)",
                ),
                cel_rule(
                    "!self.contains('/') || !isCIDR(self) || cidr(self).masked() == cidr(self)",
                    "CIDR must not have host bits set (write the network address, as in 192.168.10.0/24)",
                ),
            ],
        },
    })
}

impl AddressPoolSpec {
    /// Everything wrong with the spec that the schema cannot express: malformed entries the
    /// pattern let through, ranges that run backwards, overlapping entries, bad selectors.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if self.addresses.is_empty() {
            errors.push(
                "spec.addresses",
                "must list at least one CIDR or range of addresses",
            );
        }
        let mut parsed: Vec<(usize, AddressRange)> = Vec::with_capacity(self.addresses.len());
        for (i, text) in self.addresses.iter().enumerate() {
            match AddressRange::parse(text) {
                Ok(range) => {
                    if let Some((j, earlier)) = parsed.iter().find(|(_, r)| r.overlaps(&range)) {
                        errors.push(
                            format!("spec.addresses[{i}]"),
                            format!("{text:?} overlaps spec.addresses[{j}] ({earlier})"),
                        );
                    }
                    parsed.push((i, range));
                }
                Err(e) => errors.push(format!("spec.addresses[{i}]"), e.to_string()),
            }
        }
        if let Some(allocation) = &self.service_allocation {
            allocation.validate("spec.serviceAllocation", &mut errors);
        }
        errors.into_result()
    }

    /// The entries that parse, in order; `validate` reports the others.
    pub fn ranges(&self) -> Vec<AddressRange> {
        self.addresses
            .iter()
            .filter_map(|a| AddressRange::parse(a).ok())
            .collect()
    }
}

impl ServiceAllocation {
    fn validate(&self, field: &str, errors: &mut ValidationErrors) {
        for (i, namespace) in self.namespaces.iter().enumerate() {
            if !is_dns1123_label(namespace) {
                errors.push(
                    format!("{field}.namespaces[{i}]"),
                    format!(
                        "{namespace:?} is not a valid namespace name (a lower-case RFC 1123 label)"
                    ),
                );
            }
        }
        for (i, selector) in self.namespace_selectors.iter().enumerate() {
            validate_label_selector(
                selector,
                &format!("{field}.namespaceSelectors[{i}]"),
                errors,
            );
        }
        for (i, selector) in self.service_selectors.iter().enumerate() {
            validate_label_selector(selector, &format!("{field}.serviceSelectors[{i}]"), errors);
        }
    }
}

#[cfg(test)]
mod tests;
