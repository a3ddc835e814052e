//! rbac.authorization.k8s.io/v1 kinds (`kubectl create role|clusterrole|rolebinding|
//! clusterrolebinding`).

use k8s_pb::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use super::json::{Fields, label_selector};

const API_VERSION: &str = "rbac.authorization.k8s.io/v1";

pub fn role(role: &Role) -> Value {
    Fields::object(API_VERSION, "Role", role.metadata.as_ref())
        .list("rules", role.rules.iter().map(policy_rule).collect())
        .build()
}

pub fn cluster_role(role: &ClusterRole) -> Value {
    let aggregation = role.aggregation_rule.as_ref().map(|rule| {
        Fields::new()
            .list(
                "clusterRoleSelectors",
                rule.cluster_role_selectors
                    .iter()
                    .map(label_selector)
                    .collect(),
            )
            .build()
    });
    Fields::object(API_VERSION, "ClusterRole", role.metadata.as_ref())
        .list("rules", role.rules.iter().map(policy_rule).collect())
        .opt_value("aggregationRule", aggregation)
        .build()
}

fn policy_rule(rule: &PolicyRule) -> Value {
    // `verbs` has no omitempty: Go writes `null` for an empty list, which clients read as [].
    Fields::new()
        .value("verbs", json!(rule.verbs))
        .strings("apiGroups", &rule.api_groups)
        .strings("resources", &rule.resources)
        .strings("resourceNames", &rule.resource_names)
        .strings("nonResourceURLs", &rule.non_resource_ur_ls)
        .build()
}

pub fn role_binding(binding: &RoleBinding) -> Value {
    binding_of(
        "RoleBinding",
        binding.metadata.as_ref(),
        &binding.subjects,
        binding.role_ref.as_ref(),
    )
}

pub fn cluster_role_binding(binding: &ClusterRoleBinding) -> Value {
    binding_of(
        "ClusterRoleBinding",
        binding.metadata.as_ref(),
        &binding.subjects,
        binding.role_ref.as_ref(),
    )
}

fn binding_of(
    kind: &str,
    metadata: Option<&ObjectMeta>,
    subjects: &[Subject],
    role_ref: Option<&RoleRef>,
) -> Value {
    let subject = |s: &Subject| {
        Fields::new()
            .value("kind", json!(s.kind.as_deref().unwrap_or("")))
            .string("apiGroup", &s.api_group)
            .value("name", json!(s.name.as_deref().unwrap_or("")))
            .string("namespace", &s.namespace)
            .build()
    };
    let role_ref = role_ref.map(|r| {
        Fields::new()
            .value("apiGroup", json!(r.api_group.as_deref().unwrap_or("")))
            .value("kind", json!(r.kind.as_deref().unwrap_or("")))
            .value("name", json!(r.name.as_deref().unwrap_or("")))
            .build()
    });
    Fields::object(API_VERSION, kind, metadata)
        .list("subjects", subjects.iter().map(subject).collect())
        .opt_value("roleRef", role_ref)
        .build()
}
