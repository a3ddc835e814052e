//! The real portico-agent binary: its help, its start-up errors, and its admin server while it
//! waits for an API server that is not there.

use std::path::Path;
use std::process::Stdio;

use portico_tests::cli;

const BINARY: &str = env!("CARGO_BIN_EXE_portico-agent");

#[test]
fn help_explains_every_flag() {
    let help = cli::help(Path::new(BINARY));
    for flag in [
        "--node-name",
        "--kubeconfig",
        "--context",
        "--log-format",
        "--log-level",
        "--admin-addr",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
    cli::assert_every_flag_explained(&help);
}

#[test]
fn without_kubeconfig_it_exits_non_zero_with_one_clear_line() {
    let output = cli::run_without_kubeconfig(Path::new(BINARY), &["--node-name", "node-a"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("portico-agent: no Kubernetes configuration found"),
        "{stderr}"
    );
}

#[test]
fn without_a_node_name_it_says_which_flag_is_missing() {
    let output = cli::run_without_kubeconfig(Path::new(BINARY), &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--node-name"), "{stderr}");
}

#[test]
fn serves_admin_endpoints_on_its_own_default_port_flag() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cli::unreachable_kubeconfig(dir.path());
    let admin = cli::free_port();
    let mut child = cli::isolated(Path::new(BINARY), dir.path())
        .env("NODE_NAME", "node-a")
        .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
        .args(["--admin-addr", &admin.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    cli::wait_for_admin(&mut child, admin);
    assert_eq!(cli::http_get(admin, "/readyz").unwrap().0, 503);
    let (status, metrics) = cli::http_get(admin, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("node=\"node-a\""), "{metrics}");
    assert!(cli::terminate(child).success());
    assert!(cli::help(Path::new(BINARY)).contains("[default: 0.0.0.0:9473]"));
}

#[test]
fn without_iptables_and_conntrack_it_names_them_and_their_packages_in_one_line() {
    let home = tempfile::tempdir().unwrap();
    let empty_path = tempfile::tempdir().unwrap();
    let output = cli::isolated(Path::new(BINARY), home.path())
        .env("PATH", empty_path.path())
        .args(["--node-name", "node-a"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("portico-agent: iptables, iptables-save, iptables-restore,"),
        "{stderr}"
    );
    assert!(
        stderr.contains("(install the Debian package iptables)")
            && stderr
                .contains("conntrack not found on PATH (install the Debian package conntrack)"),
        "{stderr}"
    );

    let cleanup = cli::isolated(Path::new(BINARY), home.path())
        .env("PATH", empty_path.path())
        .arg("--cleanup")
        .output()
        .unwrap();
    assert_eq!(cleanup.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&cleanup.stderr);
    assert!(
        stderr.contains("iptables-restore") && !stderr.contains("conntrack"),
        "--cleanup needs iptables only: {stderr}"
    );
}
