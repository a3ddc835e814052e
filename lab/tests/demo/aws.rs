//! `portico-lab up --provider aws`: moto stands in for AWS, the lab cloud (HAProxy in the cloud
//! namespace) serves the NLBs the controller made, and the client reaches them by their DNS
//! names. The printed tables must show the Local Service's load balancer sending only to the
//! node with the endpoint, with the client's own address, and `down` must leave nothing behind.

use std::path::Path;

use crate::cloud::{CloudDemo, rows};
use crate::section;

/// moto from the checkout's `.venv` (`scripts/install test` puts it there).
fn moto_missing() -> Option<String> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server");
    (!venv.is_file()).then(|| format!("{} is missing (scripts/install test)", venv.display()))
}

#[test]
fn up_with_aws_serves_the_nlbs_through_the_lab_cloud_and_down_leaves_nothing() {
    let missing = match portico_lab::cloud::haproxy::find_haproxy() {
        Err(error) => Some(error.to_string()),
        Ok(_) => moto_missing(),
    };
    let demo = CloudDemo {
        provider: "aws",
        node_subnet: "198.18.63.0/24",
        external: ".elb.amazonaws.com",
        cloud_api: "moto",
    };
    let Some(state) = demo.run(
        missing,
        |up| {
            // The nodes' answers: the Local check passes only where the endpoint is; 10256
            // everywhere.
            let checks = rows(section(up, "each node's health checks"), "node-");
            let statuses: Vec<(&str, &str, &str)> =
                checks.iter().map(|r| (r[0], r[1], r[2])).collect();
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
            let view = section(up, "the lab cloud's view");
            let targets = rows(view, "portico-");
            assert_eq!(targets.len(), 6, "{view}");
            let up_targets = targets.iter().filter(|r| r[4] == "UP").count();
            assert_eq!(up_targets, 4, "3 for Cluster, node-0 for Local:\n{view}");
        },
        |table| {
            let moved = rows(table, "endpoint moved");
            assert!(
                moved[0][2].parse::<f64>().is_ok(),
                "the move was followed:\n{table}"
            );
        },
    ) else {
        return;
    };
    assert!(
        !Path::new("/etc/netns").join(&state.client_ns).exists(),
        "the client's hosts file is removed"
    );
}
