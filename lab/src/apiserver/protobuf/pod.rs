//! Pods and pod templates (core/v1 Pod, the template inside apps/v1 workloads).
//!
//! PodSpec is large; the fields mapped here are those `kubectl create deployment` and ordinary
//! manifests use. A body that sets any other field is refused (`UnmappedField`, answered 415
//! so the client can send JSON) rather than stored without it.

use k8s_pb::api::core::v1::{
    Container, ContainerPort, EnvFromSource, EnvVar, EnvVarSource, KeyToPath, Pod, PodSpec,
    PodStatus, PodTemplateSpec, Probe, ResourceRequirements, Toleration, Volume, VolumeMount,
};
use serde_json::{Value, json};

use super::ProtobufError;
use super::json::{Fields, int_or_string, object_meta, quantities, time};

pub fn pod(pod: &Pod) -> Result<Value, ProtobufError> {
    Ok(Fields::object("v1", "Pod", pod.metadata.as_ref())
        .opt_value("spec", pod.spec.as_ref().map(pod_spec).transpose()?)
        .opt_value("status", pod.status.as_ref().map(pod_status).transpose()?)
        .build())
}

pub fn pod_template(template: &PodTemplateSpec) -> Result<Value, ProtobufError> {
    Ok(Fields::new()
        .value("metadata", object_meta(template.metadata.as_ref()))
        .opt_value("spec", template.spec.as_ref().map(pod_spec).transpose()?)
        .build())
}

/// Refuses a body that sets a field this module does not map.
fn refuse_if(set: bool, field: &str) -> Result<(), ProtobufError> {
    if set {
        Err(ProtobufError::UnmappedField(field.into()))
    } else {
        Ok(())
    }
}

fn pod_spec(spec: &PodSpec) -> Result<Value, ProtobufError> {
    refuse_if(
        !spec.ephemeral_containers.is_empty(),
        "spec.ephemeralContainers",
    )?;
    refuse_if(spec.security_context.is_some(), "spec.securityContext")?;
    refuse_if(spec.affinity.is_some(), "spec.affinity")?;
    refuse_if(!spec.host_aliases.is_empty(), "spec.hostAliases")?;
    refuse_if(spec.dns_config.is_some(), "spec.dnsConfig")?;
    refuse_if(!spec.readiness_gates.is_empty(), "spec.readinessGates")?;
    refuse_if(!spec.overhead.is_empty(), "spec.overhead")?;
    refuse_if(
        !spec.topology_spread_constraints.is_empty(),
        "spec.topologySpreadConstraints",
    )?;
    refuse_if(spec.os.is_some(), "spec.os")?;
    refuse_if(!spec.scheduling_gates.is_empty(), "spec.schedulingGates")?;
    refuse_if(!spec.resource_claims.is_empty(), "spec.resourceClaims")?;
    refuse_if(spec.resources.is_some(), "spec.resources")?;
    refuse_if(spec.workload_ref.is_some(), "spec.workloadRef")?;
    let containers = |list: &[Container]| list.iter().map(container).collect::<Result<Vec<_>, _>>();
    Ok(Fields::new()
        .list(
            "volumes",
            spec.volumes.iter().map(volume).collect::<Result<_, _>>()?,
        )
        .list("initContainers", containers(&spec.init_containers)?)
        // `containers` is required (no omitempty).
        .value("containers", Value::Array(containers(&spec.containers)?))
        .string("restartPolicy", &spec.restart_policy)
        .opt_int(
            "terminationGracePeriodSeconds",
            spec.termination_grace_period_seconds,
        )
        .opt_int("activeDeadlineSeconds", spec.active_deadline_seconds)
        .string("dnsPolicy", &spec.dns_policy)
        .map("nodeSelector", &spec.node_selector)
        .string("serviceAccountName", &spec.service_account_name)
        .string("serviceAccount", &spec.service_account)
        .opt_bool(
            "automountServiceAccountToken",
            spec.automount_service_account_token,
        )
        .string("nodeName", &spec.node_name)
        .bool("hostNetwork", spec.host_network)
        .bool("hostPID", spec.host_pid)
        .bool("hostIPC", spec.host_ipc)
        .opt_bool("shareProcessNamespace", spec.share_process_namespace)
        .list(
            "imagePullSecrets",
            spec.image_pull_secrets
                .iter()
                .map(|s| Fields::new().string("name", &s.name).build())
                .collect(),
        )
        .string("hostname", &spec.hostname)
        .string("subdomain", &spec.subdomain)
        .string("schedulerName", &spec.scheduler_name)
        .list(
            "tolerations",
            spec.tolerations.iter().map(toleration).collect(),
        )
        .string("priorityClassName", &spec.priority_class_name)
        .opt_int("priority", spec.priority)
        .opt_string("runtimeClassName", &spec.runtime_class_name)
        .opt_bool("enableServiceLinks", spec.enable_service_links)
        .opt_string("preemptionPolicy", &spec.preemption_policy)
        .opt_bool("setHostnameAsFQDN", spec.set_hostname_as_fqdn)
        .opt_bool("hostUsers", spec.host_users)
        .opt_string("hostnameOverride", &spec.hostname_override)
        .build())
}

fn toleration(t: &Toleration) -> Value {
    Fields::new()
        .string("key", &t.key)
        .string("operator", &t.operator)
        .string("value", &t.value)
        .string("effect", &t.effect)
        .opt_int("tolerationSeconds", t.toleration_seconds)
        .build()
}

fn container(c: &Container) -> Result<Value, ProtobufError> {
    refuse_if(!c.resize_policy.is_empty(), "containers[].resizePolicy")?;
    refuse_if(
        !c.restart_policy_rules.is_empty(),
        "containers[].restartPolicyRules",
    )?;
    refuse_if(!c.volume_devices.is_empty(), "containers[].volumeDevices")?;
    refuse_if(c.lifecycle.is_some(), "containers[].lifecycle")?;
    refuse_if(c.security_context.is_some(), "containers[].securityContext")?;
    let probe = |p: &Option<Probe>| p.as_ref().map(probe).transpose();
    Ok(Fields::new()
        .value("name", json!(c.name.as_deref().unwrap_or("")))
        .string("image", &c.image)
        .strings("command", &c.command)
        .strings("args", &c.args)
        .string("workingDir", &c.working_dir)
        .list("ports", c.ports.iter().map(container_port).collect())
        .list(
            "envFrom",
            c.env_from.iter().map(env_from).collect::<Result<_, _>>()?,
        )
        .list("env", c.env.iter().map(env_var).collect::<Result<_, _>>()?)
        .opt_value(
            "resources",
            c.resources.as_ref().map(resources).transpose()?,
        )
        .opt_string("restartPolicy", &c.restart_policy)
        .list(
            "volumeMounts",
            c.volume_mounts.iter().map(volume_mount).collect(),
        )
        .opt_value("livenessProbe", probe(&c.liveness_probe)?)
        .opt_value("readinessProbe", probe(&c.readiness_probe)?)
        .opt_value("startupProbe", probe(&c.startup_probe)?)
        .string("terminationMessagePath", &c.termination_message_path)
        .string("terminationMessagePolicy", &c.termination_message_policy)
        .string("imagePullPolicy", &c.image_pull_policy)
        .bool("stdin", c.stdin)
        .bool("stdinOnce", c.stdin_once)
        .bool("tty", c.tty)
        .build())
}

fn container_port(p: &ContainerPort) -> Value {
    Fields::new()
        .string("name", &p.name)
        .int("hostPort", p.host_port)
        .value("containerPort", json!(p.container_port.unwrap_or(0)))
        .string("protocol", &p.protocol)
        .string("hostIP", &p.host_ip)
        .build()
}

fn local_name(reference: &Option<k8s_pb::api::core::v1::LocalObjectReference>) -> Option<String> {
    reference.as_ref().and_then(|r| r.name.clone())
}

fn env_from(e: &EnvFromSource) -> Result<Value, ProtobufError> {
    let config_map = e.config_map_ref.as_ref().map(|r| {
        Fields::new()
            .string("name", &local_name(&r.local_object_reference))
            .opt_bool("optional", r.optional)
            .build()
    });
    let secret = e.secret_ref.as_ref().map(|r| {
        Fields::new()
            .string("name", &local_name(&r.local_object_reference))
            .opt_bool("optional", r.optional)
            .build()
    });
    Ok(Fields::new()
        .string("prefix", &e.prefix)
        .opt_value("configMapRef", config_map)
        .opt_value("secretRef", secret)
        .build())
}

fn env_var(e: &EnvVar) -> Result<Value, ProtobufError> {
    Ok(Fields::new()
        .value("name", json!(e.name.as_deref().unwrap_or("")))
        .string("value", &e.value)
        .opt_value(
            "valueFrom",
            e.value_from.as_ref().map(env_source).transpose()?,
        )
        .build())
}

fn env_source(s: &EnvVarSource) -> Result<Value, ProtobufError> {
    refuse_if(s.file_key_ref.is_some(), "env[].valueFrom.fileKeyRef")?;
    let field = s.field_ref.as_ref().map(|f| {
        Fields::new()
            .string("apiVersion", &f.api_version)
            .value("fieldPath", json!(f.field_path.as_deref().unwrap_or("")))
            .build()
    });
    let resource = s.resource_field_ref.as_ref().map(|r| {
        Fields::new()
            .string("containerName", &r.container_name)
            .value("resource", json!(r.resource.as_deref().unwrap_or("")))
            .opt_value(
                "divisor",
                r.divisor
                    .as_ref()
                    .and_then(|q| q.string.clone())
                    .filter(|q| !q.is_empty())
                    .map(|q| json!(q)),
            )
            .build()
    });
    let key_ref = |reference: &Option<k8s_pb::api::core::v1::LocalObjectReference>,
                   key: &Option<String>,
                   optional: Option<bool>| {
        Fields::new()
            .string("name", &local_name(reference))
            .value("key", json!(key.as_deref().unwrap_or("")))
            .opt_bool("optional", optional)
            .build()
    };
    Ok(Fields::new()
        .opt_value("fieldRef", field)
        .opt_value("resourceFieldRef", resource)
        .opt_value(
            "configMapKeyRef",
            s.config_map_key_ref
                .as_ref()
                .map(|r| key_ref(&r.local_object_reference, &r.key, r.optional)),
        )
        .opt_value(
            "secretKeyRef",
            s.secret_key_ref
                .as_ref()
                .map(|r| key_ref(&r.local_object_reference, &r.key, r.optional)),
        )
        .build())
}

fn resources(r: &ResourceRequirements) -> Result<Value, ProtobufError> {
    refuse_if(!r.claims.is_empty(), "resources.claims")?;
    Ok(Fields::new()
        .map("limits", &quantities(&r.limits))
        .map("requests", &quantities(&r.requests))
        .build())
}

fn volume_mount(m: &VolumeMount) -> Value {
    Fields::new()
        .value("name", json!(m.name.as_deref().unwrap_or("")))
        .bool("readOnly", m.read_only)
        .opt_string("recursiveReadOnly", &m.recursive_read_only)
        .value("mountPath", json!(m.mount_path.as_deref().unwrap_or("")))
        .string("subPath", &m.sub_path)
        .opt_string("mountPropagation", &m.mount_propagation)
        .string("subPathExpr", &m.sub_path_expr)
        .build()
}

fn probe(p: &Probe) -> Result<Value, ProtobufError> {
    let mut fields = Fields::new();
    if let Some(handler) = &p.handler {
        refuse_if(handler.grpc.is_some(), "probe.grpc")?;
        let port = |port: &Option<k8s_pb::apimachinery::pkg::util::intstr::IntOrString>| {
            port.as_ref().and_then(int_or_string).unwrap_or(json!(0))
        };
        fields = fields
            .opt_value(
                "exec",
                handler
                    .exec
                    .as_ref()
                    .map(|e| Fields::new().strings("command", &e.command).build()),
            )
            .opt_value(
                "httpGet",
                handler.http_get.as_ref().map(|h| {
                    Fields::new()
                        .string("path", &h.path)
                        .value("port", port(&h.port))
                        .string("host", &h.host)
                        .string("scheme", &h.scheme)
                        .list(
                            "httpHeaders",
                            h.http_headers
                                .iter()
                                .map(|h| {
                                    json!({
                                        "name": h.name.as_deref().unwrap_or(""),
                                        "value": h.value.as_deref().unwrap_or(""),
                                    })
                                })
                                .collect(),
                        )
                        .build()
                }),
            )
            .opt_value(
                "tcpSocket",
                handler.tcp_socket.as_ref().map(|t| {
                    Fields::new()
                        .value("port", port(&t.port))
                        .string("host", &t.host)
                        .build()
                }),
            );
    }
    Ok(fields
        .int("initialDelaySeconds", p.initial_delay_seconds)
        .int("timeoutSeconds", p.timeout_seconds)
        .int("periodSeconds", p.period_seconds)
        .int("successThreshold", p.success_threshold)
        .int("failureThreshold", p.failure_threshold)
        .opt_int(
            "terminationGracePeriodSeconds",
            p.termination_grace_period_seconds,
        )
        .build())
}

fn key_to_path(items: &[KeyToPath]) -> Vec<Value> {
    items
        .iter()
        .map(|k| {
            Fields::new()
                .value("key", json!(k.key.as_deref().unwrap_or("")))
                .value("path", json!(k.path.as_deref().unwrap_or("")))
                .opt_int("mode", k.mode)
                .build()
        })
        .collect()
}

fn volume(v: &Volume) -> Result<Value, ProtobufError> {
    let source = v.volume_source.clone().unwrap_or_default();
    let fields = Fields::new().value("name", json!(v.name.as_deref().unwrap_or("")));
    let fields = if let Some(c) = &source.config_map {
        fields.value(
            "configMap",
            Fields::new()
                .string("name", &local_name(&c.local_object_reference))
                .list("items", key_to_path(&c.items))
                .opt_int("defaultMode", c.default_mode)
                .opt_bool("optional", c.optional)
                .build(),
        )
    } else if let Some(s) = &source.secret {
        fields.value(
            "secret",
            Fields::new()
                .string("secretName", &s.secret_name)
                .list("items", key_to_path(&s.items))
                .opt_int("defaultMode", s.default_mode)
                .opt_bool("optional", s.optional)
                .build(),
        )
    } else if let Some(e) = &source.empty_dir {
        let size = e
            .size_limit
            .as_ref()
            .and_then(|q| q.string.clone())
            .map(|q| json!(q));
        fields.value(
            "emptyDir",
            Fields::new()
                .string("medium", &e.medium)
                .opt_value("sizeLimit", size)
                .build(),
        )
    } else if let Some(h) = &source.host_path {
        fields.value(
            "hostPath",
            Fields::new()
                .value("path", json!(h.path.as_deref().unwrap_or("")))
                .opt_string("type", &h.r#type)
                .build(),
        )
    } else if let Some(p) = &source.persistent_volume_claim {
        fields.value(
            "persistentVolumeClaim",
            Fields::new()
                .value("claimName", json!(p.claim_name.as_deref().unwrap_or("")))
                .bool("readOnly", p.read_only)
                .build(),
        )
    } else {
        return Err(ProtobufError::UnmappedField(
            "volumes[]: a source other than configMap, secret, emptyDir, hostPath or persistentVolumeClaim".into(),
        ));
    };
    Ok(fields.build())
}

fn pod_status(status: &PodStatus) -> Result<Value, ProtobufError> {
    refuse_if(!status.conditions.is_empty(), "status.conditions")?;
    refuse_if(
        !status.container_statuses.is_empty() || !status.init_container_statuses.is_empty(),
        "status.containerStatuses",
    )?;
    let ips = |list: Vec<&Option<String>>| -> Vec<Value> {
        list.into_iter()
            .map(|ip| json!({"ip": ip.as_deref().unwrap_or("")}))
            .collect()
    };
    Ok(Fields::new()
        .string("phase", &status.phase)
        .string("message", &status.message)
        .string("reason", &status.reason)
        .string("nominatedNodeName", &status.nominated_node_name)
        .string("hostIP", &status.host_ip)
        .list(
            "hostIPs",
            ips(status.host_ips.iter().map(|h| &h.ip).collect()),
        )
        .string("podIP", &status.pod_ip)
        .list(
            "podIPs",
            ips(status.pod_ips.iter().map(|p| &p.ip).collect()),
        )
        .opt_value("startTime", status.start_time.as_ref().and_then(time))
        .string("qosClass", &status.qos_class)
        .build())
}
