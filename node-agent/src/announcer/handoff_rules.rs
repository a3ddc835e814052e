//! The thin I/O layer of `handoff`: puts the hand-back rules into the mangle table with the
//! iptables tools (the chain is created only when a first hand-back needs it, so a node that
//! never takes a VIP over, or an agent in `--proxy-mode off` on its own, adds no chain).

use std::collections::BTreeSet;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::handoff::{CHAIN, restore_input};
use crate::dataplane::model::IpFamily;

const FAMILIES: [IpFamily; 2] = [IpFamily::V4, IpFamily::V6];

fn tool(family: IpFamily, suffix: &str) -> String {
    match family {
        IpFamily::V4 => format!("iptables{suffix}"),
        IpFamily::V6 => format!("ip6tables{suffix}"),
    }
}

/// Runs one iptables tool; its stderr on failure.
async fn run(binary: &str, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| format!("{binary}: {e}"))?;
    if let (Some(mut pipe), Some(text)) = (child.stdin.take(), stdin) {
        // A failed write shows as the tool's own error.
        let _ = pipe.write_all(text.as_bytes()).await;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| format!("{binary}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{binary} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The hand-back rules as installed.
#[derive(Default)]
pub struct HandoffRules {
    /// Families whose chain exists and is jumped to from mangle PREROUTING.
    hooked: BTreeSet<IpFamily>,
}

impl HandoffRules {
    /// Empties a chain an earlier run left behind (its hand-backs are stale, and may point at a
    /// node that has since taken the VIP back), without creating one.
    pub async fn clear_leftovers() {
        for family in FAMILIES {
            let _ = run(
                &tool(family, ""),
                &["-w", "-t", "mangle", "-F", CHAIN],
                None,
            )
            .await;
        }
    }

    /// Sets the chains to `resolved` (VIP → the address its unknown connections go to). False
    /// when a tool failed (logged; retried later).
    pub async fn apply(&mut self, resolved: &BTreeMap<IpAddr, IpAddr>) -> bool {
        let mut ok = true;
        for family in FAMILIES {
            let input = restore_input(resolved, family);
            let needed = input.lines().any(|line| line.starts_with("-A "));
            if !needed && !self.hooked.contains(&family) {
                continue;
            }
            if let Err(error) = self.set(family, &input).await {
                tracing::warn!(%error, "cannot set the L2 hand-back rules; connections open at an ownership change may be reset");
                ok = false;
            }
        }
        ok
    }

    async fn set(&mut self, family: IpFamily, input: &str) -> Result<(), String> {
        run(&tool(family, "-restore"), &["-w", "--noflush"], Some(input)).await?;
        if !self.hooked.contains(&family) {
            let binary = tool(family, "");
            let jump = ["-w", "-t", "mangle", "-C", "PREROUTING", "-j", CHAIN];
            if run(&binary, &jump, None).await.is_err() {
                run(
                    &binary,
                    &["-w", "-t", "mangle", "-I", "PREROUTING", "1", "-j", CHAIN],
                    None,
                )
                .await?;
            }
            self.hooked.insert(family);
        }
        Ok(())
    }

    /// Removes the chains and their jumps (the agent stops: it hands nothing back any more).
    pub async fn remove(&mut self) {
        for family in std::mem::take(&mut self.hooked) {
            unhook(family).await;
        }
    }

    /// `--cleanup`: removes the chains and jumps of any run, where they exist.
    pub async fn remove_any() {
        for family in FAMILIES {
            unhook(family).await;
        }
    }
}

async fn unhook(family: IpFamily) {
    let binary = tool(family, "");
    for args in [
        ["-w", "-t", "mangle", "-D", "PREROUTING", "-j", CHAIN].as_slice(),
        ["-w", "-t", "mangle", "-F", CHAIN].as_slice(),
        ["-w", "-t", "mangle", "-X", CHAIN].as_slice(),
    ] {
        // Each step may find nothing to do (no such chain or jump).
        let _ = run(&binary, args, None).await;
    }
}
