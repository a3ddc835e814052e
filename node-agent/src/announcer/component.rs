//! The announcer as an agent component: the agent's shared Service and EndpointSlice stores,
//! its own watches of the rest, its own change channel (never the proxier's), the membership,
//! and one responder per interface it announces on.
//!
//! ```text
//!   reflectors ──changed (own Notify)──┐
//!   membership ──alive (watch)─────────┴─▶ plan::plan ─▶ owned VIPs per interface
//!        ─▶ Responder tasks (watch each) ; ownership changes ─▶ log line, metric, Event on
//!           the Service ; the owner (or the reporter) ─▶ the Service's L2Announced condition
//!        ─▶ before any announcement: hand-back rules (handoff) for connections open through
//!           the previous owner of a VIP taken over, or through the owner of one this node
//!           would take over
//!        ─▶ a takeover waits until the dataplane has synced the VIP's last change (gate;
//!           woken by the proxier's synced generation)
//!   stop(): leave the membership first (peers take over), then fall silent
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use portico_api::{AddressPool, L2Announcement};
use portico_runtime::Readiness;
use portico_runtime::reflect::{reflect_reported, reflect_reported_trimmed};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::Dataplane;
use super::gate::{self, Decision, Gate, Synced};
use super::guard::{self, Reported};
use super::handoff::{self, Handoffs};
use super::handoff_rules::HandoffRules;
use super::link;
use super::membership::Membership;
use super::plan::{Inputs, Outcome, VipPlan, plan};
use super::report::{self, Reporting};
use super::responder::Responder;
use super::status::{self, Writer};
use crate::metrics::AnnouncerMetrics;
use crate::node_info::node_ips;
use crate::stores::ServiceStores;

/// How the agent runs its announcer.
#[derive(Clone, Debug)]
pub struct AnnouncerConfig {
    pub node_name: String,
    /// `--node-ip`: this node's addresses when set, else its Node's.
    pub node_ips: Vec<IpAddr>,
    /// UDP port of the membership; 0 runs without it (every node counts as alive: VIPs are
    /// still announced by one node each, but a dead node's VIPs do not move).
    pub memberlist_port: u16,
    /// Announcement period after the takeover burst; `None` for none.
    pub refresh: Option<Duration>,
}

/// Stops the announcer gracefully.
pub struct AnnouncerHandle {
    stop: mpsc::Sender<oneshot::Sender<()>>,
}

impl AnnouncerHandle {
    /// Leaves the membership (so that the other nodes take over this node's VIPs at once),
    /// then stops answering. Bounded, so a stuck peer cannot hold up the agent's exit.
    pub async fn stop(&self) {
        let (done, wait) = oneshot::channel();
        if self.stop.send(done).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), wait).await;
        }
    }
}

struct Stores {
    /// The agent's shared Services and EndpointSlices.
    shared: ServiceStores,
    nodes: Store<Node>,
    // Guarded: one object the type cannot read is skipped and reported, not fatal to the list.
    pools: Store<DeserializeGuard<AddressPool>>,
    announcements: Store<DeserializeGuard<L2Announcement>>,
}

/// Starts the announcer's own watches (Nodes, pools, announcements) and its task, over the
/// agent's shared Service and EndpointSlice stores. `changed` is the announcer's own wake-up:
/// the shared stores must have been started with it among their consumers.
pub fn spawn(
    config: AnnouncerConfig,
    client: kube::Client,
    readiness: &Readiness,
    dataplane: Dataplane,
    shared: ServiceStores,
    changed: Arc<Notify>,
    metrics: AnnouncerMetrics,
) -> AnnouncerHandle {
    let watches = readiness.watches();
    let stores = Stores {
        shared,
        // Every Node, trimmed to what the plan reads (`trim::trim_node`).
        nodes: reflect_reported_trimmed(
            Api::all(client.clone()),
            watcher::Config::default(),
            Some(changed.clone()),
            watches,
            crate::trim::trim_node,
        ),
        pools: reflect_reported(
            Api::all(client.clone()),
            watcher::Config::default(),
            Some(changed.clone()),
            watches,
        ),
        announcements: reflect_reported(
            Api::all(client.clone()),
            watcher::Config::default(),
            Some(changed.clone()),
            watches,
        ),
    };
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "portico-agent".into(),
            instance: Some(config.node_name.clone()),
        },
    );
    let (stop, stop_rx) = mpsc::channel(1);
    let outputs = Outputs {
        client,
        recorder,
        metrics,
    };
    tokio::spawn(run(config, stores, changed, outputs, dataplane, stop_rx));
    AnnouncerHandle { stop }
}

/// Where the announcer tells what it does: Events, the Services' condition, metrics.
struct Outputs {
    client: kube::Client,
    recorder: Recorder,
    metrics: AnnouncerMetrics,
}

struct Running {
    owned: watch::Sender<BTreeSet<IpAddr>>,
}

async fn run(
    config: AnnouncerConfig,
    stores: Stores,
    changed: Arc<Notify>,
    outputs: Outputs,
    mut dataplane: Dataplane,
    mut stop: mpsc::Receiver<oneshot::Sender<()>>,
) {
    let _ = tokio::join!(
        stores.shared.wait_until_ready(),
        stores.nodes.wait_until_ready(),
        stores.pools.wait_until_ready(),
        stores.announcements.wait_until_ready(),
    );
    // Join (and so take VIPs, taking them back after a restart or a reboot) only once this
    // node's rules are in place; until then the other nodes keep them.
    let unsynced = dataplane.synced() == Synced::Upto(None);
    if let Dataplane::Synced(synced) = &mut dataplane
        && unsynced
    {
        tracing::info!("waiting for the dataplane's first sync before joining the membership");
        tokio::select! {
            // Err: the proxier is gone (the agent is stopping); the gate then holds every VIP.
            _ = synced.wait_for(Option::is_some) => {}
            done = stop.recv() => {
                if let Some(done) = done {
                    let _ = done.send(());
                }
                return;
            }
        }
    }
    let me = config.node_name.clone();
    let own_ips = || -> Vec<IpAddr> {
        if !config.node_ips.is_empty() {
            return config.node_ips.clone();
        }
        stores
            .nodes
            .state()
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(me.as_str()))
            .map(|n| node_ips(n))
            .unwrap_or_default()
    };
    let membership = match (config.memberlist_port, own_ips().first()) {
        (0, _) => None,
        (port, Some(ip)) => {
            let bind = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
            let bind = if ip.is_ipv6() {
                SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), port)
            } else {
                bind
            };
            match Membership::start(&me, bind, SocketAddr::new(*ip, port)).await {
                Ok(membership) => Some(membership),
                Err(e) => {
                    tracing::error!(port, error = %e,
                        "cannot bind --memberlist-port; announcing without liveness (a dead node's VIPs will not move)");
                    None
                }
            }
        }
        (_, None) => {
            tracing::error!(
                "this node has no address (its Node has no InternalIP; or set --node-ip); announcing without liveness"
            );
            None
        }
    };
    // Hand-backs of an earlier run are stale: this run works out its own.
    HandoffRules::clear_leftovers().await;
    let mut handoffs = Handoffs::default();
    let mut handoff_rules = HandoffRules::default();
    let mut handoff_failed = false;
    let mut gate = Gate::default();
    let mut held = Decision::default().held;
    let mut alive_rx = membership.as_ref().map(Membership::alive);
    let mut responders: BTreeMap<String, Running> = BTreeMap::new();
    let mut owners: BTreeMap<IpAddr, Option<String>> = BTreeMap::new();
    let mut uncovered: BTreeSet<IpAddr> = BTreeSet::new();
    let mut peers: Vec<(String, SocketAddr)> = Vec::new();
    let mut reported_pools = Reported::default();
    let mut reported_announcements = Reported::default();
    loop {
        let nodes = stores.nodes.state();
        if let Some(membership) = &membership {
            let fresh = gossip_peers(&nodes, config.memberlist_port);
            if fresh != peers {
                peers = fresh;
                membership.set_peers(peers.clone()).await;
            }
        }
        let alive = match &alive_rx {
            Some(rx) => rx.borrow().clone(),
            None => Some(
                nodes
                    .iter()
                    .filter_map(|n| n.metadata.name.clone())
                    .collect(),
            ),
        };
        // One node (the first alive by name) writes the Warnings, not every node.
        let reporter = alive
            .as_ref()
            .is_some_and(|alive| alive.first().map(String::as_str) == Some(me.as_str()));
        let (pools, bad_pools) = guard::split(&stores.pools);
        let (announcements, bad_announcements) = guard::split(&stores.announcements);
        for pool in reported_pools.due(&bad_pools) {
            // The controller raises the Warning on the pool; the agent only skips it.
            tracing::warn!(pool = ?pool.metadata.name, error = %pool.error,
                "cannot read AddressPool; its VIPs are not announced");
        }
        let bad = reported_announcements.due(&bad_announcements);
        guard::report_unreadable_announcements(&bad, reporter, &outputs.recorder).await;
        // Until the membership has settled, this node announces nothing (the others do).
        let services = stores.shared.load_balancers.state();
        let slices = stores.shared.slices.state();
        let plans = match &alive {
            Some(alive) => plan(&Inputs {
                services: &services,
                slices: &slices,
                nodes: &nodes,
                pools: &pools,
                announcements: &announcements,
                alive,
            }),
            None => Vec::new(),
        };
        // Before `owners` moves on (it holds the owners seen before this pass).
        let handoffs_changed =
            alive.is_some() && handoffs.update(&plans, &owners, &me, Instant::now());
        let default_interface = link::holding(&own_ips()).ok().flatten();
        let mut status_failed = false;
        if let Some(alive) = &alive {
            let reporting = Reporting {
                me: &me,
                reporter,
                alive,
                recorder: &outputs.recorder,
                services: &stores.shared.load_balancers,
                metrics: &outputs.metrics,
            };
            report::report_changes(&plans, &mut owners, &mut uncovered, &reporting).await;
            let writer = Writer {
                me: &me,
                reporter,
                default_interface: default_interface.as_deref(),
            };
            status_failed =
                !status::write_conditions(&plans, &writer, &services, &outputs.client).await;
        }
        // After every read of the stores this pass: the plan came from no later state.
        let vips = gate::vips_of(&plans, &me, &stores.shared.services, &slices);
        let seen = stores.shared.generation.seen();
        let decision = gate.update(vips, seen, dataplane.synced());
        if decision.held != held {
            // Empty: the dataplane caught up, and the VIPs held until now are announced.
            tracing::info!(held = ?decision.held, synced = ?dataplane.synced(),
                "VIPs this node owns wait for the dataplane to sync their last change (VIP: generation)");
            held = decision.held.clone();
        }
        let wanted = decision.announced(owned_by_interface(
            &plans,
            &me,
            default_interface.as_deref(),
        ));
        // The hand-back rules go in before the responders announce a takeover.
        if handoffs_changed || handoff_failed {
            let resolved = handoff::resolve(handoffs.rules(), |node, vip| {
                node_address(&nodes, node, vip)
            });
            handoff_failed = !handoff_rules.apply(&resolved).await;
        }
        let retry =
            apply(&wanted, &mut responders, config.refresh) || status_failed || handoff_failed;
        tokio::select! {
            _ = changed.notified() => {}
            _ = alive_changed(&mut alive_rx) => {}
            // A responder that could not start or a condition that could not be written.
            _ = tokio::time::sleep(Duration::from_secs(5)), if retry => {}
            _ = sleep_until(handoffs.next_expiry()) => {}
            _ = dataplane.changed(), if !held.is_empty() => {}
            done = stop.recv() => {
                if let Some(membership) = &membership {
                    membership.leave().await;
                }
                responders.clear();
                handoff_rules.remove().await;
                if let Some(done) = done {
                    let _ = done.send(());
                }
                return;
            }
        }
    }
}

async fn alive_changed(rx: &mut Option<watch::Receiver<Option<BTreeSet<String>>>>) {
    match rx {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// `node`'s first address of `vip`'s family.
fn node_address(nodes: &[Arc<Node>], node: &str, vip: IpAddr) -> Option<IpAddr> {
    let node = nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(node))?;
    node_ips(node)
        .into_iter()
        .find(|ip| ip.is_ipv4() == vip.is_ipv4())
}

/// Every Node's name and gossip address (its first InternalIP, else ExternalIP).
fn gossip_peers(nodes: &[Arc<Node>], port: u16) -> Vec<(String, SocketAddr)> {
    nodes
        .iter()
        .filter_map(|n| {
            Some((
                n.metadata.name.clone()?,
                SocketAddr::new(*node_ips(n).first()?, port),
            ))
        })
        .collect()
}

/// The VIPs this node owns, per interface name. VIPs to be announced on "the default
/// interface" go to `default_interface`, and nowhere when it is unknown.
pub fn owned_by_interface(
    plans: &[VipPlan],
    me: &str,
    default_interface: Option<&str>,
) -> BTreeMap<String, BTreeSet<IpAddr>> {
    let mut owned: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
    for vip in plans {
        let Outcome::Owner { node, interfaces } = &vip.outcome else {
            continue;
        };
        if node != me {
            continue;
        }
        let default = interfaces.default.then_some(default_interface).flatten();
        for name in interfaces.named.iter().map(String::as_str).chain(default) {
            owned.entry(name.to_owned()).or_default().insert(vip.ip);
        }
    }
    owned
}

/// Starts, updates and stops responders to match `wanted`; true when one could not start
/// (retried later).
fn apply(
    wanted: &BTreeMap<String, BTreeSet<IpAddr>>,
    responders: &mut BTreeMap<String, Running>,
    refresh: Option<Duration>,
) -> bool {
    // Dropping the sender stops the task: it answers nothing from that moment.
    responders.retain(|name, _| wanted.contains_key(name));
    let mut failed = false;
    for (name, vips) in wanted {
        if let Some(running) = responders.get(name) {
            running.owned.send_if_modified(|current| {
                let differs = current != vips;
                if differs {
                    current.clone_from(vips);
                }
                differs
            });
            continue;
        }
        match link::link(name).and_then(Responder::open) {
            Ok(responder) => {
                let (owned, rx) = watch::channel(vips.clone());
                tokio::spawn(responder.run(rx, refresh));
                tracing::info!(interface = %name, "announcing on interface");
                responders.insert(name.clone(), Running { owned });
            }
            Err(e) => {
                tracing::warn!(interface = %name, error = %e, "cannot announce on this interface; retrying");
                failed = true;
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use portico_api::ServiceKey;

    use super::*;
    use crate::announcer::plan::Interfaces;

    fn owned_plan(ip: &str, node: &str, default: bool, named: &[&str]) -> VipPlan {
        VipPlan {
            ip: ip.parse().unwrap(),
            pool: "lab".into(),
            services: vec![ServiceKey::new("default", "web")],
            outcome: Outcome::Owner {
                node: node.into(),
                interfaces: Interfaces {
                    default,
                    named: named.iter().map(|n| n.to_string()).collect(),
                },
            },
            runner_up: None,
        }
    }

    #[test]
    fn only_this_nodes_vips_are_announced_on_their_interfaces() {
        let plans = vec![
            owned_plan("198.18.0.200", "node-a", true, &[]),
            owned_plan("198.18.0.201", "node-a", false, &["eth1"]),
            owned_plan("198.18.0.202", "node-b", true, &["eth1"]),
            VipPlan {
                outcome: Outcome::NotCovered,
                ..owned_plan("198.18.0.203", "node-a", true, &[])
            },
        ];
        let owned = owned_by_interface(&plans, "node-a", Some("eth0"));
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        assert_eq!(
            owned,
            BTreeMap::from([
                ("eth0".to_string(), BTreeSet::from([ip("198.18.0.200")])),
                ("eth1".to_string(), BTreeSet::from([ip("198.18.0.201")])),
            ])
        );
        // Without a default interface, VIPs that need it are not announced anywhere.
        let owned = owned_by_interface(&plans, "node-a", None);
        assert_eq!(owned.keys().collect::<Vec<_>>(), ["eth1"]);
        assert!(owned_by_interface(&plans, "node-c", Some("eth0")).is_empty());
    }
}
