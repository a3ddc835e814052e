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

fn candidate(
    kubeconfig: &std::path::Path,
    identity: &str,
) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portico-lab"))
        .args([
            "lease-holder",
            "--name",
            "portico-controller",
            "--identity",
            identity,
        ])
        .args([
            "--lease-duration-ms",
            "4000",
            "--renew-deadline-ms",
            "3000",
            "--retry-period-ms",
            "200",
        ])
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
    tokio::time::timeout(within, lines.next_line())
        .await
        .ok()
        .and_then(|l| l.ok().flatten())
}

#[tokio::test]
async fn a_second_process_takes_the_lease_only_after_the_leader_is_killed() {
    let lab = lab().await;
    let leases: Api<Lease> = Api::namespaced(lab.client().await.unwrap(), "default");
    let (mut first, mut first_out) = candidate(lab.kubeconfig_path(), "first");
    assert_eq!(
        next_line(&mut first_out, Duration::from_secs(10))
            .await
            .as_deref(),
        Some("leading first")
    );
    let (_second, mut second_out) = candidate(lab.kubeconfig_path(), "second");
    assert_eq!(
        next_line(&mut second_out, Duration::from_secs(3)).await,
        None,
        "the second must wait while the first renews"
    );
    let lease = leases
        .get("portico-controller")
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("first"));
    first.kill().await.unwrap();
    assert_eq!(
        next_line(&mut second_out, Duration::from_secs(10))
            .await
            .as_deref(),
        Some("leading second")
    );
    let lease = leases
        .get("portico-controller")
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("second"));
    assert_eq!(lease.lease_transitions, Some(1));
}

mod in_process {
    use std::time::Duration;

    use portico_runtime::leader::{LeaderElectionConfig, LeaderElector};

    use crate::common::lab;

    fn config(lease: Duration) -> LeaderElectionConfig {
        LeaderElectionConfig {
            lease_duration: lease,
            renew_deadline: lease / 2,
            retry_period: Duration::from_millis(50),
        }
    }

    #[tokio::test]
    async fn a_released_lease_passes_to_the_next_candidate_without_waiting_for_expiry() {
        let lab = lab().await;
        let client = lab.client().await.unwrap();
        let mut a = LeaderElector::new(
            client.clone(),
            "default",
            "released",
            "a",
            config(Duration::from_secs(30)),
        );
        let mut b = LeaderElector::new(
            client,
            "default",
            "released",
            "b",
            config(Duration::from_secs(30)),
        );
        assert!(a.try_acquire_or_renew().await.unwrap());
        assert!(!b.try_acquire_or_renew().await.unwrap());
        a.release().await.unwrap();
        assert!(b.try_acquire_or_renew().await.unwrap());
    }

    #[tokio::test]
    async fn candidates_racing_for_an_expired_lease_elect_exactly_one() {
        let lab = lab().await;
        let client = lab.client().await.unwrap();
        // Leases count whole seconds.
        let lease = Duration::from_secs(1);
        let mut holder =
            LeaderElector::new(client.clone(), "default", "race", "holder", config(lease));
        let mut b = LeaderElector::new(client.clone(), "default", "race", "b", config(lease));
        let mut c = LeaderElector::new(client, "default", "race", "c", config(lease));
        assert!(holder.try_acquire_or_renew().await.unwrap());
        assert!(!b.try_acquire_or_renew().await.unwrap());
        assert!(!c.try_acquire_or_renew().await.unwrap());
        tokio::time::sleep(lease + Duration::from_millis(200)).await;
        let (b_won, c_won) = tokio::join!(b.try_acquire_or_renew(), c.try_acquire_or_renew());
        assert!(
            b_won.unwrap() ^ c_won.unwrap(),
            "exactly one candidate leads"
        );
    }
}

#[tokio::test]
async fn a_leader_stopped_by_sigterm_hands_the_lease_over_before_it_expires() {
    let lab = lab().await;
    let (first, mut first_out) = candidate(lab.kubeconfig_path(), "first");
    assert_eq!(
        next_line(&mut first_out, Duration::from_secs(10))
            .await
            .as_deref(),
        Some("leading first")
    );
    let (_second, mut second_out) = candidate(lab.kubeconfig_path(), "second");
    let pid = first.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    // The lease lasts 4 s; a handover well inside that proves the release.
    let started = std::time::Instant::now();
    assert_eq!(
        next_line(&mut second_out, Duration::from_secs(10))
            .await
            .as_deref(),
        Some("leading second")
    );
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "took {:?}",
        started.elapsed()
    );
}
