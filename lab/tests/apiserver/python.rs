//! Conformance with an independent client: the scripts in `python/` drive the lab API server
//! with the official Kubernetes Python client (`kubernetes` on PyPI, installed into `.venv` by
//! `scripts/test`), whose generated models deserialize every response and refuse what a real
//! API server would never send. Each script is one area; each of its checks prints `ok NAME`.

use std::path::{Path, PathBuf};

use portico_lab::{ApiServerConfig, LabApiServer};

use crate::common::lab_with;

/// `.venv/bin/python` of the workspace. Missing, the test fails under CI (which runs
/// `scripts/test`, which creates it) and is skipped elsewhere.
fn venv_python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the lab crate lives in the workspace");
    let python = root.join(".venv/bin/python");
    if python.is_file() {
        return Some(python);
    }
    let why = format!(
        "{} is missing: run scripts/test, which installs scripts/requirements-test.txt",
        python.display()
    );
    let under_ci =
        std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(!under_ci, "{why}");
    eprintln!("skipped: {why}");
    None
}

async fn run_script(lab: &LabApiServer, script: &str) {
    let Some(python) = venv_python() else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apiserver/python");
    let output = tokio::process::Command::new(python)
        .arg(dir.join(script))
        .arg(lab.kubeconfig_path())
        .current_dir(&dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

#[tokio::test]
async fn python_client_reads_every_kind_typed() {
    let lab = lab_with(ApiServerConfig::default()).await;
    run_script(&lab, "typed_reads.py").await;
}

#[tokio::test]
async fn python_client_gets_status_bodies_naming_the_field() {
    let lab = lab_with(ApiServerConfig::default()).await;
    run_script(&lab, "errors.py").await;
}

#[tokio::test]
async fn python_client_watches_resume_from_bookmarks_and_expire() {
    let config = ApiServerConfig {
        watch_history: 20,
        ..Default::default()
    };
    let lab = lab_with(config).await;
    run_script(&lab, "watches.py").await;
}

#[tokio::test]
async fn python_client_server_side_apply_conflicts_and_forces() {
    let lab = lab_with(ApiServerConfig::default()).await;
    run_script(&lab, "apply.py").await;
}
