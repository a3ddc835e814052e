//! `L2Announcement`: which pools' addresses are announced with ARP/NDP, from which nodes and on
//! which interfaces (MetalLB's `L2Advertisement`, under Portico's names).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::validation::{ValidationErrors, is_dns1123_subdomain, validate_label_selector};

/// Linux's `IFNAMSIZ` less the terminating NUL.
pub const INTERFACE_NAME_MAX: usize = 15;

/// Announce the addresses of the selected pools from the selected nodes. With no pool named or
/// selected, every pool is announced; with no node selector, every node may announce.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "portico.dev",
    version = "v1alpha1",
    kind = "L2Announcement",
    doc = "Which pools are announced with ARP/NDP, from which nodes, on which interfaces.",
    plural = "l2announcements",
    shortname = "l2a",
    category = "portico",
    printcolumn = r#"{"name":"Address Pools","type":"string","jsonPath":".spec.addressPools"}"#,
    printcolumn = r#"{"name":"Interfaces","type":"string","jsonPath":".spec.interfaces"}"#,
    printcolumn = r#"{"name":"Node Selectors","type":"string","jsonPath":".spec.nodeSelectors","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct L2AnnouncementSpec {
    /// Names of the `AddressPool`s to announce.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address_pools: Vec<String>,
    /// `AddressPool`s to announce, by label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address_pool_selectors: Vec<LabelSelector>,
    /// Nodes allowed to announce, by label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,
    /// Nodes that announce in preference to the others while one of them is eligible (a soft
    /// preference: when none is, another selected node still announces).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferred_node_selectors: Vec<LabelSelector>,
    /// Interfaces to announce on; all but loopback and virtual ones when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "interfaces_schema")]
    pub interfaces: Vec<String>,
}

fn interfaces_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": 64,
        "items": {
            "type": "string",
            "minLength": 1,
            "maxLength": INTERFACE_NAME_MAX,
            "pattern": "^[^/:\\s]+$",
        },
    })
}

/// Linux accepts any name up to 15 bytes except `.`, `..` and names with `/`, `:` or white space.
fn interface_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > INTERFACE_NAME_MAX {
        Some(format!(
            "{name:?} must be 1 to {INTERFACE_NAME_MAX} bytes long"
        ))
    } else if name == "." || name == ".." {
        Some(format!("{name:?} is not a valid interface name"))
    } else if name.contains(['/', ':']) || name.chars().any(char::is_whitespace) {
        Some(format!("{name:?} must not contain '/', ':' or white space"))
    } else {
        None
    }
}

impl L2AnnouncementSpec {
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        for (i, pool) in self.address_pools.iter().enumerate() {
            if !is_dns1123_subdomain(pool) {
                errors.push(
                    format!("spec.addressPools[{i}]"),
                    format!(
                        "{pool:?} is not a valid AddressPool name (a lower-case RFC 1123 subdomain)"
                    ),
                );
            }
        }
        for (i, selector) in self.address_pool_selectors.iter().enumerate() {
            validate_label_selector(
                selector,
                &format!("spec.addressPoolSelectors[{i}]"),
                &mut errors,
            );
        }
        for (i, selector) in self.node_selectors.iter().enumerate() {
            validate_label_selector(selector, &format!("spec.nodeSelectors[{i}]"), &mut errors);
        }
        for (i, selector) in self.preferred_node_selectors.iter().enumerate() {
            validate_label_selector(
                selector,
                &format!("spec.preferredNodeSelectors[{i}]"),
                &mut errors,
            );
        }
        for (i, interface) in self.interfaces.iter().enumerate() {
            if let Some(problem) = interface_name_problem(interface) {
                errors.push(format!("spec.interfaces[{i}]"), problem);
            } else if self.interfaces[..i].contains(interface) {
                errors.push(
                    format!("spec.interfaces[{i}]"),
                    format!("{interface:?} is listed twice"),
                );
            }
        }
        errors.into_result()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn valid_announcements_are_accepted() {
        let spec = L2AnnouncementSpec {
            address_pools: vec!["lab-pool".into()],
            node_selectors: vec![LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "kubernetes.io/os".into(),
                    "linux".into(),
                )])),
                match_expressions: None,
            }],
            interfaces: vec!["eth0".into(), "bond0.100".into()],
            ..Default::default()
        };
        assert_eq!(spec.validate(), Ok(()));
        assert_eq!(L2AnnouncementSpec::default().validate(), Ok(()));
    }

    #[test]
    fn malformed_announcements_name_the_field() {
        let cases = [
            (
                L2AnnouncementSpec {
                    address_pools: vec!["Lab_Pool".into()],
                    ..Default::default()
                },
                "spec.addressPools[0]",
            ),
            (
                L2AnnouncementSpec {
                    interfaces: vec!["eth0".into(), "a-very-long-interface".into()],
                    ..Default::default()
                },
                "spec.interfaces[1]",
            ),
            (
                L2AnnouncementSpec {
                    interfaces: vec!["eth0".into(), "eth0".into()],
                    ..Default::default()
                },
                "spec.interfaces[1]",
            ),
            (
                L2AnnouncementSpec {
                    interfaces: vec!["eth0:1".into()],
                    ..Default::default()
                },
                "spec.interfaces[0]",
            ),
            (
                L2AnnouncementSpec {
                    node_selectors: vec![LabelSelector {
                        match_labels: Some(BTreeMap::from([("zone".into(), "not valid!".into())])),
                        match_expressions: None,
                    }],
                    ..Default::default()
                },
                "spec.nodeSelectors[0].matchLabels[zone]",
            ),
        ];
        for (spec, field) in cases {
            let errors = spec.validate().unwrap_err();
            assert!(errors.names_field(field), "{field} missing from {errors}");
        }
    }
}
