//! `portico-lab up --provider aws`: moto stands in for AWS, the lab cloud (HAProxy in the cloud
//! namespace) serves the NLBs the controller made, and the client reaches them by their DNS
//! names. The printed tables must show the Local Service's load balancer sending only to the
//! node with the endpoint, with the client's own address, and `down` must leave nothing behind.

use std::path::Path;
use std::process::Command;

use portico_lab::demo::state::LabState;

use crate::{DownOnDrop, can_run, free_port, is_root, run_lab, section};

const NODE_SUBNET: &str = "198.18.63.0/24";

/// moto from the checkout's `.venv` (`scripts/install test` puts it there).
fn moto_missing() -> Option<String> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server");
    (!venv.is_file()).then(|| format!("{} is missing (scripts/install test)", venv.display()))
}

/// The rows of a table whose first cell starts with `first`, split on runs of spaces.
fn rows<'a>(section: &'a str, first: &str) -> Vec<Vec<&'a str>> {
    section
        .lines()
        .filter(|line| line.starts_with(first))
        .map(|line| line.split_whitespace().collect())
        .collect()
}

#[test]
fn up_with_aws_serves_the_nlbs_through_the_lab_cloud_and_down_leaves_nothing() {
    let why_not = if !is_root() {
        Some("`portico-lab up` needs root (network namespaces)".to_owned())
    } else if let Err(error) = portico_lab::cloud::haproxy::find_haproxy() {
        Some(error.to_string())
    } else {
        moto_missing()
    };
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
            "aws",
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
        svc.matches(".elb.amazonaws.com").count(),
        2,
        "both Services show their NLB's DNS name:\n{svc}"
    );

    // The nodes' answers: the Local check passes only where the endpoint is; 10256 everywhere.
    let checks = rows(section(&up, "each node's health checks"), "node-");
    let statuses: Vec<(&str, &str, &str)> = checks.iter().map(|r| (r[0], r[1], r[2])).collect();
    assert_eq!(statuses.len(), 6, "{statuses:?}");
    for (node, check, status) in statuses {
        let expected = if check.ends_with(":10256") || node == "node-0" {
            "200"
        } else {
            "503"
        };
        assert_eq!(status, expected, "{node} {check}");
    }

    // The lab cloud's view: the Local NLB has node-0 UP and the rest DOWN; Cluster all UP.
    let view = section(&up, "the lab cloud's view");
    let targets = rows(view, "portico-");
    assert_eq!(targets.len(), 6, "{view}");
    let up_targets = targets.iter().filter(|r| r[4] == "UP").count();
    assert_eq!(up_targets, 4, "3 for Cluster, node-0 for Local:\n{view}");

    // Through the load balancers: Local reaches node-0's pod with the client's own address.
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
    let moved = rows(table, "endpoint moved");
    assert!(
        moved[0][2].parse::<f64>().is_ok(),
        "the move was followed:\n{table}"
    );
    assert!(story.contains("node-2's 10256 /healthz: 503"), "{story}");

    let state = LabState::load(&state_dir).unwrap().expect("state.json");
    let cloud = state.cloud.clone().expect("the lab cloud is recorded");
    assert_eq!(cloud.provider, "aws");
    assert!(
        state.processes.iter().any(|p| p.name == "lab-cloud")
            && state.processes.iter().any(|p| p.name == "moto"),
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
    assert!(
        !Path::new("/etc/netns").join(&state.client_ns).exists(),
        "the client's hosts file is removed"
    );
}
