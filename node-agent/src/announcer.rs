//! The L2 announcer (bare metal): answers ARP and IPv6 Neighbor Solicitations for the VIPs this
//! node owns, so that the LAN sends their traffic here.
//!
//! ```text
//!   Services, EndpointSlices, Nodes, AddressPools, L2Announcements ─┐
//!   membership (who is alive) ──────────────────────────────────────┴─▶ plan::plan (pure)
//!        ─▶ the VIPs this node owns, per interface ─▶ responder (AF_PACKET): answers ARP/NS,
//!           gratuitous ARP / unsolicited NA on takeover, periodic refresh; silent otherwise
//! ```

pub mod component;
pub mod frames;
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

/// Starts the announcer beside the proxier, over the agent's shared Service and EndpointSlice
/// stores, with its own change channel (`changed`, one of the shared stores' consumers). It
/// joins the membership (and so takes VIPs) only once `readiness` is set: after the dataplane's
/// first sync, so a node never attracts traffic it has no rules for yet.
pub fn spawn(
    args: &crate::Args,
    node_name: &str,
    client: kube::Client,
    readiness: &portico_runtime::Readiness,
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
    component::spawn(config, client, readiness, shared, changed, metrics)
}
