//! The deploy manifests as a cluster gets them: each overlay rendered with `kubectl kustomize`,
//! split into objects. Shared by the manifest checks and the image tests (which compare the
//! images they build with the ones the manifests name).

use std::process::Command;

use serde_json::Value;

use crate::{repo_root, tool};

pub const OVERLAYS: [&str; 3] = ["baremetal", "aws", "gcp"];

/// `kubectl kustomize deploy/overlays/<overlay>`; `None` (a skip) without kubectl outside CI.
pub fn render(overlay: &str) -> Option<String> {
    let kubectl = tool("kubectl")?;
    let dir = repo_root().join("deploy/overlays").join(overlay);
    let output = Command::new(kubectl)
        .arg("kustomize")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kubectl kustomize {overlay}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8(output.stdout).unwrap())
}

/// The objects of a multi-document YAML stream.
pub fn objects(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} missing"))
}

/// The image of a workload's first container, e.g. `ghcr.io/portico-dev/portico-agent:0.1.0`.
pub fn workload_image(objects: &[Value], kind: &str, name: &str) -> String {
    find(objects, kind, name)["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_else(|| panic!("{kind}/{name} names no image"))
        .to_owned()
}

/// The workspace version (`[workspace.package] version`), which every crate inherits: the
/// images' tag.
pub fn workspace_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
