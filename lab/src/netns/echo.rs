//! `portico-lab echo-server`: the pods' workload, like the "Using Source IP" tutorial's
//! echoserver. Every TCP connection (raw or HTTP GET) and every UDP datagram is answered with
//! a few `key=value` lines, the first being `client_address=<the peer address it saw>`: what
//! tests assert on to prove whether a path was SNATed.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args as ClapArgs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Flags of `portico-lab echo-server`.
#[derive(ClapArgs, Debug)]
pub struct EchoServerArgs {
    /// TCP (and UDP) address to answer on.
    #[arg(long, env = "PORTICO_LAB_ECHO_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Name reported as `namespace=`; `ip netns exec` children of the lab get it set.
    #[arg(long, env = "PORTICO_LAB_NETNS", default_value = "")]
    pub namespace: String,
    /// Do not answer UDP.
    #[arg(long, env = "PORTICO_LAB_ECHO_NO_UDP")]
    pub no_udp: bool,
}

/// How long a connection may stay silent before it gets the raw (non-HTTP) answer.
const FIRST_BYTES_WAIT: Duration = Duration::from_millis(500);
const MAX_REQUEST: usize = 16 * 1024;

/// The answer to one request, as the tutorial's echoserver prints it.
pub fn echo_body(
    client: SocketAddr,
    server: SocketAddr,
    hostname: &str,
    namespace: &str,
) -> String {
    format!(
        "client_address={}\nclient_port={}\nserver_address={}\nserver_port={}\nhostname={hostname}\nnamespace={namespace}\n",
        client.ip(),
        client.port(),
        server.ip(),
        server.port(),
    )
}

/// Parses `key=value` lines of an echo body; `value` of the first `key`.
pub fn echo_field<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    body.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Runs the server until the process is killed. Prints `listening <addr>` on stdout once both
/// sockets are bound, so a parent can wait for readiness.
pub async fn run(args: EchoServerArgs) -> anyhow::Result<()> {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default();
    let namespace = args.namespace;
    let tcp = TcpListener::bind(args.listen).await?;
    let local = tcp.local_addr()?;
    let udp = if args.no_udp {
        None
    } else {
        Some(UdpSocket::bind(local).await?)
    };
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening {local}")?;
        stdout.flush()?;
    }
    if let Some(udp) = udp {
        let (hostname, namespace) = (hostname.clone(), namespace.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((_, peer)) = udp.recv_from(&mut buf).await {
                let body = echo_body(peer, local, &hostname, &namespace);
                let _ = udp.send_to(body.as_bytes(), peer).await;
            }
        });
    }
    loop {
        let (stream, peer) = tcp.accept().await?;
        let (hostname, namespace) = (hostname.clone(), namespace.clone());
        tokio::spawn(async move {
            if let Err(error) = answer(stream, peer, &hostname, &namespace).await {
                tracing::debug!(%error, %peer, "echo connection failed");
            }
        });
    }
}

async fn answer(
    mut stream: TcpStream,
    peer: SocketAddr,
    hostname: &str,
    namespace: &str,
) -> std::io::Result<()> {
    let server = stream.local_addr()?;
    let body = echo_body(peer, server, hostname, namespace);
    let mut request = Vec::new();
    let mut buf = [0u8; 2048];
    // Raw clients may send nothing: answer them after a short wait. HTTP clients send a
    // request line at once: read the head, then answer as HTTP/1.1.
    loop {
        let read = tokio::time::timeout(FIRST_BYTES_WAIT, stream.read(&mut buf)).await;
        match read {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => request.extend_from_slice(&buf[..n]),
            Ok(Err(error)) => return Err(error),
        }
        if !looks_like_http(&request)
            || request.windows(4).any(|w| w == b"\r\n\r\n")
            || request.len() > MAX_REQUEST
        {
            break;
        }
    }
    let reply = if looks_like_http(&request) {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        body
    };
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

fn looks_like_http(request: &[u8]) -> bool {
    ["GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS "]
        .iter()
        .any(|method| request.starts_with(method.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_names_the_client_first() {
        let body = echo_body(
            "198.18.0.2:40000".parse().unwrap(),
            "10.244.1.2:8080".parse().unwrap(),
            "lab",
            "ptl-1-0-n1p0",
        );
        assert!(body.starts_with("client_address=198.18.0.2\n"), "{body}");
        assert_eq!(echo_field(&body, "client_address"), Some("198.18.0.2"));
        assert_eq!(echo_field(&body, "server_address"), Some("10.244.1.2"));
        assert_eq!(echo_field(&body, "namespace"), Some("ptl-1-0-n1p0"));
    }

    #[tokio::test]
    async fn answers_raw_tcp_and_http_on_loopback() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                tokio::spawn(answer(stream, peer, "h", "ns"));
            }
        });
        let mut raw = TcpStream::connect(addr).await.unwrap();
        raw.write_all(b"ping\n").await.unwrap();
        let mut reply = String::new();
        raw.read_to_string(&mut reply).await.unwrap();
        assert_eq!(echo_field(&reply, "client_address"), Some("127.0.0.1"));

        let mut http = TcpStream::connect(addr).await.unwrap();
        http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        http.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(
            reply.contains("\r\n\r\nclient_address=127.0.0.1\n"),
            "{reply}"
        );
    }
}
