//! The thin I/O layer: `nft -f -` with a transaction on standard input, optionally inside a
//! network namespace (tests).

use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};

use socket2::Socket;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::names::TABLE;
use super::service::family_word;
use super::transaction::{Command as NftCommand, Transaction};
use crate::dataplane::IpFamily;

/// Why an nft command failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("nft_spawn: could not run nft: {source}")]
    Spawn {
        #[source]
        source: std::io::Error,
    },
    #[error("nft_failed: nft {args} exited with {status}: {stderr}")]
    Failed {
        args: String,
        status: String,
        stderr: String,
    },
    #[error("nft_netlink: {0}")]
    Netlink(#[from] super::netlink::NetlinkError),
}

impl NftError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            NftError::Spawn { .. } => "nft_spawn",
            NftError::Failed { .. } => "nft_failed",
            NftError::Netlink(_) => "nft_netlink",
        }
    }
}

/// The nft tool and a netfilter netlink socket, in the host's network namespace or in a named
/// one.
#[derive(Clone, Debug, Default)]
pub struct Nft {
    pub netns: Option<String>,
    /// Kept between small batches: opening one in a named namespace takes a thread.
    socket: Arc<Mutex<Option<Socket>>>,
}

impl PartialEq for Nft {
    fn eq(&self, other: &Self) -> bool {
        self.netns == other.netns
    }
}

impl Eq for Nft {}

/// Batches up to this size are sent from the calling task (see `send_netlink`).
const INLINE_BATCH_BYTES: usize = 64 * 1024;

impl Nft {
    pub fn new(netns: Option<&str>) -> Self {
        Nft {
            netns: netns.map(String::from),
            socket: Arc::default(),
        }
    }

    /// Sends a small batch on the kept socket, opening it first if needed; a socket that saw
    /// an error is dropped, so no stale reply can meet the next batch.
    fn send_inline(&self, batch: &super::netlink::Batch) -> Result<(), NftError> {
        let mut kept = self.socket.lock().unwrap_or_else(PoisonError::into_inner);
        let socket = match kept.take() {
            Some(socket) => socket,
            None => super::netlink::socket::open_in(self.netns.as_deref())?,
        };
        super::netlink::socket::send_on(&socket, batch)?;
        *kept = Some(socket);
        Ok(())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = match &self.netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns, "nft"]);
                command
            }
            None => Command::new("nft"),
        };
        command.args(args);
        command
    }

    /// Runs `nft <args>` with `input` on standard input; returns standard output.
    pub async fn run(&self, args: &[&str], input: Option<&str>) -> Result<String, NftError> {
        let mut child = self
            .command(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| NftError::Spawn { source })?;
        if let Some(input) = input {
            let mut stdin = child.stdin.take().expect("piped stdin");
            // A failed write shows as nft's own error below.
            let _ = stdin.write_all(input.as_bytes()).await;
            drop(stdin);
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|source| NftError::Spawn { source })?;
        if !output.status.success() {
            let mut stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            // A failed transaction echoes the offending lines; the first few tell the story.
            if stderr.len() > 2000 {
                stderr.truncate(2000);
                stderr.push_str("...");
            }
            return Err(NftError::Failed {
                args: args.join(" "),
                status: output.status.to_string(),
                stderr: stderr.trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Applies one transaction (`nft -f -`): all of it or nothing.
    pub async fn apply(&self, transaction: &str) -> Result<(), NftError> {
        self.run(&["-f", "-"], Some(transaction)).await.map(|_| ())
    }

    /// Sends a transaction as one netlink batch (on a blocking thread), or says why not.
    async fn send_netlink(&self, transaction: &Transaction) -> Option<Result<(), NftError>> {
        let batch = match super::netlink::encode(transaction) {
            Ok(batch) => batch,
            Err(unsupported) => {
                tracing::debug!(%unsupported, "transaction through nft -f");
                return None;
            }
        };
        // A small batch (a partial sync) is committed by the kernel inside the send, its reply
        // queued before the send returns, so it is sent from here: on a loaded node each
        // thread handoff (a blocking-pool thread, a thread to enter the namespace) waited for a
        // core, most of a one-Service change's wall time. Full loads are megabytes and go to a
        // blocking thread.
        if batch.bytes().len() <= INLINE_BATCH_BYTES {
            return Some(self.send_inline(&batch));
        }
        let netns = self.netns.clone();
        let sent =
            tokio::task::spawn_blocking(move || super::netlink::send(netns.as_deref(), &batch))
                .await
                .map_err(|join| super::netlink::NetlinkError::Io {
                    context: "the netlink thread",
                    source: std::io::Error::other(join.to_string()),
                })
                .and_then(|sent| sent);
        Some(sent.map_err(NftError::Netlink))
    }

    /// Applies a transaction: as one netlink batch when every command has a known shape, else
    /// as `nft -f` text (`fallback`, the same commands). Both are one atomic transaction. A
    /// batch the kernel refused was rolled back whole, so the text is then tried once: an
    /// encoding slip costs speed, not the dataplane. Returns whether it went as netlink.
    pub async fn apply_transaction(
        &self,
        transaction: &Transaction,
        fallback: impl FnOnce() -> String,
    ) -> Result<bool, NftError> {
        match self.send_netlink(transaction).await {
            Some(Ok(())) => Ok(true),
            Some(Err(NftError::Netlink(error @ super::netlink::NetlinkError::Refused { .. }))) => {
                tracing::warn!(%error, "the kernel refused a netlink transaction; trying nft -f");
                self.apply(&fallback()).await.map(|()| false)
            }
            Some(Err(error)) => Err(error),
            None => self.apply(&fallback()).await.map(|()| false),
        }
    }

    /// Whether Portico's table of `family` exists, asked without listing its contents (which
    /// nft 1.0.6 does by fetching the whole ruleset, close to a second at 10,000 Services):
    /// `create table` fails on an existing table, and creating it empty when it was gone is
    /// harmless, since the caller then rewrites it. Sent as netlink, so the periodic check does
    /// not pay nft's cache fetch either.
    pub async fn table_exists(&self, family: IpFamily) -> Result<bool, NftError> {
        let transaction = Transaction {
            family,
            commands: vec![NftCommand::CreateTable],
        };
        let sent = match self.send_netlink(&transaction).await {
            Some(sent) => sent,
            None => self.apply(&transaction.text()).await,
        };
        match sent {
            Ok(()) => Ok(false),
            Err(NftError::Failed { stderr, .. }) if stderr.contains("File exists") => Ok(true),
            Err(NftError::Netlink(super::netlink::NetlinkError::Refused { source, .. }))
                if source.raw_os_error() == Some(libc::EEXIST) =>
            {
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes Portico's table of `family` (a no-op when there is none).
    pub async fn delete_table(&self, family: IpFamily) -> Result<(), NftError> {
        let ip = family_word(family);
        self.apply(&format!(
            "add table {ip} {TABLE}\ndelete table {ip} {TABLE}\n"
        ))
        .await
    }
}

/// Removes both families' tables, as `--cleanup` and the iptables backend's first sync do. A node
/// without nft has no tables of Portico's to remove.
pub async fn remove_tables(netns: Option<&str>) -> Result<(), NftError> {
    let nft = Nft::new(netns);
    for family in [IpFamily::V4, IpFamily::V6] {
        match nft.delete_table(family).await {
            Err(NftError::Spawn { source }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(());
            }
            other => other?,
        }
    }
    Ok(())
}
