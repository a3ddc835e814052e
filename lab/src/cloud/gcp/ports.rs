//! A forwarding rule takes only its protocol and port range: GCP delivers nothing else sent to
//! its IP. In the cloud namespace that is one nftables table, rewritten whole (one `nft -f`
//! transaction) when the rules change: accept each rule's protocol and ports to its IP, drop
//! (and count) the rest of what is sent to any rule IP.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::model::ForwardingRule;

pub const TABLE: &str = "portico_lab_gcp_rules";

/// One rule's match: `meta l4proto tcp th dport 80-90`, or the protocol alone when the rule has
/// no port range (`L3_DEFAULT`: everything).
fn accept_match(rule: &ForwardingRule) -> String {
    let protocol = rule.protocol.to_ascii_lowercase();
    let ports = match rule.port_range.split_once('-') {
        Some((low, high)) if low == high => low.to_owned(),
        Some(_) => rule.port_range.clone(),
        None => rule.port_range.clone(),
    };
    match protocol.as_str() {
        "l3_default" => String::new(),
        "tcp" | "udp" | "sctp" if !ports.is_empty() => {
            format!(" meta l4proto {protocol} th dport {ports}")
        }
        other => format!(" meta l4proto {other}"),
    }
}

/// The whole table for `rules`.
pub fn script(rules: &[ForwardingRule]) -> String {
    let ips: BTreeSet<Ipv4Addr> = rules.iter().map(|r| r.ip).collect();
    let elements = if ips.is_empty() {
        String::new()
    } else {
        let ips: Vec<String> = ips.iter().map(Ipv4Addr::to_string).collect();
        format!(" elements = {{ {} }};", ips.join(", "))
    };
    let mut accepts: Vec<String> = rules
        .iter()
        .map(|rule| format!("\t\tip daddr {}{} accept\n", rule.ip, accept_match(rule)))
        .collect();
    accepts.sort();
    accepts.dedup();
    format!(
        "table ip {TABLE}\ndelete table ip {TABLE}\n\
         table ip {TABLE} {{\n\
         \tset rule_ips {{ type ipv4_addr;{elements} }}\n\
         \tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n\
         {}\t\tip daddr @rule_ips counter drop\n\t}}\n\
         }}\n",
        accepts.concat()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(ip: u8, protocol: &str, ports: &str) -> ForwardingRule {
        ForwardingRule {
            name: format!("r{ip}"),
            ip: Ipv4Addr::new(198, 51, 100, ip),
            protocol: protocol.into(),
            port_range: ports.into(),
            pool: "p".into(),
        }
    }

    #[test]
    fn each_rule_accepts_its_protocol_and_ports_and_the_rest_to_rule_ips_is_dropped() {
        let script = script(&[
            rule(1, "TCP", "80-80"),
            rule(2, "UDP", "53-54"),
            rule(2, "TCP", "443-443"),
        ]);
        assert!(script.contains("ip daddr 198.51.100.1 meta l4proto tcp th dport 80 accept"));
        assert!(script.contains("ip daddr 198.51.100.2 meta l4proto udp th dport 53-54 accept"));
        assert!(script.contains("ip daddr 198.51.100.2 meta l4proto tcp th dport 443 accept"));
        assert!(script.contains("elements = { 198.51.100.1, 198.51.100.2 };"));
        assert!(script.contains("ip daddr @rule_ips counter drop"));
        assert!(script.starts_with(&format!("table ip {TABLE}\ndelete table ip {TABLE}\n")));
    }

    #[test]
    fn other_protocols_match_without_ports_and_no_rules_leave_an_empty_set() {
        assert_eq!(accept_match(&rule(1, "ESP", "")), " meta l4proto esp");
        assert_eq!(accept_match(&rule(1, "L3_DEFAULT", "")), "");
        assert!(script(&[]).contains("set rule_ips { type ipv4_addr; }"));
    }
}
