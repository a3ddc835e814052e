//! The echo server and TCP client that run inside namespaces.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const MODE: &str = "PTC_HELPER";
const ADDR: &str = "PTC_HELPER_ADDR";

/// What a connection attempt from inside a namespace got.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The echo server answered with the source address it saw.
    Peer(String),
    Refused,
    /// No answer within the timeout (dropped).
    Timeout,
    Other(String),
}

pub fn run_from_env() {
    let Ok(mode) = std::env::var(MODE) else {
        return;
    };
    let addr: SocketAddr = std::env::var(ADDR)
        .expect("helper address")
        .parse()
        .expect("socket address");
    match mode.as_str() {
        "echo" => echo(addr),
        "connect" => println!("ANSWER {}", connect(addr)),
        "udp" => {
            let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind UDP socket");
            socket.send_to(b"ping", addr).expect("send datagram");
        }
        other => panic!("unknown helper mode {other}"),
    }
}

/// Answers every connection with the peer's IP, then closes it. Runs until killed.
fn echo(addr: SocketAddr) {
    let listener = TcpListener::bind(addr).expect("bind echo server");
    println!("READY");
    std::io::stdout().flush().ok();
    for stream in listener.incoming().flatten() {
        let mut stream = stream;
        let peer = stream
            .peer_addr()
            .map(|peer| peer.ip().to_string())
            .unwrap_or_default();
        let _ = stream.write_all(format!("{peer}\n").as_bytes());
    }
}

fn connect(addr: SocketAddr) -> String {
    match TcpStream::connect_timeout(&addr, Duration::from_millis(1500)) {
        Ok(mut stream) => {
            stream.set_read_timeout(Some(Duration::from_secs(3))).ok();
            let mut answer = String::new();
            match stream.read_to_string(&mut answer) {
                Ok(_) => format!("peer {}", answer.trim()),
                Err(error) => format!("other read {error}"),
            }
        }
        Err(error) if error.kind() == ErrorKind::ConnectionRefused => "refused".into(),
        Err(error)
            if error.kind() == ErrorKind::TimedOut || error.kind() == ErrorKind::WouldBlock =>
        {
            "timeout".into()
        }
        Err(error) => format!("other {error}"),
    }
}

fn this_binary() -> PathBuf {
    std::env::current_exe().expect("test binary path")
}

fn helper_command(netns: &str, mode: &str, addr: &str) -> Command {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", netns])
        .arg(this_binary())
        .args([
            "--exact",
            "helper_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MODE, mode)
        .env(ADDR, addr);
    command
}

/// An echo server inside a namespace; killed on drop.
pub struct EchoServer {
    child: Child,
}

impl EchoServer {
    pub fn start(netns: &str, addr: &str) -> Self {
        let mut child = helper_command(netns, "echo", addr)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start echo server");
        let stdout = child.stdout.take().expect("echo stdout");
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                // libtest prints "test helper_process ... " before the helper's own output.
                Some(Ok(line)) if line.trim_end().ends_with("READY") => break,
                Some(Ok(_)) => continue,
                _ => panic!("echo server in {netns} exited before it was ready"),
            }
        }
        EchoServer { child }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects from inside `netns` to `addr` and reports what came back.
pub fn connect_from(netns: &str, addr: &str) -> Answer {
    let output = helper_command(netns, "connect", addr)
        .output()
        .expect("run client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|line| line.split_once("ANSWER ").map(|(_, answer)| answer.trim()))
        .unwrap_or_else(|| panic!("client printed no answer: {stdout}"));
    if let Some(peer) = line.strip_prefix("peer ") {
        Answer::Peer(peer.to_string())
    } else if line == "refused" {
        Answer::Refused
    } else if line == "timeout" {
        Answer::Timeout
    } else {
        Answer::Other(line.to_string())
    }
}

/// Sends one UDP datagram from inside `netns` to `addr` (enough to create a conntrack entry).
pub fn send_udp_from(netns: &str, addr: &str) {
    let status = helper_command(netns, "udp", addr)
        .stdout(Stdio::null())
        .status()
        .expect("run UDP sender");
    assert!(status.success(), "UDP sender in {netns} failed");
}
