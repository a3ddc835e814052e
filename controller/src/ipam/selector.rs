//! Label selector matching for `serviceAllocation`, with the API server's semantics: an empty
//! selector selects everything; `matchLabels` and every `matchExpressions` entry must all hold.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use portico_api::ServiceAllocation;

use super::request::ServiceRequest;

/// Whether `selector` selects an object with `labels`. An operator the API does not define
/// selects nothing (the pool's validation has already reported it).
pub(crate) fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_match = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    labels_match
        && selector
            .match_expressions
            .iter()
            .flatten()
            .all(|requirement| {
                let values = requirement.values.as_deref().unwrap_or_default();
                let actual = labels.get(&requirement.key);
                match requirement.operator.as_str() {
                    "In" => actual.is_some_and(|v| values.contains(v)),
                    "NotIn" => actual.is_none_or(|v| !values.contains(v)),
                    "Exists" => actual.is_some(),
                    "DoesNotExist" => actual.is_none(),
                    _ => false,
                }
            })
}

/// Whether the `serviceAllocation` names namespaces or Services at all (a priority alone does
/// not restrict).
pub(crate) fn allocation_restricts(allocation: Option<&ServiceAllocation>) -> bool {
    allocation.is_some_and(|a| {
        !a.namespaces.is_empty()
            || !a.namespace_selectors.is_empty()
            || !a.service_selectors.is_empty()
    })
}

/// Whether a pool with this `serviceAllocation` serves the Service (MetalLB's semantics):
/// `namespaces` and `namespaceSelectors` together restrict the namespace (either may match),
/// and `serviceSelectors` further restrict the Service. No restriction serves everyone.
pub(crate) fn allocation_serves(
    allocation: Option<&ServiceAllocation>,
    request: &ServiceRequest,
) -> bool {
    let Some(allocation) = allocation else {
        return true;
    };
    let namespace_restricted =
        !allocation.namespaces.is_empty() || !allocation.namespace_selectors.is_empty();
    let namespace_ok = !namespace_restricted
        || allocation.namespaces.contains(&request.key.namespace)
        || allocation
            .namespace_selectors
            .iter()
            .any(|selector| selects(selector, &request.namespace_labels));
    let service_ok = allocation.service_selectors.is_empty()
        || allocation
            .service_selectors
            .iter()
            .any(|selector| selects(selector, &request.labels));
    namespace_ok && service_ok
}
