//! The fake Compute server now lives in the lab crate (`portico_lab::fake_compute`, so
//! `portico-lab up --provider gcp` can run it); this re-exports it for the tests and keeps the
//! helper that starts the real controller against it.

pub use portico_lab::fake_compute::*;

use crate::lab_cluster::{LabCluster, Process};

/// The real controller with `--provider gcp` against the fake (cluster `lab`, node tag
/// `portico-node`).
pub fn spawn_gcp_controller(cluster: &LabCluster, endpoint: &str, name: &str) -> Process {
    cluster.spawn_controller_env(
        name,
        cluster.kubeconfig(),
        &[
            "--provider",
            "gcp",
            "--cluster-name",
            "lab",
            "--gcp-project",
            PROJECT,
            "--gcp-region",
            REGION,
            "--gcp-node-tags",
            "portico-node",
            "--gcp-endpoint-url",
            endpoint,
        ],
        &[],
    )
}
