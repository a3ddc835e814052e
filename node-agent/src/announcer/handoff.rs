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
//! The same rule, set ahead on the node that would take a VIP over if its owner went, makes a
//! crash or a leave straddle-safe too without holding up the takeover's first announcement.
//!
//! ```text
//!   plans (owner, runner-up) + owners seen before ─▶ Handoffs::update ─▶ VIP → node
//!   ─▶ resolve (node's address) ─▶ restore_input ─▶ mangle PORTICO-L2-HANDOFF:
//!        -d VIP -p tcp ! --syn ctstate NEW,INVALID ─▶ TTL-1 ─▶ TEE --gateway node ─▶ DROP
//!   (written before the responders announce a takeover)
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

/// Where this node sends the unknown connections of each VIP, by node name, and what it needs
/// to remember for that. Two kinds of rule:
/// - taken over: a VIP this node took from another within `HANDOFF_FOR` goes back to that node;
/// - standby: a VIP another node owns and this node would take if the owner went (the plan's
///   runner-up) goes to the owner. It does nothing while the owner answers, since the VIP's
///   traffic does not come here; it is in place before a failover, so the takeover waits for no
///   rule to be written (the owner crashed or left: the new owner's first announcement is not
///   held up). Not for an owner that took the VIP from this node within `HANDOFF_FOR`: that owner
///   hands unknown connections here, and the two rules would send packets back and forth.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handoffs {
    /// VIP → (the node it was taken from, until when).
    taken: BTreeMap<IpAddr, (String, Instant)>,
    /// VIP → (the node that took it from this one, until when).
    lost: BTreeMap<IpAddr, (String, Instant)>,
    /// The rules as last worked out: VIP → node.
    rules: BTreeMap<IpAddr, String>,
}

impl Handoffs {
    /// Takes one pass's plans. `before`: the owner this node last saw for each VIP (no record:
    /// it has just started, so a VIP it owns now is taken back from the owner it has without
    /// this node, the plan's runner-up). True when the rules changed.
    pub fn update(
        &mut self,
        plans: &[VipPlan],
        before: &BTreeMap<IpAddr, Option<String>>,
        me: &str,
        now: Instant,
    ) -> bool {
        let current: BTreeSet<IpAddr> = plans.iter().map(|p| p.ip).collect();
        self.taken
            .retain(|vip, (_, until)| current.contains(vip) && *until > now);
        self.lost
            .retain(|vip, (_, until)| current.contains(vip) && *until > now);
        for vip in plans {
            let owner = vip.owner();
            let was = before.get(&vip.ip);
            let was_mine = was == Some(&Some(me.to_owned()));
            if owner == Some(me) && !was_mine {
                let previous = match was {
                    Some(Some(previous)) => Some(previous.clone()),
                    Some(None) => None,
                    None => vip.runner_up.clone(),
                };
                if let Some(previous) = previous {
                    self.taken.insert(vip.ip, (previous, now + HANDOFF_FOR));
                }
                self.lost.remove(&vip.ip);
            } else if owner != Some(me) && was_mine {
                self.taken.remove(&vip.ip);
                if let Some(owner) = owner {
                    self.lost
                        .insert(vip.ip, (owner.to_owned(), now + HANDOFF_FOR));
                }
            }
        }
        let mut rules = BTreeMap::new();
        for vip in plans {
            match vip.owner() {
                Some(owner) if owner == me => {
                    if let Some((previous, _)) = self.taken.get(&vip.ip) {
                        rules.insert(vip.ip, previous.clone());
                    }
                }
                Some(owner) if vip.runner_up.as_deref() == Some(me) => {
                    let took_it_from_me = self.lost.get(&vip.ip).is_some_and(|(to, _)| to == owner);
                    if !took_it_from_me {
                        rules.insert(vip.ip, owner.to_owned());
                    }
                }
                _ => {}
            }
        }
        let changed = rules != self.rules;
        self.rules = rules;
        changed
    }

    /// The rules: VIP → the node its unknown connections go to.
    pub fn rules(&self) -> &BTreeMap<IpAddr, String> {
        &self.rules
    }

    /// When a rule may next change with time alone.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.taken
            .values()
            .chain(self.lost.values())
            .map(|(_, until)| *until)
            .min()
    }
}

/// The rules with each node's address of the VIP's family (`address`), ready to render; a
/// node without one is left out.
pub fn resolve(
    rules: &BTreeMap<IpAddr, String>,
    address: impl Fn(&str, IpAddr) -> Option<IpAddr>,
) -> BTreeMap<IpAddr, IpAddr> {
    rules
        .iter()
        .filter_map(|(vip, node)| {
            let to = address(node, *vip)?;
            (IpFamily::of(vip) == IpFamily::of(&to)).then_some((*vip, to))
        })
        .collect()
}

/// The `iptables-restore --noflush` input (or `ip6tables-restore`) that sets the chain to
/// exactly these hand-backs (VIP → the address its unknown connections go to); the chain's
/// declaration flushes it first.
pub fn restore_input(resolved: &BTreeMap<IpAddr, IpAddr>, family: IpFamily) -> String {
    let mut text = format!("*mangle\n:{CHAIN} - [0:0]\n");
    let (host, ttl_low, ttl_dec) = match family {
        IpFamily::V4 => ("32", "-m ttl --ttl-lt 2", "-j TTL --ttl-dec 1"),
        IpFamily::V6 => ("128", "-m hl --hl-lt 2", "-j HL --hl-dec 1"),
    };
    for (vip, to) in resolved
        .iter()
        .filter(|(vip, _)| IpFamily::of(vip) == family)
    {
        let unknown = format!(
            "-A {CHAIN} -d {vip}/{host} -p tcp -m tcp ! --syn -m conntrack --ctstate NEW,INVALID \
             -m comment --comment \"connections of {vip} held by {to}\""
        );
        text.push_str(&format!("{unknown} {ttl_low} -j DROP\n"));
        text.push_str(&format!("{unknown} {ttl_dec}\n"));
        text.push_str(&format!("{unknown} -j TEE --gateway {to}\n"));
        text.push_str(&format!("{unknown} -j DROP\n"));
    }
    text.push_str("COMMIT\n");
    text
}

#[cfg(test)]
mod tests;
