//! Leader election across two real processes (`portico-lab lease-holder`, which runs
//! `portico_runtime::leader`): one holds the Lease, the other takes over once the first is
//! killed and its lease expires.

use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::common::lab;

fn candidate(kubeconfig: &std::path::Path, identity: &str) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portico-lab"))
        .args(["lease-holder", "--name", "portico-controller", "--identity", identity])
        .args(["--lease-duration-ms", "2000", "--renew-deadline-ms", "1500", "--retry-period-ms", "200"])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("lease-holder starts");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>, within: Duration) -> Option<String> {
    tokio::time::timeout(within, lines.next_line()).await.ok().and_then(|l| l.ok().flatten())
}

#[tokio::test]
async fn a_second_process_takes_the_lease_only_after_the_leader_is_killed() {
    let lab = lab().await;
    let leases: Api<Lease> = Api::namespaced(lab.client().await.unwrap(), "default");
    let (mut first, mut first_out) = candidate(lab.kubeconfig_path(), "first");
    assert_eq!(next_line(&mut first_out, Duration::from_secs(10)).await.as_deref(), Some("leading first"));
    let (_second, mut second_out) = candidate(lab.kubeconfig_path(), "second");
    assert_eq!(next_line(&mut second_out, Duration::from_secs(3)).await, None, "the second must wait while the first renews");
    let lease = leases.get("portico-controller").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("first"));
    first.kill().await.unwrap();
    assert_eq!(next_line(&mut second_out, Duration::from_secs(10)).await.as_deref(), Some("leading second"));
    let lease = leases.get("portico-controller").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("second"));
    assert_eq!(lease.lease_transitions, Some(1));
}
