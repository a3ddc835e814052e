//! What the agent reads from its own Node object: its addresses (for NodePorts and the health
//! check listeners) and whether load balancers should still send it traffic.

use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;

/// The node's InternalIP and ExternalIP addresses, InternalIP first, as kube-proxy takes them.
pub fn node_ips(node: &Node) -> Vec<IpAddr> {
    let addresses = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let of_type = |wanted: &'static str| {
        addresses
            .iter()
            .filter(move |a| a.type_ == wanted)
            .filter_map(|a| a.address.parse::<IpAddr>().ok())
    };
    let mut ips: Vec<IpAddr> = of_type("InternalIP").chain(of_type("ExternalIP")).collect();
    ips.dedup();
    ips
}

/// The node addresses `--nodeport-addresses` selects (all of them when it is empty).
pub fn nodeport_addresses(node_ips: &[IpAddr], selectors: &[IpNet]) -> Vec<IpAddr> {
    node_ips
        .iter()
        .filter(|ip| selectors.is_empty() || selectors.iter().any(|net| net.contains(*ip)))
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{NodeAddress, NodeStatus};

    use super::*;

    fn mk_node(addresses: &[(&str, &str)]) -> Node {
        Node {
            status: Some(NodeStatus {
                addresses: Some(
                    addresses
                        .iter()
                        .map(|(t, a)| NodeAddress {
                            type_: t.to_string(),
                            address: a.to_string(),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn internal_addresses_come_first_and_host_names_are_skipped() {
        let node = mk_node(&[
            ("Hostname", "node-a"),
            ("ExternalIP", "203.0.113.5"),
            ("InternalIP", "198.18.0.10"),
        ]);
        let ips: Vec<String> = node_ips(&node).iter().map(ToString::to_string).collect();
        assert_eq!(ips, ["198.18.0.10", "203.0.113.5"]);
        assert!(node_ips(&Node::default()).is_empty());
    }

    #[test]
    fn nodeport_addresses_filter_by_cidr() {
        let ips: Vec<IpAddr> = vec![
            "198.18.0.10".parse().unwrap(),
            "203.0.113.5".parse().unwrap(),
        ];
        assert_eq!(nodeport_addresses(&ips, &[]), ips);
        let only_lab = nodeport_addresses(&ips, &["198.18.0.0/24".parse().unwrap()]);
        assert_eq!(only_lab, vec![ips[0]]);
    }
}
