//! apps/v1 workloads (`kubectl create deployment`): the workload fields here, the pod
//! template in `pod.rs`.

use k8s_pb::api::apps::v1::{DaemonSet, DaemonSetStatus, Deployment, DeploymentStatus};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::ProtobufError;
use super::json::{Fields, int_or_string, label_selector};
use super::pod::pod_template;

const API_VERSION: &str = "apps/v1";

fn rolling_update(max_unavailable: &Option<IntOrString>, max_surge: &Option<IntOrString>) -> Value {
    Fields::new()
        .opt_value(
            "maxUnavailable",
            max_unavailable.as_ref().and_then(int_or_string),
        )
        .opt_value("maxSurge", max_surge.as_ref().and_then(int_or_string))
        .build()
}

fn refuse_conditions(count: usize) -> Result<(), ProtobufError> {
    if count > 0 {
        return Err(ProtobufError::UnmappedField("status.conditions".into()));
    }
    Ok(())
}

pub fn deployment(deployment: &Deployment) -> Result<Value, ProtobufError> {
    let spec = match &deployment.spec {
        None => None,
        Some(spec) => {
            let strategy = spec.strategy.as_ref().map(|s| {
                Fields::new()
                    .string("type", &s.r#type)
                    .opt_value(
                        "rollingUpdate",
                        s.rolling_update
                            .as_ref()
                            .map(|r| rolling_update(&r.max_unavailable, &r.max_surge)),
                    )
                    .build()
            });
            Some(
                Fields::new()
                    // A pointer: `--replicas=0` means zero, not the default of one.
                    .opt_int("replicas", spec.replicas)
                    .opt_value("selector", spec.selector.as_ref().map(label_selector))
                    .value("template", template_or_empty(spec.template.as_ref())?)
                    .opt_value("strategy", strategy)
                    .int("minReadySeconds", spec.min_ready_seconds)
                    .opt_int("revisionHistoryLimit", spec.revision_history_limit)
                    .bool("paused", spec.paused)
                    .opt_int("progressDeadlineSeconds", spec.progress_deadline_seconds)
                    .build(),
            )
        }
    };
    Ok(
        Fields::object(API_VERSION, "Deployment", deployment.metadata.as_ref())
            .opt_value("spec", spec)
            .opt_value(
                "status",
                deployment
                    .status
                    .as_ref()
                    .map(deployment_status)
                    .transpose()?,
            )
            .build(),
    )
}

/// A workload's pod template; Go always encodes it, so an absent one is the empty template.
fn template_or_empty(
    template: Option<&k8s_pb::api::core::v1::PodTemplateSpec>,
) -> Result<Value, ProtobufError> {
    Ok(template
        .map(pod_template)
        .transpose()?
        .unwrap_or_else(|| json!({"metadata": {}})))
}

fn deployment_status(status: &DeploymentStatus) -> Result<Value, ProtobufError> {
    refuse_conditions(status.conditions.len())?;
    Ok(Fields::new()
        .int("observedGeneration", status.observed_generation)
        .int("replicas", status.replicas)
        .int("updatedReplicas", status.updated_replicas)
        .int("readyReplicas", status.ready_replicas)
        .int("availableReplicas", status.available_replicas)
        .int("unavailableReplicas", status.unavailable_replicas)
        .opt_int("terminatingReplicas", status.terminating_replicas)
        .opt_int("collisionCount", status.collision_count)
        .build())
}

pub fn daemon_set(daemon_set: &DaemonSet) -> Result<Value, ProtobufError> {
    let spec = match &daemon_set.spec {
        None => None,
        Some(spec) => {
            let strategy = spec.update_strategy.as_ref().map(|s| {
                Fields::new()
                    .string("type", &s.r#type)
                    .opt_value(
                        "rollingUpdate",
                        s.rolling_update
                            .as_ref()
                            .map(|r| rolling_update(&r.max_unavailable, &r.max_surge)),
                    )
                    .build()
            });
            Some(
                Fields::new()
                    .opt_value("selector", spec.selector.as_ref().map(label_selector))
                    .value("template", template_or_empty(spec.template.as_ref())?)
                    .opt_value("updateStrategy", strategy)
                    .int("minReadySeconds", spec.min_ready_seconds)
                    .opt_int("revisionHistoryLimit", spec.revision_history_limit)
                    .build(),
            )
        }
    };
    Ok(
        Fields::object(API_VERSION, "DaemonSet", daemon_set.metadata.as_ref())
            .opt_value("spec", spec)
            .opt_value(
                "status",
                daemon_set
                    .status
                    .as_ref()
                    .map(daemon_set_status)
                    .transpose()?,
            )
            .build(),
    )
}

fn daemon_set_status(status: &DaemonSetStatus) -> Result<Value, ProtobufError> {
    refuse_conditions(status.conditions.len())?;
    let count = |n: Option<i32>| json!(n.unwrap_or(0));
    Ok(Fields::new()
        .value(
            "currentNumberScheduled",
            count(status.current_number_scheduled),
        )
        .value("numberMisscheduled", count(status.number_misscheduled))
        .value(
            "desiredNumberScheduled",
            count(status.desired_number_scheduled),
        )
        .value("numberReady", count(status.number_ready))
        .int("observedGeneration", status.observed_generation)
        .int("updatedNumberScheduled", status.updated_number_scheduled)
        .int("numberAvailable", status.number_available)
        .int("numberUnavailable", status.number_unavailable)
        .opt_int("collisionCount", status.collision_count)
        .build())
}

#[cfg(test)]
mod tests {
    use k8s_pb::api::apps::v1::DeploymentSpec;
    use k8s_pb::api::core::v1::{
        Affinity, Container, ContainerPort, PodSpec, PodTemplateSpec, ResourceRequirements,
    };
    use k8s_pb::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

    use super::*;

    /// What `kubectl create deployment web --image=nginx --port=80 --replicas=0` builds, with
    /// the empty values Go's protobuf encoder writes for plain fields.
    fn kubectl_deployment(pod_spec: PodSpec) -> Deployment {
        let labels = [("app".to_string(), "web".to_string())];
        Deployment {
            metadata: Some(ObjectMeta {
                name: Some("web".into()),
                namespace: Some(String::new()),
                generation: Some(0),
                labels: labels.clone().into(),
                ..Default::default()
            }),
            spec: Some(DeploymentSpec {
                replicas: Some(0),
                selector: Some(LabelSelector {
                    match_labels: labels.clone().into(),
                    match_expressions: Vec::new(),
                }),
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: labels.into(),
                        ..Default::default()
                    }),
                    spec: Some(pod_spec),
                }),
                strategy: Some(Default::default()),
                min_ready_seconds: Some(0),
                paused: Some(false),
                ..Default::default()
            }),
            status: Some(Default::default()),
        }
    }

    fn nginx() -> Container {
        Container {
            name: Some("nginx".into()),
            image: Some("nginx".into()),
            working_dir: Some(String::new()),
            ports: vec![ContainerPort {
                container_port: Some(80),
                host_port: Some(0),
                protocol: Some(String::new()),
                ..Default::default()
            }],
            resources: Some(ResourceRequirements::default()),
            stdin: Some(false),
            ..Default::default()
        }
    }

    #[test]
    fn kubectl_create_deployment_maps_to_the_json_kubectl_would_send() {
        let pod_spec = PodSpec {
            containers: vec![nginx()],
            restart_policy: Some(String::new()),
            host_network: Some(false),
            ..Default::default()
        };
        let json = deployment(&kubectl_deployment(pod_spec)).unwrap();
        assert_eq!(
            json,
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{
                            "name": "nginx",
                            "image": "nginx",
                            "ports": [{"containerPort": 80}],
                            "resources": {},
                        }]},
                    },
                    "strategy": {},
                },
                "status": {},
            })
        );
    }

    #[test]
    fn a_pod_field_without_a_mapping_is_refused_not_dropped() {
        let pod_spec = PodSpec {
            containers: vec![nginx()],
            affinity: Some(Affinity::default()),
            ..Default::default()
        };
        let error = deployment(&kubectl_deployment(pod_spec)).unwrap_err();
        assert_eq!(error.label(), "unmapped_field");
        assert!(error.to_string().contains("spec.affinity"), "{error}");
    }
}
