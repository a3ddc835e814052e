//! Which agents are alive: SWIM gossip between the agents over UDP (foca). foca is sans-IO; this
//! module drives it: the socket, its timers, the peers to announce to, and the graceful leave.
//!
//! ```text
//!   Nodes' InternalIPs ──peers──▶ ┌ foca ┐ ◀──UDP :memberlist-port──▶ other agents
//!   timers (BTreeMap by due time) ▶│      │──notifications──▶ alive node names (watch)
//!   SIGTERM ──leave()─────────────▶└──────┘──leave_cluster: peers mark us down at once
//! ```
//!
//! Timers are sub-second (probe every 300 ms, suspicion 300 ms), so a dead agent is down in
//! the others' view well within a second on a LAN; Node conditions and Leases take 10 s or more.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use foca::{
    AccumulatingRuntime, Config, Foca, Identity, OwnedNotification, PeriodicParams, PostcardCodec,
    Timer,
};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// How often a probe is sent, and how long a direct probe waits before asking others.
pub const PROBE_PERIOD: Duration = Duration::from_millis(300);
pub const PROBE_RTT: Duration = Duration::from_millis(100);
/// How long a suspect stays active before it is declared down.
pub const SUSPECT_TO_DOWN: Duration = Duration::from_millis(300);
/// How often peers not (or no longer) in the membership are announced to: how a restarted
/// agent, or one that started first, finds the others.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(1);
/// At start, how long to wait for the peers before publishing who is alive: an agent that
/// published "only me" at once would take over every VIP for a moment.
const SETTLE_FOR: Duration = Duration::from_millis(1500);

/// An agent in the membership: its node, its gossip address, and a generation that grows on
/// every start (and every rejoin), so a restarted agent wins over its earlier self.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub node: String,
    pub addr: SocketAddr,
    pub generation: u64,
}

impl Identity for Peer {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(Peer {
            generation: self.generation.wrapping_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.generation > adversary.generation
    }
}

/// foca's configuration for a LAN of `cluster_size` agents, with sub-second timers.
pub fn config(cluster_size: usize) -> Config {
    let size = NonZeroU32::new(u32::try_from(cluster_size.max(1)).unwrap_or(u32::MAX))
        .unwrap_or(NonZeroU32::MIN);
    let mut config = Config::new_lan(size);
    config.probe_period = PROBE_PERIOD;
    config.probe_rtt = PROBE_RTT;
    config.suspect_to_down_after = SUSPECT_TO_DOWN;
    config.periodic_gossip = Some(PeriodicParams {
        frequency: Duration::from_millis(100),
        num_members: NonZeroUsize::new(3).expect("non-zero"),
    });
    config
}

enum Command {
    Peers(Vec<(String, SocketAddr)>),
    Leave(oneshot::Sender<()>),
}

/// The running membership.
pub struct Membership {
    alive: watch::Receiver<Option<BTreeSet<String>>>,
    commands: mpsc::Sender<Command>,
}

impl Membership {
    /// Binds `bind` and starts gossiping as `node`, reachable by the others at `advertise`.
    pub async fn start(node: &str, bind: SocketAddr, advertise: SocketAddr) -> io::Result<Self> {
        let socket = UdpSocket::bind(bind).await?;
        let generation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or_default();
        let identity = Peer {
            node: node.to_owned(),
            addr: advertise,
            generation,
        };
        let (alive_tx, alive) = watch::channel(None);
        let (commands, rx) = mpsc::channel(16);
        tokio::spawn(drive(identity, socket, rx, alive_tx));
        Ok(Membership { alive, commands })
    }

    /// Node names alive in the membership (this node included); `None` until the membership
    /// has settled after start.
    pub fn alive(&self) -> watch::Receiver<Option<BTreeSet<String>>> {
        self.alive.clone()
    }

    /// The agents to find: every Node's name and gossip address.
    pub async fn set_peers(&self, peers: Vec<(String, SocketAddr)>) {
        let _ = self.commands.send(Command::Peers(peers)).await;
    }

    /// Leaves the membership: the others mark this node down at once and take over its VIPs.
    pub async fn leave(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Leave(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn drive(
    identity: Peer,
    socket: UdpSocket,
    mut commands: mpsc::Receiver<Command>,
    alive: watch::Sender<Option<BTreeSet<String>>>,
) {
    let me = identity.node.clone();
    let rng: StdRng = rand::make_rng();
    let mut foca = Foca::new(identity, config(1), rng, PostcardCodec);
    let mut runtime = AccumulatingRuntime::new();
    let mut timers: BTreeMap<(Instant, u64), Timer<Peer>> = BTreeMap::new();
    let mut timer_seq = 0u64;
    let mut peers: Vec<Peer> = Vec::new();
    let mut announce = tokio::time::interval(ANNOUNCE_EVERY);
    let settle_until = Instant::now() + SETTLE_FOR;
    let mut settled = false;
    let mut buffer = vec![0u8; 65_536];
    loop {
        let next_timer = timers.keys().next().map(|(at, _)| *at);
        tokio::select! {
            received = socket.recv_from(&mut buffer) => match received {
                Ok((len, _from)) => {
                    if let Err(e) = foca.handle_data(&buffer[..len], &mut runtime) {
                        tracing::debug!(error = %e, "ignored a gossip message");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "gossip socket receive failed"),
            },
            _ = sleep_until(next_timer) => {
                let now = Instant::now();
                while let Some(entry) = timers.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let timer = entry.remove();
                    if let Err(e) = foca.handle_timer(timer, &mut runtime) {
                        tracing::debug!(error = %e, "gossip timer failed");
                    }
                }
            }
            command = commands.recv() => match command {
                Some(Command::Peers(list)) => {
                    peers = list
                        .into_iter()
                        .filter(|(node, _)| *node != me)
                        .map(|(node, addr)| Peer { node, addr, generation: 0 })
                        .collect();
                    if let Err(e) = foca.set_config(config(peers.len() + 1)) {
                        tracing::debug!(error = %e, "gossip configuration unchanged");
                    }
                    announce_to_missing(&mut foca, &peers, &mut runtime);
                }
                Some(Command::Leave(done)) => {
                    if let Err(e) = foca.leave_cluster(&mut runtime) {
                        tracing::warn!(error = %e, "leaving the membership failed");
                    }
                    flush(&mut runtime, &socket, &mut timers, &mut timer_seq).await;
                    tracing::info!(node = %me, "left the membership");
                    let _ = done.send(());
                    return;
                }
                None => return,
            },
            _ = announce.tick() => announce_to_missing(&mut foca, &peers, &mut runtime),
        }
        flush(&mut runtime, &socket, &mut timers, &mut timer_seq).await;
        let members: BTreeSet<String> = foca
            .iter_members()
            .map(|member| member.id().node.clone())
            .chain(std::iter::once(me.clone()))
            .collect();
        if !settled {
            let all_heard = peers.iter().all(|p| members.contains(&p.node));
            settled = (all_heard && !peers.is_empty()) || Instant::now() >= settle_until;
            if !settled {
                continue;
            }
        }
        alive.send_if_modified(|current| {
            if current.as_ref() == Some(&members) {
                false
            } else {
                tracing::info!(alive = ?members, "membership changed");
                *current = Some(members);
                true
            }
        });
    }
}

/// Announces to the peers foca does not hold active: at start, after a partition, and to a
/// restarted agent (whose new generation then replaces the old one).
fn announce_to_missing(
    foca: &mut Foca<Peer, PostcardCodec, StdRng, foca::NoCustomBroadcast>,
    peers: &[Peer],
    runtime: &mut AccumulatingRuntime<Peer>,
) {
    let active: BTreeSet<SocketAddr> = foca.iter_members().map(|m| m.id().addr).collect();
    for peer in peers.iter().filter(|p| !active.contains(&p.addr)) {
        if let Err(e) = foca.announce(peer.clone(), &mut *runtime) {
            tracing::debug!(peer = %peer.node, error = %e, "announce failed");
        }
    }
}

async fn flush(
    runtime: &mut AccumulatingRuntime<Peer>,
    socket: &UdpSocket,
    timers: &mut BTreeMap<(Instant, u64), Timer<Peer>>,
    timer_seq: &mut u64,
) {
    while let Some((to, data)) = runtime.to_send() {
        // UDP to a node whose agent is gone fails or vanishes alike; foca's probes notice.
        let _ = socket.send_to(&data, to.addr).await;
    }
    let now = Instant::now();
    while let Some((after, timer)) = runtime.to_schedule() {
        *timer_seq += 1;
        timers.insert((now + after, *timer_seq), timer);
    }
    while let Some(notification) = runtime.to_notify() {
        match notification {
            OwnedNotification::MemberUp(peer) => {
                tracing::info!(node = %peer.node, addr = %peer.addr, "agent joined the membership");
            }
            OwnedNotification::MemberDown(peer) => {
                tracing::info!(node = %peer.node, addr = %peer.addr, "agent left the membership (down)");
            }
            OwnedNotification::Defunct | OwnedNotification::Rejoin(_) => {
                tracing::warn!(?notification, "this agent was declared down by the others");
            }
            _ => {}
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
