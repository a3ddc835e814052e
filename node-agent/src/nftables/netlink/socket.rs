//! The I/O of a netlink batch: a `NETLINK_NETFILTER` socket (in a named network namespace for
//! tests and the lab), one `send`, and the kernel's replies read until the last command's ack.

use std::fs::File;
use std::io::Read as _;
use std::os::fd::AsRawFd as _;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::Batch;

/// Why the kernel did not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink_io: {context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused a message (the whole batch is then rolled back).
    #[error("netlink_refused: message {seq} of the batch: {source}")]
    Refused {
        seq: u32,
        #[source]
        source: std::io::Error,
    },
}

const NLMSG_ERROR: u16 = 2;
const NETLINK_NETFILTER: i32 = 12;
/// The replies are a few acks; a stuck kernel reply must not stall the sync loop for long.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> NetlinkError {
    move |source| NetlinkError::Io { context, source }
}

fn open() -> std::io::Result<Socket> {
    Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::RAW,
        Some(Protocol::from(NETLINK_NETFILTER)),
    )
}

/// A netfilter netlink socket in `netns` (a name under /run/netns) or in this process's
/// namespace. A socket keeps the namespace it was created in, so a short-lived thread enters
/// the namespace, creates it and ends; no other thread changes namespace.
pub fn open_in(netns: Option<&str>) -> Result<Socket, NetlinkError> {
    let Some(name) = netns else {
        return open().map_err(io("socket"));
    };
    let file =
        File::open(format!("/run/netns/{name}")).map_err(io("open the network namespace"))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter_netns(&file)?;
                open()
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("namespace thread panicked")))
    })
    .map_err(io("socket in the network namespace"))
}

#[allow(unsafe_code)]
fn enter_netns(file: &File) -> std::io::Result<()> {
    // SAFETY: setns takes a file descriptor that `file` keeps open for the call, and changes
    // only the calling thread's network namespace; that thread is the scoped one above, which
    // ends right after creating the socket.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[allow(unsafe_code)]
fn force_send_buffer(socket: &Socket, bytes: usize) -> std::io::Result<()> {
    let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4);
    // SAFETY: the option value points at a live c_int of the length passed, and the socket's
    // descriptor is open for the call (owned by `socket`).
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUFFORCE,
            (&raw const size).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sends `batch` and waits for the kernel's verdict on it (blocking; the caller runs it on a
/// blocking thread).
pub fn send(netns: Option<&str>, batch: &Batch) -> Result<(), NetlinkError> {
    if batch.last_seq().is_none() {
        return Ok(());
    }
    send_on(&open_in(netns)?, batch)
}

/// Sends `batch` on an open socket (`open_in`) and reads the kernel's replies up to the last
/// command's ack. On success nothing of this batch is left to read, so the socket can carry
/// the next one; after an error the caller drops it.
pub fn send_on(socket: &Socket, batch: &Batch) -> Result<(), NetlinkError> {
    let Some(last_seq) = batch.last_seq() else {
        return Ok(());
    };
    socket
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .map_err(io("set the reply timeout"))?;
    let bytes = batch.bytes();
    if bytes.len() > 128 * 1024 {
        // A batch is one message to the kernel, so the send buffer must hold all of it (a
        // full load at 10,000 Services is megabytes), past the sysctl cap as nft does.
        force_send_buffer(socket, bytes.len() + 64 * 1024)
            .map_err(io("size the send buffer (SO_SNDBUFFORCE)"))?;
    }
    let sent = socket.send(bytes).map_err(io("send the batch"))?;
    if sent != bytes.len() {
        return Err(NetlinkError::Io {
            context: "send the batch",
            source: std::io::Error::other("short send"),
        });
    }
    let mut first_error: Option<NetlinkError> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = match (&*socket).read(&mut buf) {
            Ok(read) => read,
            Err(source) => {
                return Err(first_error.unwrap_or(NetlinkError::Io {
                    context: "read the kernel's reply",
                    source,
                }));
            }
        };
        let mut at = 0;
        while at + 16 <= read {
            let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap_or_default()) as usize;
            let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
            let seq = u32::from_ne_bytes(buf[at + 8..at + 12].try_into().unwrap_or_default());
            if len < 16 || at + len > read {
                break;
            }
            if kind == NLMSG_ERROR && len >= 20 {
                let code = i32::from_ne_bytes(buf[at + 16..at + 20].try_into().unwrap_or_default());
                // The error names the message it answers (its header follows the code).
                let about = if len >= 36 {
                    u32::from_ne_bytes(buf[at + 28..at + 32].try_into().unwrap_or_default())
                } else {
                    seq
                };
                if code != 0 && first_error.is_none() {
                    first_error = Some(NetlinkError::Refused {
                        seq: about,
                        source: std::io::Error::from_raw_os_error(-code),
                    });
                }
                if about == last_seq && code == 0 {
                    return first_error.map_or(Ok(()), Err);
                }
                if about == last_seq {
                    return Err(first_error.unwrap_or(NetlinkError::Refused {
                        seq: about,
                        source: std::io::Error::from_raw_os_error(-code),
                    }));
                }
            }
            at += (len + 3) & !3;
        }
    }
}
