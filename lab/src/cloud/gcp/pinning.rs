//! Keeps every connection on the node it started on while the ECMP route changes. Replacing
//! the route re-hashes every flow over the new nexthop set, so a connection in flight when a
//! node joins (or leaves) the healthy set would continue on another node, which resets it: one
//! lost request in a few rolling updates, measured. GCP keeps established connections where
//! they are (connection tracking; they persist on an unhealthy backend), and so does this:
//!
//! ```text
//!   first packet:  no ct mark → main table: ECMP route → postrouting: ct mark = mark(nexthop)
//!   later packets: prerouting (original direction): meta mark = ct mark
//!                  → ip rule fwmark M → table M: default via that node
//! ```
//!
//! Marks and tables are per node and fixed for the process's lifetime (the nodes come from the
//! flags), so only the ECMP route ever changes. Replies (the reply direction) are never marked.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The nftables table the lab cloud owns in the cloud namespace.
pub const TABLE: &str = "portico_lab_gcp";

/// A node's fwmark and routing table: the low 16 bits of its address over 0x10000, so marks
/// are unique within the node /24 and stable whatever the healthy set.
pub fn mark(node: Ipv4Addr) -> u32 {
    0x1_0000 | (u32::from(node) & 0xffff)
}

/// The `ip rule` and `ip route` commands: one table per node, routing everything to it.
pub fn route_commands(nodes: &BTreeMap<String, Ipv4Addr>) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    for ip in nodes.values() {
        let mark = mark(*ip).to_string();
        commands.push(
            [
                "ip", "rule", "add", "fwmark", &mark, "lookup", &mark, "priority", "100",
            ]
            .map(String::from)
            .to_vec(),
        );
        commands.push(
            [
                "ip",
                "route",
                "replace",
                "default",
                "via",
                &ip.to_string(),
                "table",
                &mark,
            ]
            .map(String::from)
            .to_vec(),
        );
    }
    commands
}

/// The nftables script (for `nft -f`): remember the nexthop a connection's first packet took,
/// route its later packets by it.
pub fn nft_script(nodes: &BTreeMap<String, Ipv4Addr>) -> String {
    let elements: Vec<String> = nodes
        .values()
        .map(|ip| format!("{ip} : {:#x}", mark(*ip)))
        .collect();
    format!(
        "table ip {TABLE}\ndelete table ip {TABLE}\n\
         table ip {TABLE} {{\n\
         \tmap nexthop_mark {{\n\t\ttype ipv4_addr : mark\n\t\telements = {{ {} }}\n\t}}\n\
         \tchain prerouting {{\n\t\ttype filter hook prerouting priority mangle; policy accept;\n\
         \t\tct direction original ct mark != 0 meta mark set ct mark\n\t}}\n\
         \tchain postrouting {{\n\t\ttype filter hook postrouting priority mangle; policy accept;\n\
         \t\tct state new ct direction original ct mark set rt ip nexthop map @nexthop_mark\n\t}}\n\
         }}\n",
        elements.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> BTreeMap<String, Ipv4Addr> {
        [
            ("node-0".to_owned(), Ipv4Addr::new(198, 18, 0, 10)),
            ("node-1".to_owned(), Ipv4Addr::new(198, 18, 0, 11)),
        ]
        .into()
    }

    #[test]
    fn every_node_has_its_own_mark_and_table() {
        assert_eq!(mark(Ipv4Addr::new(198, 18, 0, 10)), 0x1_000a);
        assert_ne!(
            mark(Ipv4Addr::new(198, 18, 0, 10)),
            mark(Ipv4Addr::new(198, 18, 0, 11))
        );
        let commands: Vec<String> = route_commands(&nodes())
            .into_iter()
            .map(|c| c.join(" "))
            .collect();
        assert_eq!(
            commands,
            [
                "ip rule add fwmark 65546 lookup 65546 priority 100",
                "ip route replace default via 198.18.0.10 table 65546",
                "ip rule add fwmark 65547 lookup 65547 priority 100",
                "ip route replace default via 198.18.0.11 table 65547",
            ]
        );
    }

    #[test]
    fn the_script_maps_each_nexthop_to_its_mark_and_replaces_an_earlier_table() {
        let script = nft_script(&nodes());
        assert!(script.contains("elements = { 198.18.0.10 : 0x1000a, 198.18.0.11 : 0x1000b }"));
        assert!(script.starts_with(&format!("table ip {TABLE}\ndelete table ip {TABLE}\n")));
        assert!(script.contains("ct direction original ct mark != 0 meta mark set ct mark"));
    }
}
