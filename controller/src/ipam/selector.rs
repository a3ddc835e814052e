//! Label selector matching for `serviceAllocation`, with the API server's semantics: an empty
//! selector selects everything; `matchLabels` and every `matchExpressions` entry must all hold.

use portico_api::ServiceAllocation;
use portico_api::selector::selects;

use super::request::ServiceRequest;

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
