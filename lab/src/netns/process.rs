//! Processes inside a lab namespace, started as `ip netns exec NS program args...`. `ip`
//! enters the namespace and execs the program in place, so the child's PID is the program's.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::Duration;

use super::NetnsError;

/// A `Command` that runs `program` inside namespace `ns`. Convert it with
/// `tokio::process::Command::from` for an async child.
pub fn command_in(ns: &str, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", ns])
        .arg(program)
        .env("PORTICO_LAB_NETNS", ns);
    command
}

/// A child running in a lab namespace; killed and reaped on drop (and, as every process in
/// the lab's namespaces, on the topology's teardown).
#[derive(Debug)]
pub struct NsChild {
    ns: String,
    child: Child,
}

impl NsChild {
    /// Spawns `command` (from `command_in`) as a child of this process.
    pub fn spawn(ns: &str, mut command: Command) -> Result<Self, NetnsError> {
        let child = command.spawn().map_err(|source| NetnsError::Spawn {
            command: format!("{command:?}"),
            source,
        })?;
        Ok(NsChild {
            ns: ns.to_owned(),
            child,
        })
    }

    /// The namespace it runs in.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// Its PID.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The std child, for its pipes or its exit status.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits up to `timeout` for the child's first stdout line (a server's "listening" line)
    /// and returns it; the rest of stdout is drained in the background.
    pub fn wait_for_line(&mut self, what: &str, timeout: Duration) -> Result<String, NetnsError> {
        let not_ready = |message: String| NetnsError::NotReady {
            what: what.to_owned(),
            ns: self.ns.clone(),
            message,
        };
        let stdout = self
            .child
            .stdout
            .take()
            .ok_or_else(|| not_ready("its stdout is not piped".to_owned()))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep reading so that the child never blocks on a full pipe.
            for _ in lines {}
        });
        match rx.recv_timeout(timeout) {
            Ok(Some(Ok(line))) => Ok(line),
            Ok(Some(Err(error))) => Err(not_ready(error.to_string())),
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().map(|s| s.to_string());
                Err(not_ready(format!(
                    "it exited ({status:?}) before saying it was ready"
                )))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                Err(not_ready(format!("no ready line within {timeout:?}")))
            }
        }
    }

    /// Kills the child (SIGKILL) and reaps it. Idempotent.
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if let Err(error) = self.child.kill() {
                tracing::warn!(%error, ns = self.ns, pid = self.id(), "could not kill lab process");
            }
            let _ = self.child.wait();
        }
    }
}

impl Drop for NsChild {
    fn drop(&mut self) {
        self.kill();
    }
}
