//! Builds both images once per test run with `scripts/images` (from the binaries `cargo test`
//! already built) and unpacks each OCI archive as a runtime would: index -> manifest -> config
//! and layers -> root filesystem.
//!
//! ```text
//!   target/<profile>/portico-{controller,agent} ─▶ scripts/images ─▶ <target>/portico-images/*.oci.tar
//!                                                                       └─▶ unpacked/<name>/{layout,rootfs}
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use portico_tests::{repo_root, require_root, tool, workspace_binary};
use serde_json::Value;

/// One built image, as read back from its archive.
#[derive(Debug)]
pub struct Image {
    pub archive: PathBuf,
    /// The index's annotations on its one manifest (the names podman and containerd give it).
    pub annotations: Value,
    pub manifest_digest: String,
    /// The image configuration (`config.Entrypoint`, `config.User`, `config.Labels`, ...).
    pub config: Value,
    pub rootfs: PathBuf,
}

impl Image {
    pub fn label(&self, key: &str) -> &str {
        self.config["config"]["Labels"][key]
            .as_str()
            .unwrap_or_else(|| panic!("label {key} missing: {}", self.config["config"]))
    }

    /// `config.Env` as pairs, for running the entrypoint with exactly the image's environment.
    pub fn env(&self) -> Vec<(String, String)> {
        self.config["config"]["Env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    pub fn entrypoint(&self) -> Vec<String> {
        serde_json::from_value(self.config["config"]["Entrypoint"].clone())
            .expect("config.Entrypoint is a list of strings")
    }
}

pub struct Images {
    pub controller: Image,
    pub agent: Image,
}

static IMAGES: OnceLock<Result<Images, String>> = OnceLock::new();

/// Both images, built on first use. `None` (a skip) where the build cannot run outside CI: not
/// root, tools or binaries missing; under CI those are failures.
pub fn images() -> Option<&'static Images> {
    if !require_root() {
        return None;
    }
    for needed in ["umoci", "jq", "skopeo", "dpkg-deb", "apt-get"] {
        tool(needed)?;
    }
    let binaries = workspace_binary("portico-controller")?
        .parent()
        .unwrap()
        .to_path_buf();
    workspace_binary("portico-agent")?;
    match IMAGES.get_or_init(|| build(&binaries)) {
        Ok(images) => Some(images),
        Err(why) => panic!("{why}"),
    }
}

fn build(binaries: &Path) -> Result<Images, String> {
    let target = binaries.parent().expect("target/<profile>");
    let out = target.join("portico-images");
    let output = Command::new(repo_root().join("scripts/images"))
        .arg("--binaries")
        .arg(binaries)
        .arg("--out")
        .arg(&out)
        .arg("--docker-archive")
        .env("PORTICO_DEB_CACHE", target.join("image-debs"))
        .output()
        .map_err(|e| format!("scripts/images: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "scripts/images failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let version = portico_tests::manifests::workspace_version();
    let arch = host_architecture()?;
    let unpack = |name: &str| {
        let archive = out.join(format!("{name}-{version}-{arch}.oci.tar"));
        unpack(&archive, &out.join("unpacked").join(name))
    };
    Ok(Images {
        controller: unpack("portico-controller")?,
        agent: unpack("portico-agent")?,
    })
}

/// The device nodes every OCI runtime creates in a container's /dev (runc's default devices);
/// an image carries none, and programs need them (the agent's child processes read /dev/null).
fn add_runtime_devices(rootfs: &Path) -> Result<(), String> {
    let dev = rootfs.join("dev");
    std::fs::create_dir_all(&dev).map_err(|e| format!("{}: {e}", dev.display()))?;
    for (name, minor) in [
        ("null", "3"),
        ("zero", "5"),
        ("full", "7"),
        ("random", "8"),
        ("urandom", "9"),
    ] {
        run(Command::new("mknod")
            .args(["-m", "666"])
            .arg(dev.join(name))
            .args(["c", "1", minor]))?;
    }
    Ok(())
}

fn host_architecture() -> Result<String, String> {
    let output = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .map_err(|e| format!("dpkg: {e}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digests");
    layout.join("blobs/sha256").join(hex)
}

/// Reads an OCI archive the way `podman load` does: the layout's index names one manifest, the
/// manifest names the config and the layers; the layers, applied in order, are the root.
fn unpack(archive: &Path, dir: &Path) -> Result<Image, String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let layout = dir.join("layout");
    let rootfs = dir.join("rootfs");
    for d in [&layout, &rootfs] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    run(Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(&layout))?;
    let index = read_json(&layout.join("index.json"))?;
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let [descriptor] = manifests.as_slice() else {
        return Err(format!(
            "{}: want one manifest, index has {index}",
            archive.display()
        ));
    };
    let manifest_digest = descriptor["digest"].as_str().unwrap_or_default().to_owned();
    let manifest = read_json(&blob(&layout, &manifest_digest))?;
    let config = read_json(&blob(
        &layout,
        manifest["config"]["digest"].as_str().unwrap_or_default(),
    ))?;
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        let digest = layer["digest"].as_str().unwrap_or_default();
        run(Command::new("tar")
            .arg("-xzf")
            .arg(blob(&layout, digest))
            .arg("--numeric-owner")
            .arg("-C")
            .arg(&rootfs))?;
    }
    add_runtime_devices(&rootfs)?;
    Ok(Image {
        archive: archive.to_path_buf(),
        annotations: descriptor["annotations"].clone(),
        manifest_digest,
        config,
        rootfs,
    })
}
