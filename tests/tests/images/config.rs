//! What a runtime reads before starting a container: the names the archives carry, the
//! configuration (entrypoint, user, labels), and the Dockerfile that declares the same images.

use portico_tests::manifests::{OVERLAYS, objects, render, workload_image, workspace_version};
use portico_tests::repo_root;

use crate::build::{Image, images};
use crate::lint::dockerfile_stage;

/// The workspace's `[workspace.package]` field `name` (license, repository).
fn workspace_field(name: &str) -> String {
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let section = manifest
        .split("[workspace.package]")
        .nth(1)
        .expect("[workspace.package]");
    section
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == name).then(|| value.trim().trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| panic!("[workspace.package] {name}"))
}

fn named(images: &crate::build::Images) -> [(&'static str, &Image); 2] {
    [
        ("portico-controller", &images.controller),
        ("portico-agent", &images.agent),
    ]
}

#[test]
fn each_archive_is_named_as_the_manifests_name_its_image() {
    let Some(images) = images() else { return };
    let Some(yaml) = render("baremetal") else {
        return;
    };
    let rendered = objects(&yaml);
    for ((name, image), kind) in named(images).into_iter().zip(["Deployment", "DaemonSet"]) {
        let wanted = workload_image(&rendered, kind, name);
        assert_eq!(
            wanted,
            format!("ghcr.io/portico-dev/{name}:{}", workspace_version())
        );
        // podman load (containers/image) names the image from ref.name, ctr import from
        // io.containerd.image.name.
        assert_eq!(
            image.annotations["org.opencontainers.image.ref.name"], wanted,
            "{name}"
        );
        assert_eq!(
            image.annotations["io.containerd.image.name"], wanted,
            "{name}"
        );
    }
    // Every overlay names the same images.
    for overlay in OVERLAYS {
        let Some(other) = render(overlay) else { return };
        let other = objects(&other);
        for kind_name in [
            ("Deployment", "portico-controller"),
            ("DaemonSet", "portico-agent"),
        ] {
            assert_eq!(
                workload_image(&other, kind_name.0, kind_name.1),
                workload_image(&rendered, kind_name.0, kind_name.1),
                "{overlay}"
            );
        }
    }
}

#[test]
fn the_image_configs_run_the_binary_as_the_manifests_expect_and_carry_oci_labels() {
    let Some(images) = images() else { return };
    for (name, image) in named(images) {
        assert_eq!(
            image.entrypoint(),
            [format!("/usr/local/bin/{name}")],
            "{name}"
        );
        assert!(
            image.config["config"]["Cmd"].is_null(),
            "{name}: the manifests' args follow the entrypoint directly"
        );
        assert_eq!(image.config["os"], "linux");
        assert_eq!(image.label("org.opencontainers.image.title"), name);
        assert_eq!(
            image.label("org.opencontainers.image.version"),
            workspace_version()
        );
        assert_eq!(
            image.label("org.opencontainers.image.licenses"),
            workspace_field("license")
        );
        assert_eq!(
            image.label("org.opencontainers.image.source"),
            workspace_field("repository")
        );
        assert!(!image.label("org.opencontainers.image.revision").is_empty());
        let path = image
            .env()
            .into_iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v)
            .expect("PATH in config.Env");
        assert!(
            path.split(':').any(|dir| dir == "/usr/sbin"),
            "{name}: iptables lives in /usr/sbin: {path}"
        );
    }
    // The Deployment runs as 65532 (runAsNonRoot); the image says so too, so that it runs as
    // non-root on a runtime that ignores the pod's securityContext as well.
    assert_eq!(images.controller.config["config"]["User"], "65532:65532");
    let agent_user = images.agent.config["config"]["User"].as_str().unwrap_or("");
    assert!(
        agent_user.is_empty() || agent_user.starts_with("0"),
        "the agent programs iptables as root: {agent_user}"
    );
}

/// The Dockerfile (which the release workflow builds) declares the images scripts/images
/// builds: same entrypoint, user and label keys; the agent stage installs the same programs.
#[test]
fn the_dockerfile_declares_the_same_entrypoints_users_and_labels() {
    let Some(images) = images() else { return };
    for (name, image) in named(images) {
        let stage = dockerfile_stage(name);
        assert_eq!(stage.entrypoint, image.entrypoint(), "{name}");
        assert_eq!(
            stage.user.as_deref().unwrap_or(""),
            image.config["config"]["User"].as_str().unwrap_or(""),
            "{name}"
        );
        let mut from_script: Vec<&String> = image.config["config"]["Labels"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        let mut from_dockerfile: Vec<&String> = stage.labels.keys().collect();
        from_script.sort();
        from_dockerfile.sort();
        assert_eq!(from_dockerfile, from_script, "{name}: label keys");
        for key in [
            "org.opencontainers.image.title",
            "org.opencontainers.image.description",
            "org.opencontainers.image.source",
            "org.opencontainers.image.licenses",
        ] {
            assert_eq!(stage.labels[key], image.label(key), "{name}: {key}");
        }
        assert_eq!(
            stage.labels["org.opencontainers.image.version"],
            "${VERSION}"
        );
    }
    // The build stage's Rust is the workspace's minimum (rust-version).
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!(
            "ARG RUST_VERSION={}\n",
            workspace_field("rust-version")
        )),
        "the Dockerfile builds with the workspace's rust-version"
    );
    // Both runtimes are Debian 12 (bookworm), the release scripts/images extracts packages from.
    assert!(
        dockerfile_stage("portico-controller")
            .from
            .starts_with("gcr.io/distroless/cc-debian12:nonroot"),
        "the controller runs on distroless Debian 12, as nonroot, with no shell"
    );
    let agent = dockerfile_stage("portico-agent");
    assert_eq!(agent.from, "debian:bookworm-slim");
    for (name, image) in named(images) {
        let release = std::fs::read_to_string(image.rootfs.join("etc/debian_version")).unwrap();
        assert!(release.starts_with("12."), "{name}: Debian {release}");
    }
    for package in ["iptables", "nftables", "conntrack"] {
        assert!(
            agent.run.iter().any(|line| line.contains("apt-get install")
                && line.split_whitespace().any(|word| word == package)),
            "the Dockerfile's agent stage installs {package}"
        );
        assert!(
            images
                .agent
                .rootfs
                .join("var/lib/dpkg/status.d")
                .join(package)
                .is_file(),
            "scripts/images records {package} for image scanners"
        );
    }
}
