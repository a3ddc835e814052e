//! The install step the README's commands share (`scripts/install`), run as on a fresh machine:
//! a PATH without the tools and an apt-get that installs nothing. It must ask apt-get for exactly
//! the missing packages and then name every program still missing with its Debian package.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where a basic system program lives (Debian keeps them in /usr/bin, some still in /bin).
fn system_program(name: &str) -> PathBuf {
    ["/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{name} is on every Debian system"))
}

#[test]
fn lab_install_step_without_the_tools_names_each_program_and_package() {
    let sandbox = tempfile::tempdir().unwrap();
    // A copy of the script: it works in its own tree, never in the repository's .venv.
    std::fs::create_dir(sandbox.path().join("scripts")).unwrap();
    let script = sandbox.path().join("scripts/install");
    std::fs::copy(repo_root().join("scripts/install"), &script).unwrap();

    // PATH holds only what the script itself needs: none of the lab's tools.
    let bin = sandbox.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for name in ["bash", "dirname", "id", "env", "cat", "sha256sum", "cut"] {
        std::os::unix::fs::symlink(system_program(name), bin.join(name)).unwrap();
    }
    // An apt-get that records what it was asked and installs nothing (no network needed).
    let apt_log = sandbox.path().join("apt-get.log");
    let apt_get = sandbox.path().join("apt-get");
    std::fs::write(
        &apt_get,
        format!(
            "#!{}\necho \"$*\" >> {}\n",
            system_program("bash").display(),
            apt_log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&apt_get, std::fs::Permissions::from_mode(0o755)).unwrap();

    let output = Command::new(bin.join("bash"))
        .arg(&script)
        .arg("lab")
        .env_clear()
        .env("PATH", &bin)
        .env("PORTICO_APT_GET", &apt_get)
        .env("PORTICO_INSTALL_SBIN_DIRS", "")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for line in [
        "missing: iptables-restore (Debian package iptables) is not on PATH",
        "missing: ip6tables-save (Debian package iptables) is not on PATH",
        "missing: ip (Debian package iproute2) is not on PATH",
        "missing: conntrack (Debian package conntrack) is not on PATH",
        "install them (apt-get install iptables iproute2 conntrack procps arping haproxy) and run this again",
    ] {
        assert!(stderr.contains(line), "{line:?} not in:\n{stderr}");
    }
    // As root it asked apt-get for each package once; otherwise it said it needs root.
    let asked = std::fs::read_to_string(&apt_log).unwrap_or_default();
    if asked.is_empty() {
        assert!(stderr.contains("need root to run"), "{stderr}");
    } else {
        assert_eq!(
            asked,
            "update -qq\ninstall -y -qq --no-install-recommends iptables iproute2 conntrack procps arping haproxy\n"
        );
    }
}

/// `scripts/install bench` asks for keepalived (the L2 failover bench's VRRP anchor) besides the
/// lab's tools, and names it when it is missing.
#[test]
fn bench_install_step_names_keepalived() {
    let sandbox = tempfile::tempdir().unwrap();
    std::fs::create_dir(sandbox.path().join("scripts")).unwrap();
    let script = sandbox.path().join("scripts/install");
    std::fs::copy(repo_root().join("scripts/install"), &script).unwrap();
    let bin = sandbox.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for name in ["bash", "dirname", "id", "env", "cat", "sha256sum", "cut"] {
        std::os::unix::fs::symlink(system_program(name), bin.join(name)).unwrap();
    }
    let apt_get = sandbox.path().join("apt-get");
    std::fs::write(
        &apt_get,
        format!("#!{}\nexit 0\n", system_program("bash").display()),
    )
    .unwrap();
    std::fs::set_permissions(&apt_get, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = Command::new(bin.join("bash"))
        .arg(&script)
        .arg("bench")
        .env_clear()
        .env("PATH", &bin)
        .env("PORTICO_APT_GET", &apt_get)
        .env("PORTICO_INSTALL_SBIN_DIRS", "")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("missing: keepalived (Debian package keepalived) is not on PATH"),
        "{stderr}"
    );
}
