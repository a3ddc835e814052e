//! Helpers shared by Portico's tests: where the repository and the test tools are, the rule that
//! root-only tests fail under CI instead of skipping, and smoke checks of the real binaries.
#![forbid(unsafe_code)]

pub mod cli;
pub mod cloud_lab;
pub mod cuttable_proxy;
pub mod fake_compute;
pub mod lab_agent;
pub mod lab_cluster;
pub mod manifests;
pub mod moto;
pub mod throttling_proxy;

use std::path::{Path, PathBuf};

/// The repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives inside the workspace")
        .to_path_buf()
}

/// Whether the test runs under CI (CI sets `CI`, as most CI systems do).
pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Finds a tool the tests need: first in the project's virtual environment (`.venv/bin`, where
/// `scripts/test` installs the Python tools and, if the system has none, kubectl), then on PATH.
/// A missing tool fails the test under CI and skips it elsewhere (returns `None`).
pub fn tool(name: &str) -> Option<PathBuf> {
    let venv = repo_root().join(".venv/bin").join(name);
    if venv.is_file() {
        return Some(venv);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    if on_path.is_none() {
        skip_or_fail(&format!(
            "{name} is not installed (scripts/test installs it)"
        ));
    }
    on_path
}

/// A binary of the workspace, from the target directory this test runs from. `cargo test
/// --workspace` builds the binaries (their packages have integration tests); a missing binary
/// fails under CI and skips elsewhere.
pub fn workspace_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let path = exe.parent()?.parent()?.join(name);
    if path.is_file() {
        Some(path)
    } else {
        skip_or_fail(&format!(
            "{} is not built (run cargo test --workspace)",
            path.display()
        ));
        None
    }
}

/// Whether this process runs as root (from /proc, so no unsafe call is needed).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// For tests that need root (network namespaces, iptables): true when they can run; otherwise
/// prints why and returns false, or panics under CI, where a skipped test would hide a failure.
pub fn require_root() -> bool {
    if is_root() {
        return true;
    }
    skip_or_fail("this test needs root (network namespaces and iptables)");
    false
}

fn skip_or_fail(why: &str) {
    if under_ci() {
        panic!("{why}; under CI this is a failure, not a skip");
    }
    eprintln!("SKIPPED: {why}");
}
