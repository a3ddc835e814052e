//! The `portico-lab apiserver` command: serves on the given address, writes a kubeconfig that
//! kubectl uses unchanged, and exits cleanly on SIGTERM.

use std::time::Duration;

use crate::common::eventually;

#[tokio::test]
async fn the_apiserver_command_serves_kubectl_and_exits_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_portico-lab"))
        .args([
            "apiserver",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--service-cidr",
            "10.100.0.0/24",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .env("PORTICO_LOG_LEVEL", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(10), || async { kubeconfig.exists() }).await);
    let output = tokio::process::Command::new(crate::common::kubectl_program())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "get",
            "svc",
            "kubernetes",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])
        .env("HOME", dir.path())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "10.100.0.1",
        "the first address of --service-cidr"
    );
    let pid = server.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
