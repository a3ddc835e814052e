//! The real portico-controller binary: its help, its start-up error without a kubeconfig, and its
//! admin server while it waits for an API server that is not there.

use std::path::Path;
use std::process::Stdio;

use portico_tests::cli;

const BINARY: &str = env!("CARGO_BIN_EXE_portico-controller");

#[test]
fn help_explains_every_flag() {
    let help = cli::help(Path::new(BINARY));
    for flag in [
        "--provider",
        "--default-class",
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
    let output = cli::run_without_kubeconfig(Path::new(BINARY), &["--admin-addr", "127.0.0.1:0"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("portico-controller: no Kubernetes configuration found"),
        "{stderr}"
    );
}

#[test]
fn a_bad_flag_value_names_the_flag() {
    let output = cli::run_without_kubeconfig(Path::new(BINARY), &["--provider", "azure"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--provider") && stderr.contains("azure"),
        "{stderr}"
    );
}

#[test]
fn inconsistent_leader_election_timing_is_refused_naming_the_flags() {
    let output = cli::run_without_kubeconfig(
        Path::new(BINARY),
        &[
            "--leader-elect",
            "--leader-elect-lease-duration=5s",
            "--leader-elect-renew-deadline=10s",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--leader-elect-renew-deadline (10s) must be shorter than --leader-elect-lease-duration (5s)"), "{stderr}");
}

#[test]
fn serves_admin_endpoints_and_stays_unready_until_the_api_server_answers() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cli::unreachable_kubeconfig(dir.path());
    let admin = cli::free_port();
    let mut child = cli::isolated(Path::new(BINARY), dir.path())
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--log-format",
            "json",
        ])
        .args(["--admin-addr", &admin.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    cli::wait_for_admin(&mut child, admin);
    assert_eq!(cli::http_get(admin, "/readyz").unwrap().0, 503);
    let (status, metrics) = cli::http_get(admin, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("portico_controller_build_info{version=\""),
        "{metrics}"
    );
    let stderr = child.stderr.take().unwrap();
    assert!(cli::terminate(child).success(), "SIGTERM ends it cleanly");
    let logs = std::io::read_to_string(stderr).unwrap();
    let first = logs.lines().next().expect("at least one log line");
    let line: serde_json::Value =
        serde_json::from_str(first).expect("--log-format json logs JSON lines");
    assert_eq!(line["message"], "starting", "{first}");
}
