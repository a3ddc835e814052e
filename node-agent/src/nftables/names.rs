//! Names in Portico's nftables table. Per-Service-port chains follow kube-proxy's nftables names
//! (`service-<hash>-<ns>/<name>/<proto>/<port>`), so an operator who knows kube-proxy's table
//! finds a Service's chains here the same way.

use crate::dataplane::ServicePortKey;

/// The table, in the `ip` and `ip6` families.
pub const TABLE: &str = "portico";

pub const SERVICE_IPS: &str = "service-ips";
pub const SERVICE_NODEPORTS: &str = "service-nodeports";
/// Cluster IPs without (usable) endpoints: checked for forwarded and locally sent packets.
pub const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
/// External and LB IPs without (local) endpoints: checked for packets to and through the node.
pub const NO_ENDPOINT_EXTERNAL: &str = "no-endpoint-external";
pub const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";
/// LB IPs with loadBalancerSourceRanges: what the firewall chain did not DNAT is dropped.
pub const FIREWALL_IPS: &str = "firewall-ips";
/// Pairs `a . a` of endpoint addresses: a DNATed connection from an endpoint to itself.
pub const HAIRPIN: &str = "hairpin";
/// Endpoint choice without rules per endpoint (`service.rs`): the Service's own key (address .
/// protocol . port, or protocol . port for a node port) and a random bucket → the endpoint's
/// address . port. Cluster-wide and node-local endpoint lists apart, as one key may reach both.
pub const CLUSTER_IP_ENDPOINTS: &str = "cluster-ip-endpoints";
pub const CLUSTER_PORT_ENDPOINTS: &str = "cluster-port-endpoints";
pub const LOCAL_IP_ENDPOINTS: &str = "local-ip-endpoints";
pub const LOCAL_PORT_ENDPOINTS: &str = "local-port-endpoints";
/// Every endpoint map: data maps, whose last key field is the random bucket (a host-order integer).
pub const ENDPOINT_MAPS: [&str; 4] = [
    CLUSTER_IP_ENDPOINTS,
    CLUSTER_PORT_ENDPOINTS,
    LOCAL_IP_ENDPOINTS,
    LOCAL_PORT_ENDPOINTS,
];
/// The shared chains that DNAT through the endpoint maps.
pub const PICK_CLUSTER: &str = "pick-cluster-endpoint";
pub const PICK_LOCAL: &str = "pick-local-endpoint";
/// `--nodeport-addresses` of this family.
pub const NODEPORT_IPS: &str = "nodeport-ips";

pub const REJECT: &str = "reject-chain";
pub const MARK_MASQ: &str = "mark-for-masquerade";
pub const SERVICES: &str = "services";

/// Every map keyed by address . protocol . port, and its verdict.
pub const ADDRESS_MAPS: [&str; 4] = [
    SERVICE_IPS,
    NO_ENDPOINT_SERVICES,
    NO_ENDPOINT_EXTERNAL,
    FIREWALL_IPS,
];
/// Every map keyed by protocol . port.
pub const PORT_MAPS: [&str; 2] = [SERVICE_NODEPORTS, NO_ENDPOINT_NODEPORTS];

/// `ns/name/proto/port` (kube-proxy's `servicePortChainNameBase` tail).
pub fn port_label(key: &ServicePortKey) -> String {
    format!(
        "{}/{}/{}/{}",
        key.namespace,
        key.name,
        key.protocol.as_str(),
        key.port_name
    )
}

/// A per-Service-port chain: its kind, the first 8 characters of kube-proxy's port hash, the
/// label.
pub fn chain(kind: &str, hash: &str, label: &str) -> String {
    format!("{kind}-{}-{label}", &hash[..8.min(hash.len())])
}
