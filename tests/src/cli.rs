//! Smoke checks shared by the binaries' own tests: help text, the start-up error without a
//! kubeconfig, and the admin server of a running process.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A command for a binary with a clean environment: no kubeconfig anywhere, not in a cluster.
pub fn isolated(binary: &Path, home: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    command
}

/// `--help` output of a binary.
pub fn help(binary: &Path) -> String {
    let output = Command::new(binary)
        .arg("--help")
        .output()
        .expect("binary runs");
    assert!(output.status.success(), "--help exits 0");
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

/// Asserts every `--flag` in the help has a line of explanation after it.
pub fn assert_every_flag_explained(help: &str) {
    let lines: Vec<&str> = help.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let is_flag = trimmed.starts_with("--")
            || (trimmed.len() > 2 && trimmed.starts_with('-') && trimmed.as_bytes()[2] == b',');
        if !is_flag {
            continue;
        }
        let flag = trimmed.split_whitespace().next().unwrap_or_default();
        let explained_inline = trimmed.split("  ").filter(|s| !s.trim().is_empty()).count() > 1;
        let explained_below = lines
            .get(i + 1)
            .is_some_and(|next| !next.trim().is_empty() && !next.trim_start().starts_with('-'));
        assert!(
            explained_inline || explained_below,
            "{flag} has no help text:\n{help}"
        );
    }
}

/// Runs the binary with no configuration at all and returns what it did.
pub fn run_without_kubeconfig(binary: &Path, args: &[&str]) -> Output {
    let home = tempfile::tempdir().expect("temp dir");
    isolated(binary, home.path())
        .args(args)
        .output()
        .expect("binary runs")
}

/// A free loopback port (bound and released; good enough for a test on one machine).
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("loopback port")
}

/// Writes a kubeconfig pointing at a server that is not there.
pub fn unreachable_kubeconfig(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    let server = free_port();
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster: {{server: 'http://{server}'}}\n\
             users:\n- name: lab\n  user: {{token: test}}\ncontexts:\n- name: lab\n  context: {{cluster: lab, user: lab}}\n\
             current-context: lab\n"
        ),
    )
    .expect("write kubeconfig");
    path
}

/// A GET over plain HTTP/1.0, returning the status code and body (no client crate needed).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::Write;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Waits until the admin server answers `/healthz`, or panics with the process's output.
pub fn wait_for_admin(child: &mut Child, addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok((200, _)) = http_get(addr, "/healthz") {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("process exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("admin server at {addr} never answered /healthz");
}

/// Sends SIGTERM (through `kill`, so no unsafe call is needed) and waits for the exit status.
pub fn terminate(mut child: Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("process did not stop within 10 s of SIGTERM");
}
