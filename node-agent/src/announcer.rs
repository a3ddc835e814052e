//! The L2 announcer (bare metal): answers ARP and IPv6 Neighbor Solicitations for the VIPs this
//! node owns, so that the LAN sends their traffic here.
//!
//! ```text
//!   Services, EndpointSlices, Nodes, AddressPools, L2Announcements ─┐
//!   membership (who is alive) ──────────────────────────────────────┴─▶ plan::plan (pure)
//!        ─▶ the VIPs this node owns, per interface ─▶ responder (AF_PACKET): answers ARP/NS,
//!           gratuitous ARP / unsolicited NA on takeover, periodic refresh; silent otherwise
//! ```

pub mod frames;
pub mod link;
pub mod membership;
pub mod owner;
pub mod packet_socket;
pub mod plan;
pub mod responder;
pub mod schedule;
