//! Helpers shared by the test modules.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use kube::api::ObjectMeta;
use portico_lab::{ApiServerConfig, LabApiServer};
use serde_json::Value;

pub async fn lab() -> LabApiServer {
    lab_with(ApiServerConfig::default()).await
}

pub async fn lab_with(config: ApiServerConfig) -> LabApiServer {
    LabApiServer::start(config)
        .await
        .expect("the lab API server starts")
}

pub fn mk_service(name: &str, type_: &str, ports: &[i32]) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some(type_.into()),
            ports: Some(
                ports
                    .iter()
                    .map(|p| ServicePort {
                        port: *p,
                        name: Some(format!("p{p}")),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Status of a failed kube-rs call.
pub fn status_of<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Sends a raw request and returns the status code and JSON body.
pub async fn raw(client: &kube::Client, request: http::Request<Vec<u8>>) -> (u16, Value) {
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .expect("request is sent");
    let code = response.status().as_u16();
    let body = response
        .into_body()
        .collect_bytes()
        .await
        .expect("body is read");
    (code, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// kubectl: the one `scripts/install` put into the workspace's `.venv` when the system has
/// none, else the one on PATH.
pub fn kubectl_program() -> std::path::PathBuf {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/kubectl");
    if venv.is_file() {
        venv
    } else {
        "kubectl".into()
    }
}

/// Runs kubectl against the lab and returns (success, stdout, stderr).
pub async fn kubectl(lab: &LabApiServer, args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(kubectl_program())
        .arg("--kubeconfig")
        .arg(lab.kubeconfig_path())
        .args(args)
        .env(
            "HOME",
            lab.kubeconfig_path()
                .parent()
                .expect("kubeconfig has a directory"),
        )
        .output()
        .await
        .expect("kubectl runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Polls `check` every 50 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Writes Portico's CRDs, as `portico-crdgen` generates `deploy/crds`, into a directory.
pub fn write_portico_crds(dir: &std::path::Path) {
    for (file, contents) in portico_api::crd_yaml::generated_files().expect("CRDs render") {
        if file.ends_with(".yaml") && !file.starts_with("kustomization") {
            std::fs::write(dir.join(file), contents).expect("CRD file written");
        }
    }
}
