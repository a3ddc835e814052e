//! An HTTP proxy in front of moto that answers some AWS calls with AWS's throttling error, as
//! ELBv2 and EC2 do under load: HTTP 400 with `Throttling` (ELBv2's query-protocol error XML) or
//! `RequestLimitExceeded` (EC2's), the rest forwarded unchanged.
//!
//! ```text
//!   controller ─▶ proxy: request n ─ n % every == 0 ─▶ 400 <Code>Throttling</Code>
//!                                  └ otherwise ─────▶ moto ─▶ its answer
//! ```
//! One request per connection (answers carry `Connection: close`), which keeps the HTTP
//! handling to reading a head and a `Content-Length` body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct ThrottlingProxy {
    pub addr: SocketAddr,
    seen: Arc<AtomicUsize>,
    throttled: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

/// ELBv2's error answer (query protocol).
fn elb_throttling() -> String {
    "<ErrorResponse xmlns=\"https://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">\
     <Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>\
     <RequestId>portico-test</RequestId></ErrorResponse>"
        .into()
}

/// EC2's error answer.
fn ec2_throttling() -> String {
    "<Response><Errors><Error><Code>RequestLimitExceeded</Code>\
     <Message>Request limit exceeded.</Message></Error></Errors>\
     <RequestID>portico-test</RequestID></Response>"
        .into()
}

/// Reads one request: head and body (by Content-Length).
async fn read_request(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let head_end = buffer.windows(4).position(|w| w == b"\r\n\r\n");
        if let Some(end) = head_end {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                return Some(buffer);
            }
        }
        let read = client.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// Marks a request or an answer `Connection: close`, so that neither side reuses the connection.
fn close_after(request: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(request);
    let Some(end) = text.find("\r\n\r\n") else {
        return request.to_vec();
    };
    let head: Vec<&str> = text[..end]
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    let mut out = head.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    out.extend_from_slice(&request[end + 4..]);
    out
}

async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    throttle: bool,
    throttled: Arc<AtomicUsize>,
) {
    let Some(request) = read_request(&mut client).await else {
        return;
    };
    if throttle {
        throttled.fetch_add(1, Ordering::SeqCst);
        let ec2 = String::from_utf8_lossy(&request).contains("Action=DescribeSubnets");
        let body = if ec2 {
            ec2_throttling()
        } else {
            elb_throttling()
        };
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = client.write_all(answer.as_bytes()).await;
        let _ = client.shutdown().await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    if server.write_all(&close_after(&request)).await.is_err() {
        return;
    }
    let mut answer = Vec::new();
    let _ = server.read_to_end(&mut answer).await;
    let _ = client.write_all(&close_after(&answer)).await;
    let _ = client.shutdown().await;
}

impl ThrottlingProxy {
    /// Throttles request 1, then every `every`-th (`every` = 3: the 1st, 4th, 7th, ...).
    pub async fn start(upstream: SocketAddr, every: usize) -> ThrottlingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let throttled = Arc::new(AtomicUsize::new(0));
        let accept = tokio::spawn({
            let seen = seen.clone();
            let throttled = throttled.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve(
                        client,
                        upstream,
                        n.is_multiple_of(every),
                        throttled.clone(),
                    ));
                }
            }
        });
        ThrottlingProxy {
            addr,
            seen,
            throttled,
            accept,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered with a throttling error so far.
    pub fn throttled(&self) -> usize {
        self.throttled.load(Ordering::SeqCst)
    }

    /// Connections accepted so far (one request each).
    pub fn requests(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

impl Drop for ThrottlingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
