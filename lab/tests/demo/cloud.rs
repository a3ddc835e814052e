//! What `portico-lab up --provider aws` and `--provider gcp` share: the same two echo Services
//! behind the lab cloud, the same client view, the same health-check story and the same `down`.
//! Each provider's test adds only what its cloud prints of its own.

use std::process::Command;

use portico_lab::demo::state::LabState;

use crate::{Lab, can_run, is_root, run_lab, section};

/// One provider's demo: what `up` is given and what tells its cloud apart.
pub struct CloudDemo<'a> {
    pub provider: &'a str,
    /// Its own /24, so that it runs beside the other namespace tests.
    pub node_subnet: &'a str,
    /// What each Service's EXTERNAL-IP cell holds in `kubectl get svc` (a DNS suffix, a prefix).
    pub external: &'a str,
    /// The process that stands in for the cloud's API (`moto`, `fake-compute`).
    pub cloud_api: &'a str,
}

/// The rows of a table whose first cell starts with `first`, split on runs of spaces.
pub fn rows<'a>(section: &'a str, first: &str) -> Vec<Vec<&'a str>> {
    section
        .lines()
        .filter(|line| line.starts_with(first))
        .map(|line| line.split_whitespace().collect())
        .collect()
}

impl CloudDemo<'_> {
    /// `up`, the shared checks with the provider's own (`check_up` on what `up` printed,
    /// `check_story` on the health-check story's table), then `down`. Returns the state `up` left
    /// for the provider's own checks of what `down` removed; None when the test cannot run here
    /// (not root, or `missing` names what the provider's cloud needs).
    pub fn run(
        &self,
        missing: Option<String>,
        check_up: impl FnOnce(&str),
        check_story: impl FnOnce(&str),
    ) -> Option<LabState> {
        let why_not = if is_root() {
            missing
        } else {
            Some("`portico-lab up` needs root (network namespaces)".to_owned())
        };
        if !can_run(why_not) {
            return None;
        }
        let lab = Lab::new();
        let up = lab.up(self.node_subnet, &["--provider", self.provider]);
        let svc = section(&up, "kubectl get svc");
        assert_eq!(
            svc.matches(self.external).count(),
            2,
            "both Services show their load balancer's address:\n{svc}"
        );
        check_up(&up);
        assert_client_view(section(&up, "what the client"));

        // The health-check story: the rolling update loses nothing; the tainted node leaves.
        let (_, story) = run_lab(&["scenario", "health-checks"], &lab.state_dir);
        println!("{story}");
        let table = section(&story, "what the client saw");
        let rolling = rows(table, "rolling update");
        assert_eq!(rolling.len(), 1, "{table}");
        assert_eq!(rolling[0].last(), Some(&"0"), "no request lost:\n{table}");
        check_story(table);
        assert!(story.contains("node-2's 10256 /healthz: 503"), "{story}");

        let state = LabState::load(&lab.state_dir).unwrap().expect("state.json");
        assert_eq!(
            state.cloud.as_ref().map(|c| c.provider.as_str()),
            Some(self.provider),
            "the lab cloud is recorded"
        );
        assert!(
            state.processes.iter().any(|p| p.name == "lab-cloud")
                && state.processes.iter().any(|p| p.name == self.cloud_api),
            "{:?}",
            state.processes
        );
        let (_, down) = run_lab(&["down"], &lab.state_dir);
        println!("{down}");
        for process in &state.processes {
            assert!(!process.alive(), "{process:?} still runs after down");
        }
        let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
        let namespaces = String::from_utf8_lossy(&namespaces.stdout);
        assert!(!namespaces.contains(&state.prefix), "{namespaces}");
        Some(state)
    }
}

/// Through the load balancers: Local reaches node-0's pod with the client's own address.
fn assert_client_view(client: &str) {
    let local = rows(client, "echo-local ");
    assert_eq!(local.len(), 6, "{client}");
    for row in &local {
        assert_eq!((row[3], row[4]), ("node-0", "203.0.113.2"), "{client}");
    }
    let cluster = rows(client, "echo-cluster ");
    assert_eq!(cluster.len(), 6, "{client}");
    assert!(cluster.iter().all(|row| row[3] == "node-0"), "{client}");
}
