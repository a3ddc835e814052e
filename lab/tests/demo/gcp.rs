//! `portico-lab up --provider gcp`: the fake Compute server stands in for GCP, the GCP lab cloud
//! (checks and ECMP routes in the cloud namespace) serves the target pools the controller made,
//! and the client reaches each forwarding rule's IP. The printed tables must show the Local
//! Service's rule reaching only the node with the endpoint, with the client's own address, the
//! health-check story must lose no request in the rolling update, and `down` must leave nothing.

use std::process::Command;

use portico_lab::demo::state::LabState;

use crate::{DownOnDrop, can_run, free_port, is_root, run_lab, section};

const NODE_SUBNET: &str = "198.18.96.0/24";

/// The rows of a table whose first cell starts with `first`, split on runs of spaces.
fn rows<'a>(section: &'a str, first: &str) -> Vec<Vec<&'a str>> {
    section
        .lines()
        .filter(|line| line.starts_with(first))
        .map(|line| line.split_whitespace().collect())
        .collect()
}

#[test]
fn up_with_gcp_serves_the_forwarding_rules_through_the_lab_cloud_and_down_leaves_nothing() {
    let why_not =
        (!is_root()).then(|| "`portico-lab up` needs root (network namespaces)".to_owned());
    if !can_run(why_not) {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let state_dir = temp.path().join("lab");
    let _down = DownOnDrop(state_dir.clone());
    let port = free_port().to_string();
    let (_, up) = run_lab(
        &[
            "up",
            "--provider",
            "gcp",
            "--node-subnet",
            NODE_SUBNET,
            "--port",
            &port,
        ],
        &state_dir,
    );
    println!("{up}");
    let svc = section(&up, "kubectl get svc");
    assert_eq!(
        svc.matches(" 198.51.100.").count(),
        2,
        "both Services show their forwarding rule's IP:\n{svc}"
    );

    // The lab cloud's view through getHealth: Cluster all HEALTHY, Local only node-0.
    let view = section(&up, "the lab cloud's view of member health");
    let members = rows(view, "echo-");
    assert_eq!(members.len(), 6, "{view}");
    let healthy: Vec<(&str, &str)> = members
        .iter()
        .filter(|r| r[3] == "HEALTHY")
        .map(|r| (r[0], r[2]))
        .collect();
    assert_eq!(
        healthy,
        [
            ("echo-cluster", "node-0"),
            ("echo-cluster", "node-1"),
            ("echo-cluster", "node-2"),
            ("echo-local", "node-0"),
        ],
        "{view}"
    );

    // Through the forwarding rules: Local reaches node-0's pod with the client's own address.
    let client = section(&up, "what the client");
    let local = rows(client, "echo-local ");
    assert_eq!(local.len(), 6, "{client}");
    for row in &local {
        assert_eq!((row[3], row[4]), ("node-0", "203.0.113.2"), "{client}");
    }
    let cluster = rows(client, "echo-cluster ");
    assert_eq!(cluster.len(), 6, "{client}");
    assert!(cluster.iter().all(|row| row[3] == "node-0"), "{client}");

    // The health-check story: the rolling update loses nothing; the tainted node leaves.
    let (_, story) = run_lab(&["scenario", "health-checks"], &state_dir);
    println!("{story}");
    let table = section(&story, "what the client saw");
    let rolling = rows(table, "rolling update");
    assert_eq!(rolling.len(), 1, "{table}");
    assert_eq!(rolling[0].last(), Some(&"0"), "no request lost:\n{table}");
    assert!(story.contains("node-2's 10256 /healthz: 503"), "{story}");

    let state = LabState::load(&state_dir).unwrap().expect("state.json");
    assert_eq!(
        state.cloud.as_ref().map(|c| c.provider.as_str()),
        Some("gcp")
    );
    assert!(
        state.processes.iter().any(|p| p.name == "lab-cloud")
            && state.processes.iter().any(|p| p.name == "fake-compute"),
        "{:?}",
        state.processes
    );
    let (_, down) = run_lab(&["down"], &state_dir);
    println!("{down}");
    for process in &state.processes {
        assert!(!process.alive(), "{process:?} still runs after down");
    }
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let namespaces = String::from_utf8_lossy(&namespaces.stdout);
    assert!(!namespaces.contains(&state.prefix), "{namespaces}");
}
