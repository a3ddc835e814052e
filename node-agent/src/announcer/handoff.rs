//! Connections that straddle an ownership change. The client's neighbour entry for a VIP flips
//! to the new owner at its gratuitous ARP (or unsolicited NA), between any two packets of a
//! connection. A connection opened through the old owner then sends its next packets to the new
//! owner, which knows nothing of it: under `Cluster` the two nodes masquerade to different
//! addresses, so the new owner's NAT sends the packet to the pod from another source, and the pod
//! (or the node) resets it. Measured: every failed request of a graceful agent restart (leave and
//! rejoin alike) was such a reset, with the new owner's rules long in place.
//!
//! The fix: for a while after taking a VIP over, the new owner hands the TCP packets that belong
//! to no connection it knows (not a SYN, conntrack NEW or INVALID) back to the previous owner,
//! unchanged, and drops its own copy before its NAT sees it. The previous owner's kernel still
//! holds the connection (an agent that stops leaves its rules and conntrack in place), so the
//! connection ends normally, its replies going straight to the client. New connections (SYN)
//! are the new owner's from the flip on.
//!
//! ```text
//!   plans + previous owners ─▶ taken_over ─▶ Handoffs (VIP → previous owner's address, until)
//!   ─▶ restore_input ─▶ mangle PORTICO-L2-HANDOFF:  -d VIP -p tcp ! --syn ctstate NEW,INVALID
//!        ─▶ TTL-1 ─▶ TEE --gateway previous ─▶ DROP         (installed before the GARP goes out)
//! ```
//!
//! The mangle table runs after conntrack and before NAT, and TEE sends its copy straight to the
//! gateway (no forwarding, so no ICMP redirect teaches the client a route to the old owner).
//! Only the current owner forwards, and every hop lowers the TTL, so two nodes that both think
//! they took the VIP from each other (for the milliseconds the membership takes to agree)
//! cannot loop a packet for long.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::plan::VipPlan;
use crate::dataplane::model::IpFamily;

/// How long the new owner hands unknown connections back: long enough for the requests and
/// short transfers under way at the flip; longer-lived connections break after it, as in any L2
/// failover.
pub const HANDOFF_FOR: Duration = Duration::from_secs(120);

/// The mangle chain holding the hand-back rules (Portico's only mangle chain).
pub const CHAIN: &str = "PORTICO-L2-HANDOFF";

/// One VIP this node took over: where its earlier connections live, and until when they are
/// handed back there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handoff {
    pub previous: IpAddr,
    pub until: Instant,
}

/// The VIPs this node currently hands back connections for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handoffs {
    by_vip: BTreeMap<IpAddr, Handoff>,
}

/// The VIPs `me` takes over in this pass, with the node that had them. `before` is the owner
/// this node last saw for each VIP. Where it has no record (it has just started, so it is
/// taking VIPs back after a restart), the previous owner is the one the VIP has when `me` is
/// left out, which `owner_without_me` tells (the same pure owner choice, so every node agrees).
/// A VIP that had no owner before has no connections to hand back.
pub fn taken_over(
    plans: &[VipPlan],
    before: &BTreeMap<IpAddr, Option<String>>,
    me: &str,
    owner_without_me: impl Fn(IpAddr) -> Option<String>,
) -> Vec<(IpAddr, String)> {
    plans
        .iter()
        .filter(|vip| vip.owner() == Some(me))
        .filter_map(|vip| {
            let previous = match before.get(&vip.ip) {
                Some(Some(owner)) if owner == me => return None,
                Some(Some(owner)) => owner.clone(),
                Some(None) => return None,
                None => owner_without_me(vip.ip)?,
            };
            (previous != me).then_some((vip.ip, previous))
        })
        .collect()
}

impl Handoffs {
    /// Adds the VIPs just taken over (`taken`: VIP and the previous owner's address, of the
    /// VIP's family), forgets those this node no longer owns and those whose time is up.
    /// True when the rules must change.
    pub fn update(
        &mut self,
        taken: &[(IpAddr, IpAddr)],
        owned: &BTreeSet<IpAddr>,
        now: Instant,
    ) -> bool {
        let before = self.by_vip.clone();
        self.by_vip
            .retain(|vip, handoff| owned.contains(vip) && handoff.until > now);
        for (vip, previous) in taken {
            if owned.contains(vip) && IpFamily::of(vip) == IpFamily::of(previous) {
                self.by_vip.insert(
                    *vip,
                    Handoff {
                        previous: *previous,
                        until: now + HANDOFF_FOR,
                    },
                );
            }
        }
        // Only the addresses matter to the rules, not the times.
        let rules = |m: &BTreeMap<IpAddr, Handoff>| -> Vec<(IpAddr, IpAddr)> {
            m.iter().map(|(vip, h)| (*vip, h.previous)).collect()
        };
        rules(&before) != rules(&self.by_vip)
    }

    pub fn is_empty(&self) -> bool {
        self.by_vip.is_empty()
    }

    /// When the next hand-back ends, if any.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.by_vip.values().map(|h| h.until).min()
    }

    /// The `iptables-restore --noflush` input (or `ip6tables-restore`) that sets the chain to
    /// exactly these hand-backs; the chain's declaration flushes it first.
    pub fn restore_input(&self, family: IpFamily) -> String {
        let mut text = format!("*mangle\n:{CHAIN} - [0:0]\n");
        let (host, ttl_low, ttl_dec) = match family {
            IpFamily::V4 => ("32", "-m ttl --ttl-lt 2", "-j TTL --ttl-dec 1"),
            IpFamily::V6 => ("128", "-m hl --hl-lt 2", "-j HL --hl-dec 1"),
        };
        for (vip, handoff) in self
            .by_vip
            .iter()
            .filter(|(vip, _)| IpFamily::of(vip) == family)
        {
            let unknown = format!(
                "-A {CHAIN} -d {vip}/{host} -p tcp -m tcp ! --syn -m conntrack --ctstate NEW,INVALID \
                 -m comment --comment \"connections of {vip} opened through {}\"",
                handoff.previous
            );
            text.push_str(&format!("{unknown} {ttl_low} -j DROP\n"));
            text.push_str(&format!("{unknown} {ttl_dec}\n"));
            text.push_str(&format!(
                "{unknown} -j TEE --gateway {}\n",
                handoff.previous
            ));
            text.push_str(&format!("{unknown} -j DROP\n"));
        }
        text.push_str("COMMIT\n");
        text
    }
}

#[cfg(test)]
mod tests;
