//! moto in server mode on loopback (the AWS stand-in of the tests and the AWS bench), and the
//! helper script that sets it up and reads its state with boto3 (`tests/aws/moto_state.py`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::cli::free_port;
use crate::lab_cluster::{LabCluster, Process, wait_for};

/// The cluster name the tests give `--cluster-name`.
pub const CLUSTER: &str = "lab";

/// A moto server on a free loopback port, killed when dropped.
pub struct Moto {
    child: Child,
    pub addr: SocketAddr,
    python: PathBuf,
}

impl Moto {
    /// None where moto is not installed (outside CI; under CI `tool` fails the test).
    pub async fn start() -> Option<Moto> {
        let server = crate::tool("moto_server")?;
        let python = crate::tool("python3")?;
        let addr = free_port();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &addr.port().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        wait_for("moto to listen", Duration::from_secs(30), || async {
            std::net::TcpStream::connect(addr).ok().map(|_| ())
        })
        .await;
        Some(Moto {
            child,
            addr,
            python,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn helper(&self, args: &[&str]) -> Value {
        let script = crate::repo_root().join("tests/aws/moto_state.py");
        let output = Command::new(&self.python)
            .arg(script)
            .arg(self.endpoint())
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// A VPC, two subnets tagged for `CLUSTER`, and `instances` EC2 instances (their IDs).
    pub fn setup(&self, instances: usize) -> Vec<String> {
        self.helper(&["setup", CLUSTER, &instances.to_string()])["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap().to_owned())
            .collect()
    }

    /// Every NLB with its tags, target groups (health check, targets) and listeners.
    pub fn state(&self) -> Value {
        self.helper(&["state"])
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real controller with `--provider aws` against `endpoint` (moto, or a proxy in front of
/// it). The SDK reads credentials from the environment; moto accepts any.
pub fn spawn_aws_controller(
    cluster: &LabCluster,
    endpoint: &str,
    name: &str,
    extra_args: &[&str],
) -> Process {
    let mut args = vec![
        "--provider",
        "aws",
        "--cluster-name",
        CLUSTER,
        "--aws-region",
        "us-east-1",
        "--aws-endpoint-url",
        endpoint,
    ];
    args.extend_from_slice(extra_args);
    cluster.spawn_controller_env(
        name,
        cluster.kubeconfig(),
        &args,
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    )
}

/// The sum of the controller's `portico_controller_aws_calls_total` samples whose labels
/// contain every one of `labels` (e.g. `kind="write"`).
pub fn aws_calls(controller: &Process, labels: &[&str]) -> f64 {
    let (_, body) = crate::cli::http_get(controller.admin, "/metrics").unwrap();
    metric_sum(&body, "portico_controller_aws_calls_total{", labels)
}

/// The sum of the samples of one metric (`name{` prefix) whose labels contain every one of `labels`.
pub fn metric_sum(body: &str, prefix: &str, labels: &[&str]) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(prefix) && labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .sum()
}
