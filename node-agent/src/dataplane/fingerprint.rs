//! Whether a Service port changed since the last render, without keeping a copy of it: the
//! renderers' caches (iptables, nftables) hold a fingerprint per port instead of the port with
//! its endpoints and their node names, which at 10,000 Services was the largest part of them.

use std::hash::{BuildHasher, RandomState};

use super::ServicePort;

/// 128 bits from two SipHashes under random keys of this process: two different ports agree on
/// all of them with a chance of 2^-128, and nobody outside the process knows the keys to make
/// them agree on purpose.
#[derive(Debug, Default)]
pub struct Fingerprints([RandomState; 2]);

impl Fingerprints {
    pub fn of(&self, port: &ServicePort) -> u128 {
        let [a, b] = &self.0;
        (u128::from(a.hash_one(port)) << 64) | u128::from(b.hash_one(port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::{Endpoint, Protocol, ServicePortKey, TrafficPolicy};

    fn port() -> ServicePort {
        ServicePort {
            key: ServicePortKey {
                family: crate::dataplane::IpFamily::V4,
                namespace: "ns".into(),
                name: "web".into(),
                port_name: "http".into(),
                protocol: Protocol::Tcp,
            },
            cluster_ip: "10.96.0.10".parse().unwrap(),
            port: 80,
            node_port: None,
            external_ips: vec![],
            load_balancer_ips: vec![],
            load_balancer_source_ranges: vec![],
            external_policy: TrafficPolicy::Cluster,
            internal_policy: TrafficPolicy::Cluster,
            affinity_timeout_seconds: None,
            health_check_node_port: None,
            endpoints: vec![Endpoint {
                ip: "10.244.1.5".parse().unwrap(),
                port: 8080,
                node_name: Some("node-a".into()),
                ready: true,
                serving: true,
                terminating: false,
            }],
        }
    }

    #[test]
    fn equal_ports_agree_and_any_change_shows() {
        let fingerprints = Fingerprints::default();
        assert_eq!(fingerprints.of(&port()), fingerprints.of(&port()));
        let mut moved = port();
        moved.endpoints[0].node_name = Some("node-b".into());
        let mut draining = port();
        draining.endpoints[0].ready = false;
        let mut local = port();
        local.external_policy = TrafficPolicy::Local;
        for changed in [moved, draining, local] {
            assert_ne!(fingerprints.of(&changed), fingerprints.of(&port()));
        }
    }
}
