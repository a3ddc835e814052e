//! kubectl (v1.32 at /usr/bin/kubectl) against the lab: CRDs installed by `kubectl apply`,
//! and `kubectl get` printing the server's Table columns.

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};

use crate::common::{kubectl, lab, mk_service, write_portico_crds};

fn header_columns(output: &str) -> Vec<String> {
    let header = output.lines().next().unwrap_or_default();
    header
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

async fn apply_crds(lab: &portico_lab::LabApiServer) {
    let dir = tempfile::tempdir().unwrap();
    write_portico_crds(dir.path());
    let (ok, stdout, stderr) = kubectl(lab, &["apply", "-f", dir.path().to_str().unwrap()]).await;
    assert!(ok, "kubectl apply failed: {stderr}");
    assert!(
        stdout.contains(
            "customresourcedefinition.apiextensions.k8s.io/addresspools.portico.dev created"
        ),
        "{stdout}"
    );
}

#[tokio::test]
async fn kubectl_apply_installs_the_crds_and_reapplying_is_unchanged() {
    let lab = lab().await;
    apply_crds(&lab).await;
    let dir = tempfile::tempdir().unwrap();
    write_portico_crds(dir.path());
    let (ok, stdout, stderr) = kubectl(&lab, &["apply", "-f", dir.path().to_str().unwrap()]).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("addresspools.portico.dev unchanged"),
        "{stdout}"
    );
    let (ok, stdout, _) = kubectl(&lab, &["get", "crds"]).await;
    assert!(
        ok && stdout.contains("l2announcements.portico.dev"),
        "{stdout}"
    );
}

#[tokio::test]
async fn kubectl_get_svc_shows_the_cluster_columns_and_pending_external_ip() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    let created = services
        .create(
            &PostParams::default(),
            &mk_service("web", "LoadBalancer", &[80]),
        )
        .await
        .unwrap();
    let node_port = created.spec.as_ref().unwrap().ports.as_ref().unwrap()[0]
        .node_port
        .unwrap();
    let cluster_ip = created.spec.unwrap().cluster_ip.unwrap();
    let (ok, stdout, stderr) = kubectl(&lab, &["get", "svc"]).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        header_columns(&stdout),
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    let row: Vec<&str> = stdout
        .lines()
        .find(|l| l.starts_with("web "))
        .expect("a row for web")
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..5],
        [
            "web",
            "LoadBalancer",
            cluster_ip.as_str(),
            "<pending>",
            &format!("80:{node_port}/TCP")
        ]
    );
}

#[tokio::test]
async fn kubectl_get_addresspools_shows_the_crd_printer_columns() {
    let lab = lab().await;
    apply_crds(&lab).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pool.yaml");
    std::fs::write(
        &file,
        "apiVersion: portico.dev/v1alpha1\nkind: AddressPool\nmetadata:\n  name: lab-pool\nspec:\n  addresses: [\"198.18.0.200-198.18.0.250\"]\n",
    )
    .unwrap();
    let (ok, _, stderr) = kubectl(&lab, &["apply", "-f", file.to_str().unwrap()]).await;
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = kubectl(&lab, &["get", "addresspools"]).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        header_columns(&stdout),
        [
            "NAME",
            "AUTO ASSIGN",
            "AVOID BUGGY IPS",
            "ADDRESSES",
            "ASSIGNED IPV4",
            "AVAILABLE IPV4",
            "AGE"
        ]
    );
    assert!(
        stdout
            .contains("lab-pool   true          false             [\"198.18.0.200-198.18.0.250\"]"),
        "{stdout}"
    );
}

#[tokio::test]
async fn kubectl_server_side_apply_replaces_the_ports_a_manager_applies() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("svc.yaml");
    let manifest = |port: u16| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: app\nspec:\n  type: NodePort\n  ports:\n  - name: http\n    port: {port}\n"
        )
    };
    std::fs::write(&file, manifest(80)).unwrap();
    let (ok, stdout, stderr) = kubectl(
        &lab,
        &["apply", "--server-side", "-f", file.to_str().unwrap()],
    )
    .await;
    assert!(
        ok && stdout.contains("serverside-applied"),
        "{stdout}{stderr}"
    );
    std::fs::write(&file, manifest(8080)).unwrap();
    let (ok, _, stderr) = kubectl(
        &lab,
        &["apply", "--server-side", "-f", file.to_str().unwrap()],
    )
    .await;
    assert!(ok, "{stderr}");
    let (ok, stdout, _) = kubectl(
        &lab,
        &["get", "svc", "app", "-o", "jsonpath={.spec.ports[*].port}"],
    )
    .await;
    assert!(ok);
    assert_eq!(
        stdout, "8080",
        "the port list is replaced by the manager's keyed entries"
    );
}

#[tokio::test]
async fn kubectl_discovers_short_names() {
    let lab = lab().await;
    let (ok, stdout, stderr) = kubectl(&lab, &["api-resources"]).await;
    assert!(ok, "{stderr}");
    let services = stdout
        .lines()
        .find(|l| l.starts_with("services "))
        .expect("services listed");
    assert!(
        services.split_whitespace().any(|c| c == "svc"),
        "{services}"
    );
}

#[tokio::test]
async fn kubectl_get_watch_prints_a_row_for_each_later_change() {
    let lab = lab().await;
    let services: Api<Service> = Api::namespaced(lab.client().await.unwrap(), "default");
    let watching = kubectl(&lab, &["get", "svc", "--watch", "--request-timeout=3s"]);
    let creating = async {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        services
            .create(
                &PostParams::default(),
                &mk_service("late", "NodePort", &[80]),
            )
            .await
            .unwrap();
    };
    let ((_, stdout, stderr), ()) = tokio::join!(watching, creating);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("NAME")).count(),
        1,
        "{stdout}{stderr}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("late ") && l.contains("NodePort")),
        "{stdout}{stderr}"
    );
}

#[tokio::test]
async fn kubectl_server_dry_run_stores_nothing() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cm.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dry\ndata:\n  a: b\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = kubectl(
        &lab,
        &["apply", "--dry-run=server", "-f", file.to_str().unwrap()],
    )
    .await;
    assert!(
        ok && stdout.contains("(server dry run)"),
        "{stdout}{stderr}"
    );
    let (ok, _, stderr) = kubectl(&lab, &["get", "configmap", "dry"]).await;
    assert!(!ok && stderr.contains("not found"), "{stderr}");
}

#[tokio::test]
async fn kubectl_get_events_shows_events_recorded_through_events_k8s_io() {
    use kube::Resource;
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc = services
        .create(
            &PostParams::default(),
            &mk_service("web", "LoadBalancer", &[80]),
        )
        .await
        .unwrap();
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "portico-controller".into(),
            instance: None,
        },
    );
    let event = Event {
        type_: EventType::Warning,
        reason: "SyncLoadBalancerFailed".into(),
        note: Some("no pool has a free address".into()),
        action: "Ensure".into(),
        secondary: None,
    };
    recorder
        .publish(&event, &svc.object_ref(&()))
        .await
        .unwrap();
    let (ok, stdout, stderr) = kubectl(&lab, &["get", "events"]).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        header_columns(&stdout),
        ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    let row = stdout.lines().nth(1).expect("one event row");
    assert!(
        row.contains("Warning   SyncLoadBalancerFailed   service/web   no pool has a free address"),
        "{row}"
    );
}

#[tokio::test]
async fn kubectl_client_side_apply_updates_service_ports_with_a_strategic_merge_patch() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("svc.yaml");
    let manifest = |second: u16| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: csa\nspec:\n  type: LoadBalancer\n  ports:\n  - name: http\n    port: 80\n  - name: extra\n    port: {second}\n"
        )
    };
    std::fs::write(&file, manifest(443)).unwrap();
    let (ok, _, stderr) = kubectl(&lab, &["apply", "-f", file.to_str().unwrap()]).await;
    assert!(ok, "{stderr}");
    let (_, before, _) = kubectl(
        &lab,
        &[
            "get",
            "svc",
            "csa",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ],
    )
    .await;
    std::fs::write(&file, manifest(8443)).unwrap();
    let (ok, stdout, stderr) = kubectl(&lab, &["apply", "-f", file.to_str().unwrap()]).await;
    assert!(
        ok && stdout.contains("service/csa configured"),
        "{stdout}{stderr}"
    );
    let (_, ports, _) = kubectl(
        &lab,
        &["get", "svc", "csa", "-o", "jsonpath={.spec.ports[*].port}"],
    )
    .await;
    assert_eq!(ports, "80 8443");
    let (_, after, _) = kubectl(
        &lab,
        &[
            "get",
            "svc",
            "csa",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ],
    )
    .await;
    assert_eq!(before, after, "the untouched port keeps its nodePort");
}

#[tokio::test]
async fn kubectl_apply_refuses_unknown_and_invalid_fields_of_a_custom_resource() {
    let lab = lab().await;
    apply_crds(&lab).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pool.yaml");
    let pool = |spec: &str| {
        format!(
            "apiVersion: portico.dev/v1alpha1\nkind: AddressPool\nmetadata:\n  name: p\nspec:\n{spec}"
        )
    };
    std::fs::write(
        &file,
        pool("  addresses: [\"198.18.0.200-198.18.0.250\"]\n  autoAsign: true\n"),
    )
    .unwrap();
    let (ok, _, stderr) = kubectl(&lab, &["apply", "-f", file.to_str().unwrap()]).await;
    assert!(
        !ok && stderr.contains("strict decoding error: unknown field \"spec.autoAsign\""),
        "{stderr}"
    );
    std::fs::write(&file, pool("  addresses: [\"not an address\"]\n")).unwrap();
    let (ok, _, stderr) = kubectl(&lab, &["apply", "-f", file.to_str().unwrap()]).await;
    // kubectl words a 422 itself from the Status details: `The AddressPool "p" is invalid: ...`.
    assert!(
        !ok && stderr.contains("AddressPool \"p\" is invalid: spec.addresses[0]"),
        "{stderr}"
    );
}

#[tokio::test]
async fn kubectl_explain_describes_built_in_and_custom_kinds() {
    let lab = lab().await;
    let (ok, stdout, stderr) = kubectl(&lab, &["explain", "service.spec.sessionAffinity"]).await;
    assert!(ok, "kubectl explain failed: {stderr}");
    assert!(stdout.contains("FIELD: sessionAffinity"), "{stdout}");
    assert!(stdout.contains("ClientIP"), "{stdout}");
    let (ok, stdout, stderr) = kubectl(&lab, &["explain", "leases.spec"]).await;
    assert!(ok && stdout.contains("renewTime"), "{stdout}{stderr}");
    apply_crds(&lab).await;
    let (ok, stdout, stderr) = kubectl(&lab, &["explain", "addresspools.spec"]).await;
    assert!(ok, "kubectl explain failed: {stderr}");
    assert!(stdout.contains("addresses"), "{stdout}");
}
