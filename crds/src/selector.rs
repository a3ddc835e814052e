//! Label selector matching with the API server's semantics (`metav1.LabelSelectorAsSelector`):
//! an empty selector selects everything; `matchLabels` and every `matchExpressions` entry must
//! all hold. Used for `serviceAllocation` selectors and `L2Announcement` node and pool selectors.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `selector` selects an object with `labels`. An operator the API does not define
/// selects nothing (the pool's validation has already reported it).
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
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

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: operator.into(),
                values: Some(values.iter().map(|v| v.to_string()).collect()),
            }]),
        }
    }

    #[test]
    fn operators_follow_the_api_server() {
        let zone_a = labels(&[("zone", "a")]);
        let none = labels(&[]);
        assert!(
            selects(&LabelSelector::default(), &none),
            "empty selects everything"
        );
        assert!(selects(&expression("zone", "In", &["a", "b"]), &zone_a));
        assert!(!selects(&expression("zone", "In", &["b"]), &zone_a));
        assert!(
            selects(&expression("zone", "NotIn", &["b"]), &none),
            "NotIn holds without the label"
        );
        assert!(selects(&expression("zone", "Exists", &[]), &zone_a));
        assert!(selects(&expression("zone", "DoesNotExist", &[]), &none));
        assert!(
            !selects(&expression("zone", "Equals", &["a"]), &zone_a),
            "unknown operators select nothing"
        );
        let match_labels = LabelSelector {
            match_labels: Some(zone_a.clone()),
            match_expressions: None,
        };
        assert!(selects(
            &match_labels,
            &labels(&[("zone", "a"), ("rack", "1")])
        ));
        assert!(!selects(&match_labels, &none));
    }
}
