//! `portico-lab up --provider gcp`: the fake Compute server stands in for GCP, the GCP lab cloud
//! (checks and ECMP routes in the cloud namespace) serves the target pools the controller made,
//! and the client reaches each forwarding rule's IP. The printed tables must show the Local
//! Service's rule reaching only the node with the endpoint, with the client's own address, the
//! health-check story must lose no request in the rolling update, and `down` must leave nothing.

use crate::cloud::{CloudDemo, rows};
use crate::section;

#[test]
fn up_with_gcp_serves_the_forwarding_rules_through_the_lab_cloud_and_down_leaves_nothing() {
    let demo = CloudDemo {
        provider: "gcp",
        node_subnet: "198.18.96.0/24",
        external: " 198.51.100.",
        cloud_api: "fake-compute",
    };
    demo.run(
        None,
        |up| {
            // The lab cloud's view through getHealth: Cluster all HEALTHY, Local only node-0.
            let view = section(up, "the lab cloud's view of member health");
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
        },
        |_| {},
    );
}
