//! Reconcile logs carry the Service they are about, also while many reconciles run at once.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use portico_tests::lab_cluster::{LabCluster, mk_lb_service, wait_for};

const SERVICES: usize = 48;

/// The line without ANSI colour sequences (`ESC [ ... m`), which the text format adds.
fn strip_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reconciles_log_their_own_service() {
    let cluster = LabCluster::start().await;
    cluster.create_pool("lab", &["198.19.8.0/24"], true).await;
    let controller = cluster.spawn_controller("controller", &["--log-format", "text"]);
    join_all((0..SERVICES).map(|i| {
        let services = cluster.services("default");
        async move {
            services
                .create(
                    &Default::default(),
                    &mk_lb_service(&format!("svc-{i}"), 80, &[]),
                )
                .await
                .expect("Service created");
        }
    }))
    .await;
    let mut holder = HashMap::new();
    for i in 0..SERVICES {
        let name = format!("svc-{i}");
        let ips = cluster.wait_for_ingress("default", &name).await;
        holder.insert(ips[0].clone(), name);
    }
    let lines = wait_for(
        "a log line for every status written",
        Duration::from_secs(10),
        || async {
            let logs = controller.logs();
            let lines: Vec<String> = logs
                .lines()
                .map(strip_colours)
                .filter(|l| l.contains("wrote the status"))
                .collect();
            (lines.len() >= SERVICES).then_some(lines)
        },
    )
    .await;
    for line in lines {
        // `reconcile{namespace=default name=svc-7}: ...: wrote the status ips=[198.19.8.7]`
        assert_eq!(
            line.matches("reconcile{").count(),
            1,
            "one reconcile span, not another's around it: {line}"
        );
        let ip = line
            .rsplit_once("ips=[")
            .and_then(|(_, rest)| rest.split(']').next())
            .unwrap_or_else(|| panic!("no ips in {line}"));
        let expected = &holder[ip];
        assert!(
            line.contains(&format!("reconcile{{namespace=default name={expected}}}")),
            "{ip} belongs to {expected}: {line}"
        );
    }
}
