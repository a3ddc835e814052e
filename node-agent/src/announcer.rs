//! The L2 announcer (bare metal): answers ARP and IPv6 Neighbor Solicitations for the VIPs this
//! node owns, so that the LAN sends their traffic here.
//!
//! ```text
//!   Services, EndpointSlices, Nodes, AddressPools, L2Announcements ─┐
//!   membership (who is alive) ──────────────────────────────────────┴─▶ plan::plan (pure)
//!        ─▶ the VIPs this node owns, per interface ─▶ gate: a takeover waits for the
//!           dataplane's rules (the proxier's synced generation) ─▶ responder (AF_PACKET):
//!           answers ARP/NS, gratuitous ARP / unsolicited NA on takeover, periodic refresh;
//!           silent otherwise
//! ```

pub mod component;
pub mod frames;
pub mod gate;
pub mod guard;
pub mod handoff;
pub mod handoff_rules;
pub mod link;
pub mod membership;
pub mod owner;
pub mod packet_socket;
pub mod plan;
pub mod report;
pub mod responder;
pub mod schedule;
pub mod status;

pub use component::{AnnouncerConfig, AnnouncerHandle};

/// What the announcer reads of the dataplane that carries its VIPs' traffic (`gate`).
#[derive(Clone, Debug)]
pub enum Dataplane {
    /// `--proxy-mode off`: another proxy writes the rules; nothing to wait for.
    Off,
    /// The shared stores' generation (`stores::Generation::covered`) that the proxier's last
    /// successful sync covered; None until its first.
    Synced(tokio::sync::watch::Receiver<Option<u64>>),
}

impl Dataplane {
    /// How far the dataplane has synced now.
    pub fn synced(&self) -> gate::Synced {
        match self {
            Dataplane::Off => gate::Synced::NotGated,
            Dataplane::Synced(synced) => gate::Synced::Upto(*synced.borrow()),
        }
    }

    /// Resolves when the proxier has synced again.
    pub async fn changed(&mut self) {
        if let Dataplane::Synced(synced) = self
            && synced.changed().await.is_ok()
        {
            return;
        }
        // Off, or the proxier is gone: nothing will change.
        std::future::pending().await
    }
}

/// Starts the announcer beside the proxier, over the agent's shared Service and EndpointSlice
/// stores, with its own change channel (`changed`, one of the shared stores' consumers). It
/// joins the membership (and so takes VIPs) only after the dataplane's first sync, and takes a
/// VIP over only once the dataplane has synced the VIP's last change (`gate`), so a node never
/// attracts traffic it has no rules for yet. `readiness` carries the watches' health.
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    args: &crate::Args,
    node_name: &str,
    client: kube::Client,
    readiness: &portico_runtime::Readiness,
    dataplane: Dataplane,
    shared: crate::stores::ServiceStores,
    changed: std::sync::Arc<tokio::sync::Notify>,
    metrics: crate::metrics::AnnouncerMetrics,
) -> AnnouncerHandle {
    let config = AnnouncerConfig {
        node_name: node_name.to_owned(),
        node_ips: args.node_ip.clone(),
        memberlist_port: args.memberlist_port,
        refresh: (!args.l2_refresh_period.is_zero()).then_some(args.l2_refresh_period),
    };
    component::spawn(
        config, client, readiness, dataplane, shared, changed, metrics,
    )
}
