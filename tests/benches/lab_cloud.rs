//! Lab cloud benchmark (a bench, not a timed test): how fast a cloud load balancer built by
//! Portico follows the agents' health checks, AWS (moto + HAProxy) and GCP (the fake Compute
//! server + `portico-lab gcp-cloud`) side by side in one table, with the shortest checks the
//! annotations allow and with the providers' defaults. Root only (network namespaces); AWS needs
//! moto and HAProxy (`scripts/install test`). Release binaries:
//!
//!   cargo build --release -p portico-lab -p portico-controller -p portico-agent
//!   cargo bench -p portico-tests --bench lab_cloud                     # both: a few minutes
//!   BENCH_CHECKS=short cargo bench -p portico-tests --bench lab_cloud  # short checks only
//!
//! (`--profile dev` runs target/debug's binaries instead: the figures are the checks', not the
//! binaries' speed.)
//!
//! `BENCH_CHECKS`: `short`, `default` or `both` (the default). Each cell is a fresh 2-node lab
//! cloud with one Local Service:
//! - an endpoint move (node-0 → node-1) under a request every 50 ms: from the move until the
//!   lab cloud has node-1 alone in service, to the first answer from node-1, and the failed
//!   requests;
//! - a rolling update (node-0 → node-1) under a request every 20 ms, the old pod terminating for
//!   interval × (unhealthy + 1) + 2 s: the failed requests (the design says 0).

use std::time::Duration;

use portico_lab::demo::report::render_table;
use portico_tests::cloud_lab::gcp::{ROLLING_CHECKS, SHORT_CHECKS};
use portico_tests::cloud_lab::measure::{Move, measure_move, run_rolling_update};
use portico_tests::cloud_lab::{CloudLab, Provider, fast_checks};

/// One cell's checks: the annotations for the move and for the rolling update, and the rolling
/// update's (interval seconds, unhealthy threshold).
struct Checks {
    label: &'static str,
    moving: Vec<(&'static str, &'static str)>,
    rolling: Vec<(&'static str, &'static str)>,
    grace: (u64, u64),
    /// interval / timeout / healthy / unhealthy, as the table prints them.
    shown: &'static str,
}

fn checks(provider: Provider, short: bool) -> Checks {
    match (provider, short) {
        (Provider::Aws, true) => Checks {
            label: "short",
            moving: fast_checks(provider),
            rolling: fast_checks(provider),
            grace: (5, 2),
            shown: "5s/2s/2/2",
        },
        // A Local Service's target group as the AWS load balancer controller makes it.
        (Provider::Aws, false) => Checks {
            label: "default",
            moving: Vec::new(),
            rolling: Vec::new(),
            grace: (10, 2),
            shown: "10s/6s/2/2",
        },
        // The rolling update's GCP checks are not the shortest: with 1 s probes given 1 s, a
        // loaded machine can time out the new node twice in a row (see lab_cloud_gcp's test).
        (Provider::Gcp, true) => Checks {
            label: "short",
            moving: SHORT_CHECKS.to_vec(),
            rolling: ROLLING_CHECKS.to_vec(),
            grace: (2, 3),
            shown: "move 1s/1s/1/2, rolling 2s/2s/1/3",
        },
        // cloud-provider-gcp's.
        (Provider::Gcp, false) => Checks {
            label: "default",
            moving: Vec::new(),
            rolling: Vec::new(),
            grace: (8, 3),
            shown: "8s/1s/1/3",
        },
    }
}

/// One cell's figures.
struct Figures {
    checks: &'static str,
    moved: Move,
    rolling: (usize, usize),
}

/// A fresh lab cloud on `subnet`: the move, then the rolling update (which stops node-0's pod).
async fn measure(provider: Provider, short: bool, subnet: &str) -> Option<Figures> {
    let checks = checks(provider, short);
    eprintln!("lab_cloud: {provider:?}, {} checks", checks.label);
    let mut lab = CloudLab::start(provider, subnet, 2).await?;
    lab.create_service("moving", "Local", &checks.moving).await;
    let moved = measure_move(&lab, "moving", 0, 1).await;
    eprintln!("lab_cloud: {provider:?}, {} checks: {moved}", checks.label);
    let rolling = run_rolling_update(&mut lab, &checks.rolling, checks.grace).await;
    lab.teardown().await;
    Some(Figures {
        checks: checks.shown,
        moved,
        rolling,
    })
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn rows(label: &str, aws: &Figures, gcp: &Figures) -> Vec<Vec<String>> {
    let row = |figure: &str, f: &dyn Fn(&Figures) -> String| {
        vec![label.to_owned(), figure.to_owned(), f(aws), f(gcp)]
    };
    vec![
        row("checks (interval/timeout/healthy/unhealthy)", &|x| {
            x.checks.to_owned()
        }),
        row("move: new node alone in service", &|x| {
            secs(x.moved.in_service)
        }),
        row("move: first answer from the new node", &|x| {
            secs(x.moved.first_answer)
        }),
        row("move: last failed request started", &|x| {
            secs(x.moved.last_failure)
        }),
        row("move: failed / sent (every 50 ms)", &|x| {
            format!("{} / {}", x.moved.failed, x.moved.sent)
        }),
        row("rolling update: failed / sent (every 20 ms)", &|x| {
            format!("{} / {}", x.rolling.0, x.rolling.1)
        }),
    ]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !portico_tests::is_root() {
        eprintln!("lab_cloud: skipped: needs root (network namespaces)");
        return;
    }
    let settings: &[bool] = match std::env::var("BENCH_CHECKS").as_deref() {
        Ok("short") => &[true],
        Ok("default") => &[false],
        Ok("both") | Err(_) => &[true, false],
        Ok(other) => {
            eprintln!("lab_cloud: BENCH_CHECKS={other}: expected short, default or both");
            std::process::exit(2);
        }
    };
    let mut table = Vec::new();
    for &short in settings {
        // Subnets of their own, apart from the agent tests' (which may run at the same time).
        let (aws_subnet, gcp_subnet) = if short {
            ("198.18.62.0/24", "198.18.94.0/24")
        } else {
            ("198.18.64.0/24", "198.18.95.0/24")
        };
        let Some(aws) = measure(Provider::Aws, short, aws_subnet).await else {
            eprintln!("lab_cloud: skipped: the AWS lab cloud needs moto, HAProxy and the binaries");
            return;
        };
        let gcp = measure(Provider::Gcp, short, gcp_subnet)
            .await
            .expect("the GCP lab cloud needs nothing from outside the workspace");
        let label = if short { "short" } else { "default" };
        table.extend(rows(label, &aws, &gcp));
    }
    println!(
        "\nlab cloud: a Local Service's load balancer, 2 nodes; times from the change\n\n{}",
        render_table(&["checks", "figure", "AWS", "GCP"], &table)
    );
}
