use std::time::Duration;

use super::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn loopback_servers() -> (ServiceHealthServers, SyncHealth) {
    let sync = SyncHealth::new(Duration::from_secs(60));
    (
        ServiceHealthServers::new(vec!["127.0.0.1".parse().unwrap()], sync.clone()),
        sync,
    )
}

async fn get(port: u16, path: &str) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
}

#[test]
fn answers_match_kube_proxy() {
    let key = ServiceKey::new("default", "echo");
    let (status, body) = service_health_answer(&key, 2, true);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"service":{"namespace":"default","name":"echo"},"localEndpoints":2,"serviceProxyHealthy":true}"#
    );
    assert_eq!(
        service_health_answer(&key, 0, true).0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        service_health_answer(&key, 3, false).0,
        StatusCode::SERVICE_UNAVAILABLE,
        "stale rules fail the check"
    );
}

#[tokio::test]
async fn any_path_answers_200_with_local_endpoints_and_503_without() {
    let (mut servers, _) = loopback_servers();
    let key = ServiceKey::new("default", "echo");
    let port = free_port();
    assert!(
        servers
            .sync_services(&BTreeMap::from([(key.clone(), port)]))
            .await
            .is_empty()
    );

    let response = get(port, "/healthz").await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-load-balancing-endpoint-weight"], "0");

    servers.sync_endpoints(&BTreeMap::from([(key.clone(), 1)]));
    for path in ["/healthz", "/", "/anything"] {
        let response = get(port, path).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.headers()["x-load-balancing-endpoint-weight"], "1");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["localEndpoints"], 1);
        assert_eq!(body["service"]["name"], "echo");
    }
    let post = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200, "any method");
}

#[tokio::test]
async fn listeners_follow_services_and_port_changes() {
    let (mut servers, _) = loopback_servers();
    let key = ServiceKey::new("default", "echo");
    let (first, second) = (free_port(), free_port());
    servers
        .sync_services(&BTreeMap::from([(key.clone(), first)]))
        .await;
    assert!(get(first, "/healthz").await.is_ok());

    servers
        .sync_services(&BTreeMap::from([(key.clone(), second)]))
        .await;
    assert_eq!(servers.ports(), BTreeMap::from([(key.clone(), second)]));
    assert!(get(second, "/healthz").await.is_ok());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        get(first, "/healthz").await.is_err(),
        "the old port is closed"
    );

    servers.sync_services(&BTreeMap::new()).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        get(second, "/healthz").await.is_err(),
        "closed when the Service goes"
    );
}

#[tokio::test]
async fn a_taken_port_is_reported_and_retried() {
    let (mut servers, _) = loopback_servers();
    let key = ServiceKey::new("default", "echo");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let failures = servers
        .sync_services(&BTreeMap::from([(key.clone(), port)]))
        .await;
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0].to_string().contains("default/echo"),
        "{}",
        failures[0]
    );
    drop(taken);
    assert!(
        servers
            .sync_services(&BTreeMap::from([(key, port)]))
            .await
            .is_empty(),
        "retried"
    );
    assert!(get(port, "/healthz").await.is_ok());
}

#[tokio::test]
async fn a_stale_dataplane_fails_every_check() {
    let sync = SyncHealth::new(Duration::from_millis(10));
    let mut servers = ServiceHealthServers::new(vec!["127.0.0.1".parse().unwrap()], sync.clone());
    let key = ServiceKey::new("default", "echo");
    let port = free_port();
    servers
        .sync_services(&BTreeMap::from([(key.clone(), port)]))
        .await;
    servers.sync_endpoints(&BTreeMap::from([(key, 1)]));
    assert_eq!(get(port, "/healthz").await.unwrap().status(), 200);
    sync.queued(Instant::now());
    tokio::time::sleep(Duration::from_millis(30)).await;
    let response = get(port, "/healthz").await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["serviceProxyHealthy"], false);
}

#[tokio::test]
async fn a_client_sending_half_a_header_is_cut_off_and_closing_the_port_closes_its_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sync = SyncHealth::new(Duration::from_secs(60));
    let mut servers = ServiceHealthServers::new(vec!["127.0.0.1".parse().unwrap()], sync)
        .with_limits(ConnectionLimits {
            header_read_timeout: Duration::from_secs(1),
            ..ConnectionLimits::default()
        });
    let key = ServiceKey::new("default", "echo");
    let port = free_port();
    servers
        .sync_services(&BTreeMap::from([(key.clone(), port)]))
        .await;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let bound = Duration::from_secs(20);
    assert!(
        portico_runtime::serve::half_header_is_cut_off(addr, bound)
            .await
            .unwrap(),
        "still connected after {bound:?}"
    );

    // A kept-alive connection goes with its Service's port.
    let mut kept = tokio::net::TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    assert!(kept.read(&mut buf).await.unwrap() > 0, "answered");
    servers.sync_services(&BTreeMap::new()).await;
    let closed = tokio::time::timeout(bound, async {
        while let Ok(n) = kept.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the connection outlived its health check port"
    );
}
