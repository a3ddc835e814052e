//! Stale UDP conntrack entries. UDP has no connection to close, so a client that keeps sending
//! to a Service keeps hitting the conntrack entry that DNATs it to an endpoint that is gone.
//! When an endpoint leaves a UDP Service port, the entries that point at it are deleted
//! (kube-proxy's `deleteStaleServiceConntrackEntries`).

use std::collections::BTreeSet;
use std::net::IpAddr;

use tokio::process::Command;

use super::endpoints::categorize;
use super::model::{DesiredState, Protocol, ServicePort};

/// Where the stale flows were addressed before DNAT.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FlowDestination {
    /// A ClusterIP, external IP or LB IP with the Service port.
    ServiceIp { ip: IpAddr, port: u16 },
    /// Any local address on the node port.
    NodePort { port: u16 },
}

/// The conntrack entries (UDP, this destination, DNATed to this endpoint IP) to delete.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StaleUdpFlow {
    pub destination: FlowDestination,
    pub endpoint_ip: IpAddr,
}

impl StaleUdpFlow {
    /// The `conntrack` arguments that delete exactly these entries.
    pub fn conntrack_args(&self) -> Vec<String> {
        let family = match self.endpoint_ip {
            IpAddr::V4(_) => "ipv4",
            IpAddr::V6(_) => "ipv6",
        };
        let mut args: Vec<String> = ["-D", "-f", family, "-p", "udp"].map(String::from).to_vec();
        match &self.destination {
            FlowDestination::ServiceIp { ip, port } => {
                args.extend(["--orig-dst".into(), ip.to_string()]);
                args.extend(["--orig-port-dst".into(), port.to_string()]);
            }
            FlowDestination::NodePort { port } => {
                args.extend(["--orig-port-dst".into(), port.to_string()]);
            }
        }
        args.extend(["--dst-nat".into(), self.endpoint_ip.to_string()]);
        args
    }
}

/// Lists the UDP flows whose endpoint the node used in `old` and no longer uses in `new`, for
/// every destination the Service port had in `old`.
pub fn stale_udp_flows(
    old: &DesiredState,
    new: &DesiredState,
    node_name: &str,
) -> Vec<StaleUdpFlow> {
    let mut flows = BTreeSet::new();
    for (key, old_port) in &old.ports {
        if key.protocol != Protocol::Udp {
            continue;
        }
        let old_ips = used_endpoint_ips(old_port, node_name);
        let new_ips = new
            .ports
            .get(key)
            .map(|port| used_endpoint_ips(port, node_name))
            .unwrap_or_default();
        for endpoint_ip in old_ips.difference(&new_ips) {
            for destination in destinations(old_port) {
                flows.insert(StaleUdpFlow {
                    destination,
                    endpoint_ip: *endpoint_ip,
                });
            }
        }
    }
    flows.into_iter().collect()
}

fn used_endpoint_ips(port: &ServicePort, node_name: &str) -> BTreeSet<IpAddr> {
    let sets = categorize(port, node_name);
    sets.cluster
        .iter()
        .chain(&sets.local)
        .map(|ep| ep.ip)
        .collect()
}

fn destinations(port: &ServicePort) -> Vec<FlowDestination> {
    let service_ips = std::iter::once(&port.cluster_ip)
        .chain(&port.external_ips)
        .chain(&port.load_balancer_ips);
    let mut destinations: Vec<FlowDestination> = service_ips
        .map(|ip| FlowDestination::ServiceIp {
            ip: *ip,
            port: port.port,
        })
        .collect();
    destinations.extend(
        port.node_port
            .map(|port| FlowDestination::NodePort { port }),
    );
    destinations
}

/// Why deleting conntrack entries failed.
#[derive(Debug, thiserror::Error)]
pub enum ConntrackError {
    #[error("conntrack_spawn: could not run conntrack: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("conntrack_failed: conntrack {args} failed: {stderr}")]
    Failed { args: String, stderr: String },
}

/// Runs `conntrack -D` for each flow, optionally inside a network namespace (tests). A filter
/// that matched nothing is not an error: the entries may have expired already.
pub async fn delete_stale_udp_flows(
    flows: &[StaleUdpFlow],
    netns: Option<&str>,
) -> Result<(), ConntrackError> {
    for flow in flows {
        let args = flow.conntrack_args();
        let mut command = match netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns, "conntrack"]);
                command
            }
            None => Command::new("conntrack"),
        };
        let output = command
            .args(&args)
            .output()
            .await
            .map_err(ConntrackError::Spawn)?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        // conntrack exits 1 with "0 flow entries have been deleted" when nothing matched.
        if !output.status.success() && !stderr.contains("0 flow entries") {
            return Err(ConntrackError::Failed {
                args: args.join(" "),
                stderr: stderr.trim().to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::{Endpoint, IpFamily, ServicePortKey, TrafficPolicy};

    fn mk_udp_port(endpoints: &[&str]) -> ServicePort {
        ServicePort {
            key: ServicePortKey {
                family: IpFamily::V4,
                namespace: "ns1".into(),
                name: "dns".into(),
                port_name: "dns".into(),
                protocol: Protocol::Udp,
            },
            cluster_ip: "10.96.0.10".parse().unwrap(),
            port: 53,
            node_port: Some(30053),
            external_ips: vec![],
            load_balancer_ips: vec!["198.18.0.200".parse().unwrap()],
            load_balancer_source_ranges: vec![],
            external_policy: TrafficPolicy::Cluster,
            internal_policy: TrafficPolicy::Cluster,
            affinity_timeout_seconds: None,
            health_check_node_port: None,
            endpoints: endpoints
                .iter()
                .map(|ip| Endpoint {
                    ip: ip.parse().unwrap(),
                    port: 5353,
                    node_name: Some("node-b".into()),
                    ready: true,
                    serving: true,
                    terminating: false,
                })
                .collect(),
        }
    }

    fn state(ports: Vec<ServicePort>) -> DesiredState {
        let mut state = DesiredState::default();
        for port in ports {
            state.insert(port);
        }
        state
    }

    #[test]
    fn a_removed_udp_endpoint_is_flushed_for_every_destination_of_the_port() {
        let old = state(vec![mk_udp_port(&["10.244.1.1", "10.244.1.2"])]);
        let new = state(vec![mk_udp_port(&["10.244.1.2"])]);
        let removed: IpAddr = "10.244.1.1".parse().unwrap();
        assert_eq!(
            stale_udp_flows(&old, &new, "node-a"),
            vec![
                StaleUdpFlow {
                    destination: FlowDestination::ServiceIp {
                        ip: "10.96.0.10".parse().unwrap(),
                        port: 53
                    },
                    endpoint_ip: removed,
                },
                StaleUdpFlow {
                    destination: FlowDestination::ServiceIp {
                        ip: "198.18.0.200".parse().unwrap(),
                        port: 53
                    },
                    endpoint_ip: removed,
                },
                StaleUdpFlow {
                    destination: FlowDestination::NodePort { port: 30053 },
                    endpoint_ip: removed
                },
            ]
        );
    }

    #[test]
    fn a_deleted_service_flushes_all_its_endpoints_and_tcp_is_left_alone() {
        let old = state(vec![mk_udp_port(&["10.244.1.1", "10.244.1.2"])]);
        assert_eq!(
            stale_udp_flows(&old, &DesiredState::default(), "node-a").len(),
            6
        );
        let mut tcp = mk_udp_port(&["10.244.1.1"]);
        tcp.key.protocol = Protocol::Tcp;
        assert!(stale_udp_flows(&state(vec![tcp]), &DesiredState::default(), "node-a").is_empty());
    }

    #[test]
    fn an_endpoint_that_stops_being_ready_is_flushed_once_another_is_ready() {
        let old = state(vec![mk_udp_port(&["10.244.1.1", "10.244.1.2"])]);
        let mut new_port = mk_udp_port(&["10.244.1.1", "10.244.1.2"]);
        new_port.endpoints[0].ready = false;
        let flows = stale_udp_flows(&old, &state(vec![new_port]), "node-a");
        assert!(
            flows
                .iter()
                .all(|flow| flow.endpoint_ip == "10.244.1.1".parse::<IpAddr>().unwrap())
        );
        assert_eq!(flows.len(), 3);
    }

    #[test]
    fn conntrack_arguments_select_the_flow_exactly() {
        let flow = StaleUdpFlow {
            destination: FlowDestination::ServiceIp {
                ip: "10.96.0.10".parse().unwrap(),
                port: 53,
            },
            endpoint_ip: "10.244.1.1".parse().unwrap(),
        };
        assert_eq!(
            flow.conntrack_args().join(" "),
            "-D -f ipv4 -p udp --orig-dst 10.96.0.10 --orig-port-dst 53 --dst-nat 10.244.1.1"
        );
        let node_port = StaleUdpFlow {
            destination: FlowDestination::NodePort { port: 30053 },
            endpoint_ip: "fd00::1".parse().unwrap(),
        };
        assert_eq!(
            node_port.conntrack_args().join(" "),
            "-D -f ipv6 -p udp --orig-port-dst 30053 --dst-nat fd00::1"
        );
    }
}
