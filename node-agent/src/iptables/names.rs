//! Chain names. Per-Service chains carry kube-proxy's hash so an operator who knows
//! `KUBE-SVC-<hash>` finds `PORTICO-SVC-<hash>` for the same Service port; dispatch buckets are
//! named after the packet fields they match.

use std::net::IpAddr;

use data_encoding::BASE32;
use sha2::{Digest, Sha256};

use crate::dataplane::{Endpoint, Protocol, ServicePortKey};

pub const PREFIX: &str = "PORTICO-";
/// nat and filter: the entry chain for Service destinations.
pub const SERVICES: &str = "PORTICO-SERVICES";
/// nat: node ports (entered for local destinations); filter: health check node ports.
pub const NODEPORTS: &str = "PORTICO-NODEPORTS";
/// filter: REJECT/DROP for external destinations without (local) endpoints.
pub const EXTERNAL_SERVICES: &str = "PORTICO-EXTERNAL-SERVICES";
/// filter: LB traffic that loadBalancerSourceRanges did not accept.
pub const FIREWALL: &str = "PORTICO-FIREWALL";
pub const MARK_MASQ: &str = "PORTICO-MARK-MASQ";
pub const POSTROUTING: &str = "PORTICO-POSTROUTING";
/// Marks for masquerade unless the source is a pod; only when a family has several pod CIDRs
/// (one CIDR fits a single `! -s` match).
pub const MASQ_NOT_POD: &str = "PORTICO-MASQ-NOT-POD";
/// The packet mark that asks PORTICO-POSTROUTING to masquerade (kube-proxy's bit).
pub const MASQ_MARK: &str = "0x4000";

/// `-m comment --comment <text>`, the text quoted exactly as iptables-save prints it
/// (libxtables' `xtables_save_string`: bare when it is only letters, digits, `-` and `_`, else
/// in double quotes with `"`, `\` and `'` escaped), so a rule read back from iptables-save is
/// the rule rendered. kube-proxy's comments carry the Service port name (`ns/name:port`).
pub fn comment(text: &str) -> String {
    let bare = !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if bare {
        return format!("-m comment --comment {text}");
    }
    let mut quoted = String::with_capacity(text.len() + 24);
    quoted.push_str("-m comment --comment \"");
    for character in text.chars() {
        if matches!(character, '"' | '\\' | '\'') {
            quoted.push('\\');
        }
        quoted.push(character);
    }
    quoted.push('"');
    quoted
}

/// kube-proxy's `portProtoHash`: base32(sha256("ns/name:port" + "tcp")), first 16 characters.
pub fn port_proto_hash(key: &ServicePortKey) -> String {
    hash16(&format!(
        "{}{}",
        key.service_port_name(),
        key.protocol.as_str()
    ))
}

fn hash16(input: &str) -> String {
    let digest = Sha256::digest(input.as_bytes());
    let mut encoded = BASE32.encode(&digest);
    encoded.truncate(16);
    encoded
}

/// A per-Service-port chain from its kind (`SVC`, `SVL`, `EXT`, `FW`) and `port_proto_hash`,
/// so a renderer hashes each port once.
pub fn service_chain(kind: &str, hash: &str) -> String {
    format!("PORTICO-{kind}-{hash}")
}

/// The cluster-wide policy chain: load-balances over every usable endpoint.
pub fn svc_chain(key: &ServicePortKey) -> String {
    format!("PORTICO-SVC-{}", port_proto_hash(key))
}

/// The local policy chain: load-balances over this node's endpoints.
pub fn svl_chain(key: &ServicePortKey) -> String {
    format!("PORTICO-SVL-{}", port_proto_hash(key))
}

/// External destinations (NodePort, LB IPs, external IPs) enter here.
pub fn ext_chain(key: &ServicePortKey) -> String {
    format!("PORTICO-EXT-{}", port_proto_hash(key))
}

/// loadBalancerSourceRanges for the LB IPs.
pub fn fw_chain(key: &ServicePortKey) -> String {
    format!("PORTICO-FW-{}", port_proto_hash(key))
}

/// kube-proxy's `servicePortEndpointChainName`: hash of "ns/name:port" + "tcp" + "IP:port".
/// Also names the endpoint's `-m recent` list for ClientIP affinity.
pub fn sep_chain(key: &ServicePortKey, endpoint: &Endpoint) -> String {
    let input = format!(
        "{}{}{}",
        key.service_port_name(),
        key.protocol.as_str(),
        endpoint.address()
    );
    format!("PORTICO-SEP-{}", hash16(&input))
}

/// The dispatch bucket of a Service address: its lowest byte, so Services spread evenly over at
/// most 256 buckets whatever range the addresses come from, and a change rewrites one bucket.
pub fn address_bucket(ip: &IpAddr) -> (String, String) {
    let (low_byte, pattern) = match ip {
        IpAddr::V4(v4) => {
            let low = v4.octets()[3];
            (low, format!("0.0.0.{low}/0.0.0.255"))
        }
        IpAddr::V6(v6) => {
            let low = v6.octets()[15];
            (low, format!("::{low:x}/::ff"))
        }
    };
    (
        format!("PORTICO-SVCS-{low_byte:02X}"),
        format!("-d {pattern}"),
    )
}

/// Node port buckets cover 64 consecutive ports of one protocol.
pub const NODE_PORT_BUCKET_SIZE: u16 = 64;

/// The dispatch bucket of a node port, and the match that selects it in PORTICO-NODEPORTS.
pub fn node_port_bucket(protocol: Protocol, node_port: u16) -> (String, String) {
    let first = node_port - node_port % NODE_PORT_BUCKET_SIZE;
    let last = first.saturating_add(NODE_PORT_BUCKET_SIZE - 1);
    let proto = protocol.as_str();
    (
        format!("PORTICO-NPS-{}-{first}", proto.to_uppercase()),
        format!("-p {proto} -m {proto} --dport {first}:{last}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::IpFamily;

    fn key(port_name: &str, protocol: Protocol) -> ServicePortKey {
        ServicePortKey {
            family: IpFamily::V4,
            namespace: "ns1".into(),
            name: "svc1".into(),
            port_name: port_name.into(),
            protocol,
        }
    }

    #[test]
    fn chain_hashes_match_kube_proxy() {
        // kube-proxy's proxier_test.go: "ns1/svc1:p80" + "tcp" → KUBE-SVC-XPGD46QRK7WJZT7O,
        // and its endpoint 10.180.0.1:80 → KUBE-SEP-SXIVWICOYRO3J4NJ.
        let key = key("p80", Protocol::Tcp);
        assert_eq!(svc_chain(&key), "PORTICO-SVC-XPGD46QRK7WJZT7O");
        let endpoint = Endpoint {
            ip: "10.180.0.1".parse().unwrap(),
            port: 80,
            node_name: None,
            ready: true,
            serving: true,
            terminating: false,
        };
        assert_eq!(sep_chain(&key, &endpoint), "PORTICO-SEP-SXIVWICOYRO3J4NJ");
    }

    #[test]
    fn chain_names_fit_iptables_limit() {
        for name in [
            svc_chain(&key("a-very-long-port-name", Protocol::Sctp)),
            node_port_bucket(Protocol::Sctp, 65535).0,
            address_bucket(&"::1".parse().unwrap()).0,
            EXTERNAL_SERVICES.to_string(),
        ] {
            assert!(name.len() <= 28, "{name} is longer than 28 characters");
        }
    }

    #[test]
    fn comments_are_quoted_as_iptables_save_prints_them() {
        assert_eq!(comment("plain-word_1"), "-m comment --comment plain-word_1");
        assert_eq!(
            comment("ns1/svc1:p80 cluster IP"),
            r#"-m comment --comment "ns1/svc1:p80 cluster IP""#
        );
        assert_eq!(comment("ns1/svc1"), r#"-m comment --comment "ns1/svc1""#);
        assert_eq!(
            comment(r#"say "hi" \ it's"#),
            r#"-m comment --comment "say \"hi\" \\ it\'s""#
        );
        assert_eq!(comment(""), r#"-m comment --comment """#);
    }

    #[test]
    fn buckets_follow_the_low_byte_and_port_range() {
        assert_eq!(
            address_bucket(&"10.96.3.7".parse().unwrap()),
            (
                "PORTICO-SVCS-07".to_string(),
                "-d 0.0.0.7/0.0.0.255".to_string()
            )
        );
        assert_eq!(
            address_bucket(&"fd00::1:2aff".parse().unwrap()),
            ("PORTICO-SVCS-FF".to_string(), "-d ::ff/::ff".to_string())
        );
        assert_eq!(
            node_port_bucket(Protocol::Udp, 30080),
            (
                "PORTICO-NPS-UDP-30080".to_string(),
                "-p udp -m udp --dport 30080:30143".to_string()
            )
        );
    }
}
