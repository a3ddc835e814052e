//! Real TCP on loopback. Timeouts are short in the tests and the bounds generous: an assertion
//! only says a connection was cut off at all, never how fast.

use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Far longer than any timeout configured here: only a server that never cuts off exceeds it.
const BOUND: Duration = Duration::from_secs(20);
const LONG: Duration = Duration::from_secs(600);

async fn start(limits: ConnectionLimits) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/healthz", get(|| async { "ok\n" }));
    tokio::spawn(serve(listener, router, limits));
    addr
}

/// Reads one response with a `content-length` body; returns its head and body.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let text = String::from_utf8_lossy(&data).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length: usize = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if data.len() >= head_end + 4 + length {
                return text;
            }
        }
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before a whole response: {data:?}");
        data.extend_from_slice(&buf[..n]);
    }
}

/// Whether the peer has closed the connection, without waiting.
fn closed_now(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match stream.try_read(&mut buf) {
        Ok(0) => true,
        Ok(_) => closed_now(stream),
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

async fn wait_closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    tokio::time::timeout(BOUND, async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn a_slow_client_that_trickles_its_header_is_cut_off() {
    let addr = start(ConnectionLimits {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: LONG,
        max_connections: 8,
    })
    .await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A header line every 200 ms keeps the connection busy, so only the header timeout ends it.
    let cut_off = tokio::time::timeout(BOUND, async {
        let mut buf = [0u8; 512];
        loop {
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
                () = tokio::time::sleep(Duration::from_millis(200)) => {
                    if stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
                        return;
                    }
                }
            }
        }
    })
    .await;
    assert!(
        cut_off.is_ok(),
        "the slow client was still connected after {BOUND:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let addr = start(ConnectionLimits {
        header_read_timeout: LONG,
        idle_timeout: Duration::from_secs(1),
        max_connections: 8,
    })
    .await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        !response.to_ascii_lowercase().contains("connection: close"),
        "kept alive: {response}"
    );
    assert!(
        wait_closed(&mut stream).await,
        "the idle connection was still open after {BOUND:?}"
    );
}

#[tokio::test]
async fn with_every_slot_held_by_slow_clients_a_probe_is_answered_once_they_are_cut_off() {
    let addr = start(ConnectionLimits {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: LONG,
        max_connections: 2,
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    let mut probe = TcpStream::connect(addr).await.unwrap();
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let response = tokio::time::timeout(BOUND, read_response(&mut probe))
        .await
        .expect("the probe was answered once a slot was free");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // The probe could only be served from a slot a slow client gave up: the cap held.
    assert!(
        slow.iter().any(closed_now),
        "the probe was answered while both slow clients still held their slots"
    );
    for stream in &mut slow {
        assert!(wait_closed(stream).await, "a slow client was never cut off");
    }
}

#[tokio::test]
async fn dropping_the_server_closes_its_connections() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve(
        listener,
        Router::new().route("/healthz", get(|| async { "ok\n" })),
        ConnectionLimits {
            header_read_timeout: LONG,
            idle_timeout: LONG,
            max_connections: 8,
        },
    ));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_response(&mut stream).await;
    server.abort();
    assert!(
        wait_closed(&mut stream).await,
        "a kept-alive connection outlived its server"
    );
}
