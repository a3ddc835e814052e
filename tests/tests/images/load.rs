//! The archives load where users will load them: `podman load` (and so `docker load` for the
//! docker-archive) and containerd's `ctr images import`, the air-gapped way onto a kubelet's
//! node. Each names the image as the manifests do.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portico_tests::manifests::workspace_version;
use portico_tests::tool;

use crate::build::{Image, images};

fn named(images: &crate::build::Images) -> [(&'static str, &Image); 2] {
    [
        ("portico-controller", &images.controller),
        ("portico-agent", &images.agent),
    ]
}

/// What the README tells users to do: `podman load -i` each archive (the OCI archive, and the
/// docker-archive for `docker load`) into a throw-away store, which names the image from the
/// archive as the manifests name it.
#[test]
fn podman_loads_both_archives_under_the_names_the_manifests_use() {
    let Some(images) = images() else { return };
    let Some(podman) = tool("podman") else { return };
    for (name, image) in named(images) {
        let reference = format!("ghcr.io/portico-dev/{name}:{}", workspace_version());
        let docker_archive = image.archive.with_file_name(format!(
            "{name}-{}-{}.docker.tar",
            workspace_version(),
            image.config["architecture"].as_str().unwrap()
        ));
        for archive in [&image.archive, &docker_archive] {
            let store = tempfile::tempdir().unwrap();
            let podman = |args: &[&str]| {
                let output = Command::new(&podman)
                    .args(["--storage-driver", "vfs", "--root"])
                    .arg(store.path().join("root"))
                    .arg("--runroot")
                    .arg(store.path().join("run"))
                    .args(args)
                    .output()
                    .unwrap();
                let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
                assert!(
                    output.status.success(),
                    "podman {args:?}: {stdout}{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                stdout
            };
            let loaded = podman(&["load", "--quiet", "--input", archive.to_str().unwrap()]);
            assert!(
                loaded.contains(&format!("Loaded image: {reference}")),
                "{}: {loaded}",
                archive.display()
            );
            let inspected = podman(&["image", "inspect", &reference]);
            let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
            if archive == &image.archive {
                assert_eq!(
                    inspected[0]["Digest"], image.manifest_digest,
                    "the same manifest"
                );
            }
            let config = &inspected[0]["Config"];
            assert_eq!(config["Entrypoint"], image.config["config"]["Entrypoint"]);
            assert_eq!(
                config["User"].as_str().unwrap_or(""),
                image.config["config"]["User"].as_str().unwrap_or("")
            );
            assert_eq!(
                config["Labels"]["org.opencontainers.image.version"],
                workspace_version()
            );
        }
    }
}

/// A containerd of the test's own (state, sockets and content in a temporary directory),
/// stopped on drop.
struct Containerd {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Containerd {
    fn start(containerd: &Path) -> Containerd {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let socket = dir.path().join("containerd.sock");
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{socket}\"\n[ttrpc]\n  address = \"{socket}.ttrpc\"\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{opt}\"\n",
            root = path("root"),
            state = path("state"),
            socket = socket.display(),
            opt = path("opt"),
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let child = Command::new(containerd)
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .unwrap();
        let mut containerd = Containerd {
            child,
            socket,
            _dir: dir,
        };
        // Readiness, not a timed assertion: the socket appears once containerd serves.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !containerd.socket.exists() {
            assert!(
                containerd.child.try_wait().unwrap().is_none(),
                "containerd exited"
            );
            assert!(Instant::now() < deadline, "containerd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        containerd
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ctr -n k8s.io images import`, as on a node whose kubelet uses containerd: the image appears
/// under the manifests' name and unpacks.
#[test]
fn containerd_imports_both_archives_under_the_names_the_manifests_use() {
    let Some(images) = images() else { return };
    let (Some(containerd), Some(ctr)) = (tool("containerd"), tool("ctr")) else {
        return;
    };
    let daemon = Containerd::start(&containerd);
    let ctr = |args: &[&str]| {
        let output = Command::new(&ctr)
            .arg("--address")
            .arg(&daemon.socket)
            .args(["--namespace", "k8s.io"])
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "ctr {args:?}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    for (name, image) in named(images) {
        let imported = ctr(&[
            "images",
            "import",
            "--snapshotter",
            "native",
            image.archive.to_str().unwrap(),
        ]);
        let reference = format!("ghcr.io/portico-dev/{name}:{}", workspace_version());
        assert!(imported.contains(&reference), "{imported}");
        let listed = ctr(&["images", "list", "--quiet"]);
        assert!(listed.lines().any(|line| line == reference), "{listed}");
        let checked = ctr(&["images", "check", &format!("name=={reference}")]);
        assert!(checked.contains("complete"), "{checked}");
    }
}
