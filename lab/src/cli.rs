//! The `portico-lab` command line: `apiserver` runs the embedded API server in the foreground;
//! the hidden `lease-holder` campaigns for a Lease and reports on stdout, so tests can prove
//! leader election across real processes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand};
use ipnet::Ipv4Net;
use portico_runtime::LogArgs;
use portico_runtime::leader::{LeaderElectionConfig, LeaderElector};

use crate::apiserver::{ApiServerConfig, LabApiServer};

#[derive(Parser, Debug)]
#[command(
    name = "portico-lab",
    about = "Portico's lab: an embedded Kubernetes API server, a network-namespace cluster, and `up`/`down`, the one-command demo."
)]
pub struct Args {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the lab's Kubernetes API server until SIGTERM or SIGINT.
    Apiserver(ApiserverArgs),
    /// Campaign for a Lease and print `leading <identity>` / `lost <identity>` (for tests).
    #[command(hide = true)]
    LeaseHolder(LeaseHolderArgs),
    /// Answer every TCP connection, HTTP GET and UDP datagram with `client_address=<peer>`.
    #[command(hide = true)]
    EchoServer(crate::netns::echo::EchoServerArgs),
    /// Connect (from inside a namespace), send one request and print the reply.
    #[command(hide = true)]
    Probe(crate::netns::probe::ProbeArgs),
    /// Build the network-namespace cluster, print its layout, hold it until SIGTERM/SIGINT.
    #[command(hide = true)]
    Netns(crate::netns::hold::NetnsArgs),
    /// Serve the fake Compute Engine API (GCP) on `--listen` until SIGTERM or SIGINT.
    #[command(hide = true)]
    FakeCompute(crate::fake_compute::FakeComputeArgs),
    /// Run the GCP lab cloud (inside the cloud namespace): health checks and pass-through
    /// routes for the Compute API's forwarding rules and target pools.
    #[command(hide = true)]
    GcpCloud(crate::cloud::gcp::GcpCloudArgs),
    /// Start the demo lab in the background (root): namespaces, API server, controller, agents,
    /// echo pods, two LoadBalancer Services; then show what a client sees.
    Up(crate::demo::UpArgs),
    /// Stop everything `up` started and remove its namespaces and state.
    Down(crate::demo::StateDirArg),
    /// Replay a tutorial on the running lab with real traffic.
    Scenario(crate::demo::ScenarioArgs),
    /// Run kubectl with the running lab's kubeconfig.
    Kubectl(crate::demo::KubectlArgs),
    /// Run the lab cloud: a health-checking load balancer in the cloud namespace that follows
    /// the cloud API's state (moto for aws), until SIGTERM/SIGINT.
    #[command(hide = true)]
    Cloud(crate::cloud::CloudArgs),
}

#[derive(ClapArgs, Debug)]
pub struct ApiserverArgs {
    /// Address to serve HTTPS on; repeat for more. The first is written into the kubeconfig.
    #[arg(
        long,
        env = "PORTICO_LAB_LISTEN",
        value_delimiter = ',',
        default_value = "127.0.0.1:6443"
    )]
    pub listen: Vec<SocketAddr>,
    /// Where to write the kubeconfig (with the CA and a bearer token) for this server.
    #[arg(long, env = "PORTICO_LAB_KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// The range Services' clusterIPs come from.
    #[arg(long, env = "PORTICO_LAB_SERVICE_CIDR", default_value = "10.96.0.0/16")]
    pub service_cidr: Ipv4Net,
    /// The nodePort range, as `--service-node-port-range` of kube-apiserver.
    #[arg(
        long,
        env = "PORTICO_LAB_NODE_PORT_RANGE",
        default_value = "30000-32767"
    )]
    pub service_node_port_range: String,
    /// How many changes a watch may resume across before it is told 410 Gone.
    #[arg(long, env = "PORTICO_LAB_WATCH_HISTORY", default_value_t = 10_000)]
    pub watch_history: usize,
}

#[derive(ClapArgs, Debug)]
pub struct LeaseHolderArgs {
    /// Kubeconfig of the API server holding the Lease.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// Namespace of the Lease.
    #[arg(long, env = "PORTICO_LEASE_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Name of the Lease.
    #[arg(long, env = "PORTICO_LEASE_NAME")]
    pub name: String,
    /// This candidate's identity, written as the Lease's holder.
    #[arg(long, env = "PORTICO_LEASE_IDENTITY")]
    pub identity: String,
    /// Lease duration in milliseconds.
    #[arg(long, env = "PORTICO_LEASE_DURATION_MS", default_value_t = 15_000)]
    pub lease_duration_ms: u64,
    /// Renew deadline in milliseconds.
    #[arg(
        long,
        env = "PORTICO_LEASE_RENEW_DEADLINE_MS",
        default_value_t = 10_000
    )]
    pub renew_deadline_ms: u64,
    /// Retry period in milliseconds.
    #[arg(long, env = "PORTICO_LEASE_RETRY_PERIOD_MS", default_value_t = 2_000)]
    pub retry_period_ms: u64,
}

fn parse_range(range: &str) -> anyhow::Result<std::ops::RangeInclusive<u16>> {
    let (start, end) = range
        .split_once('-')
        .ok_or_else(|| anyhow::anyhow!("--service-node-port-range {range:?} is not START-END"))?;
    let (start, end): (u16, u16) = (start.trim().parse()?, end.trim().parse()?);
    anyhow::ensure!(start <= end, "--service-node-port-range {range:?} is empty");
    Ok(start..=end)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    args.log.init()?;
    match args.command {
        Command::Apiserver(a) => {
            let config = ApiServerConfig {
                listen: a.listen,
                kubeconfig: Some(a.kubeconfig),
                service_cidr: a.service_cidr,
                node_port_range: parse_range(&a.service_node_port_range)?,
                watch_history: a.watch_history,
                ..ApiServerConfig::default()
            };
            let server = LabApiServer::start(config).await?;
            eprintln!(
                "portico-lab apiserver: serving {} (kubeconfig {})",
                server.urls().join(", "),
                server.kubeconfig_path().display()
            );
            portico_runtime::shutdown::signal().await;
            server.shutdown().await;
            Ok(())
        }
        Command::LeaseHolder(a) => lease_holder(a).await,
        Command::EchoServer(a) => crate::netns::echo::run(a).await,
        Command::Probe(a) => crate::netns::probe::run(a).await,
        Command::Netns(a) => crate::netns::hold::run(a).await,
        Command::FakeCompute(a) => crate::fake_compute::serve(a).await,
        Command::GcpCloud(a) => crate::cloud::gcp::run(a).await,
        Command::Up(a) => crate::demo::up::up(a).await,
        Command::Down(a) => crate::demo::down(&a.state_dir),
        Command::Scenario(a) => match a.scenario {
            crate::demo::Scenario::SourceIp => {
                crate::demo::scenario::source_ip(&a.state.state_dir).await
            }
            crate::demo::Scenario::Failover => {
                crate::demo::failover::failover(&a.state.state_dir).await
            }
            crate::demo::Scenario::HealthChecks => {
                crate::demo::health_checks::health_checks(&a.state.state_dir).await
            }
        },
        Command::Kubectl(a) => crate::demo::kubectl(a),
        Command::Cloud(a) => crate::cloud::run(a).await,
    }
}

async fn lease_holder(a: LeaseHolderArgs) -> anyhow::Result<()> {
    let kubeconfig = kube::config::Kubeconfig::read_from(&a.kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = kube::Client::try_from(config)?;
    let election = LeaderElectionConfig {
        lease_duration: Duration::from_millis(a.lease_duration_ms),
        renew_deadline: Duration::from_millis(a.renew_deadline_ms),
        retry_period: Duration::from_millis(a.retry_period_ms),
    };
    let elector = LeaderElector::new(client, &a.namespace, &a.name, &a.identity, election);
    let handle = elector.spawn();
    let mut leading = handle.leading();
    let report = async {
        while leading.changed().await.is_ok() {
            let line = if *leading.borrow() {
                format!("leading {}", a.identity)
            } else {
                format!("lost {}", a.identity)
            };
            // One short line per change, flushed: the reader is a pipe, not a terminal.
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            if writeln!(stdout, "{line}")
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return;
            }
        }
    };
    tokio::select! {
        () = report => {}
        () = portico_runtime::shutdown::signal() => {}
    }
    // SIGTERM hands the lease over at once; SIGKILL leaves it to expire.
    handle.stop().await;
    Ok(())
}
