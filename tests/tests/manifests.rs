//! The deploy manifests: every overlay renders with `kubectl kustomize`, every object validates
//! offline against the Kubernetes OpenAPI schemas (kubernetes-validate, strict), and the objects
//! carry what the binaries need (least-privilege RBAC, leader election, host network, ...).

use std::path::Path;
use std::process::Command;

use portico_tests::manifests::{
    OVERLAYS, find, objects, render, workload_image, workspace_version,
};
use portico_tests::{cli, repo_root, tool, workspace_binary};
use serde_json::Value;

/// The Kubernetes version whose schemas the manifests are checked against (k8s-openapi's too).
const KUBERNETES_VERSION: &str = "1.33.0";

fn validate_offline(file: &Path) -> Option<(bool, String)> {
    let validator = tool("kubernetes-validate")?;
    let output = Command::new(validator)
        .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION])
        .arg(file)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some((output.status.success() && !report.contains("ERROR"), report))
}

#[test]
fn every_overlay_renders_and_validates_against_the_kubernetes_schemas() {
    let dir = tempfile::tempdir().unwrap();
    for overlay in OVERLAYS {
        let Some(yaml) = render(overlay) else { return };
        let file = dir.path().join(format!("{overlay}.yaml"));
        std::fs::write(&file, &yaml).unwrap();
        let Some((valid, report)) = validate_offline(&file) else {
            return;
        };
        assert!(valid, "{overlay} does not validate:\n{report}");
        assert!(objects(&yaml).len() >= 13, "{overlay} renders every object");
    }
}

#[test]
fn the_validator_rejects_a_broken_manifest() {
    // Guards the test above: a validator that accepted anything would prove nothing.
    let Some(yaml) = render("baremetal") else {
        return;
    };
    let broken = yaml.replacen(
        "hostNetwork: true",
        "hostNetwork: true\n      hostNetwrk: true",
        1,
    );
    assert_ne!(broken, yaml);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, broken).unwrap();
    let Some((valid, report)) = validate_offline(&file) else {
        return;
    };
    assert!(!valid, "a misspelt field must be rejected:\n{report}");
    assert!(report.contains("hostNetwrk"), "{report}");
}

#[test]
fn each_overlay_selects_its_provider_and_turns_leader_election_on() {
    for overlay in OVERLAYS {
        let Some(yaml) = render(overlay) else { return };
        let objects = objects(&yaml);
        let controller = find(&objects, "Deployment", "portico-controller");
        assert_eq!(controller["metadata"]["namespace"], "portico-system");
        let args = &controller["spec"]["template"]["spec"]["containers"][0]["args"];
        let args: Vec<&str> = args
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(args.contains(&"--leader-elect=true"), "{overlay}: {args:?}");
        assert!(
            args.contains(&format!("--provider={overlay}").as_str()),
            "{overlay}: {args:?}"
        );
        assert!(
            controller["spec"]["replicas"].as_u64().unwrap() >= 2,
            "a standby replica"
        );
    }
}

#[test]
fn the_agent_runs_on_every_node_with_host_network_and_only_the_capabilities_it_needs() {
    let Some(yaml) = render("baremetal") else {
        return;
    };
    let objects = objects(&yaml);
    let agent = find(&objects, "DaemonSet", "portico-agent");
    let pod = &agent["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["priorityClassName"], "system-node-critical");
    assert!(
        pod["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["operator"] == "Exists" && t.get("key").is_none()),
        "tolerates every taint"
    );
    let capabilities = &pod["containers"][0]["securityContext"]["capabilities"];
    assert_eq!(
        capabilities["add"],
        serde_json::json!(["NET_ADMIN", "NET_RAW"])
    );
    assert_eq!(capabilities["drop"], serde_json::json!(["ALL"]));
    assert!(
        pod["containers"][0]["securityContext"]
            .get("privileged")
            .is_none()
    );
    let env = pod["containers"][0]["env"].as_array().unwrap();
    assert!(
        env.iter().any(|e| e["name"] == "NODE_NAME"
            && e["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName")
    );
}

/// Collects (apiGroup, resource, verb) triples granted by a ClusterRole or Role.
fn grants(role: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for rule in role["rules"].as_array().unwrap() {
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                for verb in rule["verbs"].as_array().unwrap() {
                    let s = |v: &Value| v.as_str().unwrap().to_owned();
                    out.push((s(group), s(resource), s(verb)));
                }
            }
        }
    }
    out
}

#[test]
fn rbac_grants_no_wildcards_and_the_agent_writes_only_events() {
    let Some(yaml) = render("baremetal") else {
        return;
    };
    let objects = objects(&yaml);
    for role in objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
    {
        for (group, resource, verb) in grants(role) {
            assert!(
                ![&group, &resource, &verb].iter().any(|s| s.contains('*')),
                "wildcard in {}",
                role["metadata"]["name"]
            );
        }
    }
    let agent = grants(find(&objects, "ClusterRole", "portico-agent"));
    for (group, resource, verb) in &agent {
        let reads = ["get", "list", "watch"].contains(&verb.as_str());
        assert!(
            reads || resource == "events",
            "agent may {verb} {group}/{resource}"
        );
    }
    let controller = grants(find(&objects, "ClusterRole", "portico-controller"));
    assert!(controller.contains(&("".into(), "services/status".into(), "patch".into())));
    // Nodes: read for the cloud providers' node set, never written, never fetched one by one.
    let node_verbs: Vec<&str> = controller
        .iter()
        .filter(|(g, r, _)| g.is_empty() && r == "nodes")
        .map(|(_, _, v)| v.as_str())
        .collect();
    assert_eq!(node_verbs, ["list", "watch"]);
    assert!(
        !controller
            .iter()
            .any(|(_, r, v)| r == "services" && (v == "update" || v == "delete")),
        "never writes spec"
    );
    let lease = grants(find(&objects, "Role", "portico-controller-leader-election"));
    assert!(
        lease
            .iter()
            .all(|(group, resource, _)| group == "coordination.k8s.io" && resource == "leases")
    );
    assert_eq!(
        find(&objects, "Role", "portico-controller-leader-election")["metadata"]["namespace"],
        "portico-system"
    );
}

/// The flags the manifests pass are flags the real binaries accept: started with the manifest's
/// arguments and no cluster, each gets as far as looking for a kubeconfig (exit 1), not a usage
/// error (exit 2).
#[test]
fn the_real_binaries_accept_the_arguments_the_manifests_pass() {
    for overlay in OVERLAYS {
        let Some(yaml) = render(overlay) else { return };
        let objects = objects(&yaml);
        for (kind, name, binary) in [
            ("Deployment", "portico-controller", "portico-controller"),
            ("DaemonSet", "portico-agent", "portico-agent"),
        ] {
            let Some(path) = workspace_binary(binary) else {
                return;
            };
            let container =
                &find(&objects, kind, name)["spec"]["template"]["spec"]["containers"][0];
            let args: Vec<&str> = container["args"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let home = tempfile::tempdir().unwrap();
            let output = cli::isolated(&path, home.path())
                .env("NODE_NAME", "node-a")
                .env("POD_NAME", "portico-controller-0")
                .env("POD_NAMESPACE", "portico-system")
                .args(&args)
                .args(["--admin-addr", "127.0.0.1:0"])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(1),
                "{overlay} {binary} {args:?}: {stderr}"
            );
            assert!(
                stderr.contains("no Kubernetes configuration found"),
                "{stderr}"
            );
        }
    }
}

/// The images the manifests name are the ones scripts/images and the release workflow build: the
/// registry path in deploy/base and the workspace version as the tag (one version for the
/// crates, the images and the manifests; tests/tests/images.rs checks the built images' names).
#[test]
fn every_overlay_names_the_images_at_the_workspace_version() {
    let base = std::fs::read_to_string(repo_root().join("deploy/base/kustomization.yaml")).unwrap();
    let base: Value = serde_yaml_ng::from_str(&base).unwrap();
    for image in base["images"].as_array().expect("deploy/base sets images:") {
        assert_eq!(
            image["newTag"],
            workspace_version(),
            "deploy/base/kustomization.yaml images: newTag of {} must be the workspace version \
             in Cargo.toml",
            image["name"]
        );
    }
    for overlay in OVERLAYS {
        let Some(yaml) = render(overlay) else { return };
        let objects = objects(&yaml);
        for (kind, name) in [
            ("Deployment", "portico-controller"),
            ("DaemonSet", "portico-agent"),
        ] {
            assert_eq!(
                workload_image(&objects, kind, name),
                format!("ghcr.io/portico-dev/{name}:{}", workspace_version()),
                "{overlay} {kind}/{name}"
            );
        }
    }
}
