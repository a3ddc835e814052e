//! `portico-lab probe`: a tiny client run inside a namespace (`ip netns exec NS portico-lab
//! probe ...`), so tests need no curl on the machine. It connects with a timeout, sends one
//! request and prints what came back on stdout; failures go to stderr with a non-zero exit.
//! The library side (`probe_from`) runs it and turns the result into a `NetnsError`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::{Args as ClapArgs, ValueEnum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::NetnsError;
use super::process::command_in;

/// What the probe sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProbeMode {
    /// Connect, send `ping\n`, half-close, print everything until EOF.
    Tcp,
    /// Send `GET <path> HTTP/1.1`, print the whole response (status line, headers, body).
    Http,
    /// Send one datagram, print the first datagram that comes back.
    Udp,
}

/// Flags of `portico-lab probe`.
#[derive(ClapArgs, Debug)]
pub struct ProbeArgs {
    /// Address to connect to: `IP:port`, or `name:port` resolved inside the namespace (its
    /// `/etc/netns/<ns>/hosts`, where the lab cloud writes load balancers' DNS names).
    #[arg(long, env = "PORTICO_LAB_PROBE_CONNECT")]
    pub connect: String,
    /// What to send.
    #[arg(
        long,
        env = "PORTICO_LAB_PROBE_MODE",
        value_enum,
        default_value = "tcp"
    )]
    pub mode: ProbeMode,
    /// Path of the HTTP request (`--mode http`).
    #[arg(long, env = "PORTICO_LAB_PROBE_PATH", default_value = "/")]
    pub path: String,
    /// Give up after this many milliseconds (connect and reply together).
    #[arg(long, env = "PORTICO_LAB_PROBE_TIMEOUT_MS", default_value_t = 3_000)]
    pub timeout_ms: u64,
}

/// Runs one probe and prints the reply.
pub async fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let timeout = Duration::from_millis(args.timeout_ms);
    let reply = tokio::time::timeout(timeout, exchange(&args))
        .await
        .map_err(|_| anyhow::anyhow!("no answer from {} within {timeout:?}", args.connect))??;
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&reply)?;
    stdout.flush()?;
    Ok(())
}

async fn exchange(args: &ProbeArgs) -> anyhow::Result<Vec<u8>> {
    let target = tokio::net::lookup_host(args.connect.as_str())
        .await
        .map_err(|error| anyhow::anyhow!("resolve {}: {error}", args.connect))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{} resolves to no address", args.connect))?;
    let request = match args.mode {
        ProbeMode::Tcp | ProbeMode::Udp => b"ping\n".to_vec(),
        ProbeMode::Http => format!(
            "GET {} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: portico-lab-probe\r\nConnection: close\r\n\r\n",
            args.path
        )
        .into_bytes(),
    };
    if args.mode == ProbeMode::Udp {
        let bind: SocketAddr = if target.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()?;
        let socket = UdpSocket::bind(bind).await?;
        socket.connect(target).await?;
        socket.send(&request).await?;
        let mut buf = vec![0u8; 64 * 1024];
        let n = socket.recv(&mut buf).await?;
        buf.truncate(n);
        return Ok(buf);
    }
    let mut stream = TcpStream::connect(target)
        .await
        .map_err(|error| anyhow::anyhow!("connect to {target}: {error}"))?;
    stream.write_all(&request).await?;
    // HTTP servers (hyper among them) may drop a connection whose client half-closes before
    // the response; `Connection: close` already ends the exchange. Raw TCP echo reads to EOF.
    if args.mode == ProbeMode::Tcp {
        stream.shutdown().await?;
    }
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await?;
    Ok(reply)
}

/// An HTTP response as the probe printed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a whole `Connection: close` response (no chunked bodies: the lab's servers and
/// the agent's health servers send `Content-Length`).
pub fn parse_http_reply(raw: &str) -> Option<HttpReply> {
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(HttpReply {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// Runs `lab_binary probe` inside `ns` and returns its stdout. The probe's own timeout
/// decides; the outer one only guards against a probe that hangs on its way out.
pub async fn probe_from(
    lab_binary: &Path,
    ns: &str,
    target: SocketAddr,
    mode: ProbeMode,
    path: &str,
    timeout: Duration,
) -> Result<String, NetnsError> {
    let name = target.to_string();
    probe_name_from(lab_binary, ns, &name, mode, path, timeout)
        .await
        .map_err(|failure| match failure {
            ProbeFailure::Spawn(source) => NetnsError::Spawn {
                command: format!("{} probe (in {ns})", lab_binary.display()),
                source,
            },
            ProbeFailure::Timeout => NetnsError::Timeout {
                ns: ns.to_owned(),
                target,
                timeout,
            },
            ProbeFailure::Failed(message) => NetnsError::Probe {
                ns: ns.to_owned(),
                target,
                message,
            },
        })
}

/// Why a probe by name gave no answer.
#[derive(Debug)]
pub enum ProbeFailure {
    Spawn(std::io::Error),
    Timeout,
    Failed(String),
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeFailure::Spawn(error) => write!(f, "could not start the probe: {error}"),
            ProbeFailure::Timeout => write!(f, "timed out"),
            ProbeFailure::Failed(message) => write!(f, "{message}"),
        }
    }
}

/// `probe_from` for `connect` = `name:port` (or `IP:port`), resolved inside `ns`.
pub async fn probe_name_from(
    lab_binary: &Path,
    ns: &str,
    connect: &str,
    mode: ProbeMode,
    path: &str,
    timeout: Duration,
) -> Result<String, ProbeFailure> {
    let mut command = command_in(ns, lab_binary);
    command
        .args(["probe", "--connect", connect, "--path", path])
        .args(["--timeout-ms", &timeout.as_millis().to_string()])
        .args([
            "--mode",
            mode.to_possible_value().expect("not skipped").get_name(),
        ])
        .stdin(std::process::Stdio::null());
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true);
    let output = tokio::time::timeout(timeout + Duration::from_secs(5), command.output())
        .await
        .map_err(|_| ProbeFailure::Timeout)?
        .map_err(ProbeFailure::Spawn)?;
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if !output.status.success() {
        if stderr.contains("no answer from") {
            return Err(ProbeFailure::Timeout);
        }
        return Err(ProbeFailure::Failed(format!("{}: {stderr}", output.status)));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_health_check_reply() {
        let raw = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nX-Load-Balancing-Endpoint-Weight: 0\r\n\r\n{\"localEndpoints\":0}";
        let reply = parse_http_reply(raw).expect("parses");
        assert_eq!(reply.status, 503);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("X-Load-Balancing-Endpoint-Weight"), Some("0"));
        assert_eq!(reply.body, "{\"localEndpoints\":0}");
        assert_eq!(parse_http_reply("not http"), None);
    }
}
