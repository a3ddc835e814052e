//! One task per announced interface: answers ARP requests and Neighbor Solicitations for the
//! VIPs this node owns there, and sends the takeover and refresh announcements.
//!
//! ```text
//!   owned VIPs (watch) ──▶ AnnounceSchedule ──due──▶ frames::announcements ──▶ send
//!   ARP socket ──┐
//!   NDP socket ──┴─▶ frames::answer(owned) ──Some──▶ send        (None: stay silent)
//! ```
//!
//! The owned set is read for every frame, so the moment a VIP leaves it the task stops
//! answering for it; with an empty set the task answers nothing.

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::net::IpAddr;
use std::time::Duration;

use socket2::Socket;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tokio::time::Instant;

use super::frames;
use super::link::Link;
use super::packet_socket;
use super::schedule::AnnounceSchedule;

/// Large enough for any frame on a standard MTU; longer ones are truncated, and no ARP or NS
/// is that long.
const FRAME_BUFFER: usize = 2048;

pub struct Responder {
    link: Link,
    arp: AsyncFd<Socket>,
    ndp: AsyncFd<Socket>,
    /// Solicited-node groups joined so far (kept until the socket closes: a stale membership
    /// only lets a few more multicast frames through, which the filter then drops).
    joined: BTreeSet<std::net::Ipv6Addr>,
}

impl Responder {
    /// Opens the interface's sockets. Needs CAP_NET_RAW.
    pub fn open(link: Link) -> io::Result<Self> {
        let arp = packet_socket::register(packet_socket::arp(link.index)?)?;
        let ndp = packet_socket::register(packet_socket::ndp(link.index)?)?;
        Ok(Responder {
            link,
            arp,
            ndp,
            joined: BTreeSet::new(),
        })
    }

    /// Runs until `owned`'s sender is dropped. `refresh`: the announcement period after the
    /// takeover burst.
    pub async fn run(
        mut self,
        mut owned: watch::Receiver<BTreeSet<IpAddr>>,
        refresh: Option<Duration>,
    ) {
        let mut schedule = AnnounceSchedule::new(refresh);
        let mut current = owned.borrow_and_update().clone();
        self.owned_changed(&mut schedule, &current);
        let mut buffer = vec![0u8; FRAME_BUFFER];
        loop {
            let next = schedule.next_at(Instant::now().into_std());
            tokio::select! {
                changed = owned.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    current = owned.borrow_and_update().clone();
                    self.owned_changed(&mut schedule, &current);
                }
                ready = self.arp.readable() => {
                    if let Ok(mut guard) = ready {
                        drain(&mut guard, &mut buffer, &self.link, &current);
                    }
                }
                ready = self.ndp.readable() => {
                    if let Ok(mut guard) = ready {
                        drain(&mut guard, &mut buffer, &self.link, &current);
                    }
                }
                _ = sleep_until(next) => {
                    for vip in schedule.take_due(Instant::now().into_std()) {
                        // Each frame leaves through the socket of its ethertype, so the kernel
                        // tags it with the right protocol.
                        let socket = if vip.is_ipv4() { &self.arp } else { &self.ndp };
                        for frame in frames::announcements(vip, self.link.mac) {
                            send(socket.get_ref(), &frame, &self.link);
                        }
                    }
                }
            }
        }
    }

    fn owned_changed(&mut self, schedule: &mut AnnounceSchedule, owned: &BTreeSet<IpAddr>) {
        schedule.set_owned(owned, Instant::now().into_std());
        for vip in owned {
            let IpAddr::V6(v6) = vip else { continue };
            if self.joined.insert(*v6) {
                let group = frames::solicited_node_mac(*v6);
                if let Err(e) =
                    packet_socket::join_multicast(self.ndp.get_ref(), self.link.index, group)
                {
                    tracing::warn!(interface = %self.link.name, vip = %v6, error = %e,
                        "cannot join the solicited-node group; solicitations for this VIP may not arrive");
                }
            }
        }
    }
}

async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Reads every queued frame and answers those that ask for an owned VIP.
fn drain(
    guard: &mut tokio::io::unix::AsyncFdReadyGuard<'_, Socket>,
    buffer: &mut [u8],
    link: &Link,
    owned: &BTreeSet<IpAddr>,
) {
    loop {
        let read = guard.try_io(|socket| {
            let mut reader: &Socket = socket.get_ref();
            reader.read(buffer)
        });
        match read {
            Ok(Ok(len)) => {
                if let Some(reply) = frames::answer(&buffer[..len], link.mac, owned) {
                    send(guard.get_inner(), &reply, link);
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(interface = %link.name, error = %e, "reading a frame failed");
                return;
            }
            // Would block: the readiness is cleared, wait for the next frame.
            Err(_) => return,
        }
    }
}

/// Sends one frame; a full queue drops it (ARP and NDP tolerate loss, and the schedule repeats).
fn send(socket: &Socket, frame: &[u8], link: &Link) {
    if let Err(e) = socket.send(frame) {
        tracing::warn!(interface = %link.name, error = %e, "sending a frame failed");
    }
}
