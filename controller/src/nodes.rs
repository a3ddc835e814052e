//! The node set of a cloud load balancer, computed once for every provider as the cloud
//! controllers do (KEP-3458, "stable node set"): every node that is not being deleted, not
//! labelled `node.kubernetes.io/exclude-from-external-load-balancers` (parsed as a bool) and not
//! tainted `ToBeDeletedByClusterAutoscaler`. Readiness is deliberately not a filter: the load
//! balancer's health checks decide, through the agent's `/healthz` answers.

use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use portico_api::keys::node::{EXCLUDE_FROM_EXTERNAL_LB, TO_BE_DELETED_TAINT};

/// One node a load balancer sends traffic to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LbNode {
    pub name: String,
    /// `spec.providerID` (e.g. `aws:///us-east-1a/i-0abc`), empty when the node has none yet.
    pub provider_id: String,
}

/// Whether the node belongs in load balancers (KEP-3458).
pub fn is_eligible(node: &Node) -> bool {
    if node.metadata.deletion_timestamp.is_some() {
        return false;
    }
    // Go's strconv.ParseBool, as the cloud controllers parse the label; an unparseable value
    // keeps the node in (the label's presence with a typo must not drop a node from every LB).
    let excluded = node
        .labels()
        .get(EXCLUDE_FROM_EXTERNAL_LB)
        .is_some_and(|value| matches!(value.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"));
    let to_be_deleted = node
        .spec
        .as_ref()
        .and_then(|spec| spec.taints.as_ref())
        .is_some_and(|taints| taints.iter().any(|t| t.key == TO_BE_DELETED_TAINT));
    !excluded && !to_be_deleted
}

/// The eligible nodes, sorted by name, so that equal sets compare equal.
pub fn load_balancer_nodes<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> Vec<LbNode> {
    let mut set: Vec<LbNode> = nodes
        .into_iter()
        .filter(|node| is_eligible(node))
        .map(|node| LbNode {
            name: node.name_any(),
            provider_id: node
                .spec
                .as_ref()
                .and_then(|spec| spec.provider_id.clone())
                .unwrap_or_default(),
        })
        .collect();
    set.sort();
    set
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{NodeSpec, Taint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    fn mk_node(name: &str, labels: &[(&str, &str)], taints: &[&str]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<BTreeMap<_, _>>(),
                ),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                provider_id: Some(format!("aws:///us-east-1a/i-{name}")),
                taints: Some(
                    taints
                        .iter()
                        .map(|key| Taint {
                            key: key.to_string(),
                            effect: "NoSchedule".into(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn names(nodes: &[Node]) -> Vec<String> {
        load_balancer_nodes(nodes)
            .into_iter()
            .map(|n| n.name)
            .collect()
    }

    #[test]
    fn the_node_set_leaves_out_excluded_deleting_and_autoscaler_tainted_nodes() {
        let mut deleting = mk_node("deleting", &[], &[]);
        deleting.metadata.deletion_timestamp = Some(Time(Default::default()));
        let nodes = vec![
            mk_node("b", &[], &[]),
            mk_node("a", &[], &["node.kubernetes.io/not-ready"]),
            mk_node("excluded", &[(EXCLUDE_FROM_EXTERNAL_LB, "true")], &[]),
            mk_node("excluded-1", &[(EXCLUDE_FROM_EXTERNAL_LB, "1")], &[]),
            mk_node("kept-false", &[(EXCLUDE_FROM_EXTERNAL_LB, "false")], &[]),
            mk_node("kept-typo", &[(EXCLUDE_FROM_EXTERNAL_LB, "yes")], &[]),
            mk_node("scaled-down", &[], &[TO_BE_DELETED_TAINT]),
            deleting,
        ];
        // Sorted by name; a not-ready taint does not matter (health checks decide).
        assert_eq!(names(&nodes), ["a", "b", "kept-false", "kept-typo"]);
        assert_eq!(
            load_balancer_nodes(&nodes)[0].provider_id,
            "aws:///us-east-1a/i-a"
        );
    }

    #[test]
    fn equal_sets_compare_equal_whatever_the_order() {
        let one = vec![mk_node("a", &[], &[]), mk_node("b", &[], &[])];
        let other = vec![mk_node("b", &[], &[]), mk_node("a", &[], &[])];
        assert_eq!(load_balancer_nodes(&one), load_balancer_nodes(&other));
    }
}
