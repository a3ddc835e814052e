//! The lab cloud: a health-checking load balancer in the lab's cloud namespace that obeys the
//! state of the cloud API Portico's controller wrote (moto for AWS), so the health-check
//! integration is proven with packets.
//!
//! ```text
//!   client ns ── 203.0.113.0/24 ── cloud ns (HAProxy: listeners on 198.51.100.x) ── node subnet ── nodes
//!                                     ▲ aws_run: moto_state.py watch (1 s) ─▶ aws::plan ─▶ haproxy
//!                                     └ /etc/netns/<client ns>/hosts: each NLB's DNS name
//! ```
//! Runs in the host namespace (moto listens on its loopback); HAProxy runs in the cloud namespace.
//! `portico-lab cloud --provider aws ...` runs it detached for the demo; tests start it in-process.
//!
//! GCP (`gcp`, `checker`): `portico-lab gcp-cloud` runs inside the cloud namespace, reads the
//! fake Compute server, probes every target-pool member with its own checker and routes each
//! forwarding rule's IP to the healthy members (pass-through, ECMP); `cloud --provider gcp`
//! starts it there.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::{Args as ClapArgs, ValueEnum};
use ipnet::Ipv4Net;

pub mod aws;
pub mod aws_run;
pub mod checker;
pub mod gcp;
pub mod haproxy;

/// What can go wrong running the lab cloud.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("haproxy: {0}")]
    Haproxy(String),
    #[error("reading the cloud API: {0}")]
    CloudApi(String),
}

impl CloudError {
    /// A short, stable name for metrics and test assertions.
    pub fn label(&self) -> &'static str {
        match self {
            CloudError::Netns(_) => "netns",
            CloudError::Io { .. } => "io",
            CloudError::Haproxy(_) => "haproxy",
            CloudError::CloudApi(_) => "cloud_api",
        }
    }
}

/// The cloud APIs the lab cloud can follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CloudProvider {
    /// ELBv2 Network Load Balancers as moto holds them.
    Aws,
    /// Target-pool network load balancers as the fake Compute server holds them.
    Gcp,
}

/// Flags of `portico-lab cloud`.
#[derive(ClapArgs, Debug)]
pub struct CloudArgs {
    /// Whose API state to follow.
    #[arg(long, env = "PORTICO_LAB_CLOUD_PROVIDER", value_enum)]
    pub provider: CloudProvider,
    /// The cloud API's endpoint (moto's URL for aws).
    #[arg(long, env = "PORTICO_LAB_CLOUD_ENDPOINT")]
    pub endpoint: String,
    /// The Python with boto3 (moto's virtual environment) that reads moto (aws).
    #[arg(long, env = "PORTICO_LAB_CLOUD_PYTHON", default_value = "python3")]
    pub python: PathBuf,
    /// The lab's cloud namespace, where the load balancer runs.
    #[arg(long, env = "PORTICO_LAB_CLOUD_NETNS")]
    pub cloud_netns: String,
    /// The client's namespace, whose hosts file gets the load balancers' DNS names.
    #[arg(long, env = "PORTICO_LAB_CLIENT_NETNS")]
    pub client_netns: String,
    /// An instance and the lab node IP it is, `i-0123=198.18.0.10`; repeat for each node.
    #[arg(long = "instance", env = "PORTICO_LAB_CLOUD_INSTANCES", value_delimiter = ',', value_parser = parse_instance)]
    pub instances: Vec<(String, Ipv4Addr)>,
    /// Where load balancers take their addresses from.
    #[arg(
        long,
        env = "PORTICO_LAB_CLOUD_LB_RANGE",
        default_value = "198.51.100.0/24"
    )]
    pub load_balancer_range: Ipv4Net,
    /// Directory for HAProxy's config, sockets and the lab cloud's view.
    #[arg(long, env = "PORTICO_LAB_CLOUD_DIR")]
    pub dir: PathBuf,
}

fn parse_instance(value: &str) -> Result<(String, Ipv4Addr), String> {
    let (id, ip) = value
        .split_once('=')
        .ok_or_else(|| format!("--instance {value:?} is not ID=IP"))?;
    let ip = ip
        .parse()
        .map_err(|error| format!("--instance {value:?}: {error}"))?;
    Ok((id.to_owned(), ip))
}

/// `portico-lab cloud`: runs until SIGTERM or SIGINT; prints `lab cloud ready` once serving.
pub async fn run(args: CloudArgs) -> anyhow::Result<()> {
    match args.provider {
        CloudProvider::Gcp => gcp::run_in_cloud_netns(args).await,
        CloudProvider::Aws => {
            let config = aws_run::AwsCloudConfig {
                moto_endpoint: args.endpoint,
                python: args.python,
                cloud_ns: args.cloud_netns,
                client_ns: args.client_netns,
                instances: args.instances.into_iter().collect::<BTreeMap<_, _>>(),
                load_balancer_range: args.load_balancer_range,
                dir: args.dir,
            };
            let cloud = aws_run::AwsCloud::start(config).await?;
            {
                use std::io::Write;
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "lab cloud ready")?;
                stdout.flush()?;
            }
            portico_runtime::shutdown::signal().await;
            cloud.stop().await;
            Ok(())
        }
    }
}
