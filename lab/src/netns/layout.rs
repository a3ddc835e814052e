//! The pure description of a lab topology: which namespaces, addresses and routes exist, and
//! the `ip`/`sysctl` commands that build them. No I/O here; `topology` runs the commands.
//!
//! ```text
//!   host ns: ptl<pid>-<seq> 198.18.0.1/24 ──┐
//!                                          │   <prefix>br: bridge br0
//!   <prefix>client: eth0 198.18.0.2/24 ────┤
//!   <prefix>n0: eth0 198.18.0.10/24 ───────┤   ip_forward=1, cbr0 10.244.0.1/24
//!      └─ <prefix>n0p0: eth0 10.244.0.2/24, default via 10.244.0.1 (cbr0 port p0, hairpin on)
//!   <prefix>n1: eth0 198.18.0.11/24 ───────┘   10.244.0.0/24 via 198.18.0.10 (host-gw), ...
//! ```
//!
//! With `LabSpec::with_cloud()` the client moves behind a cloud namespace, as a client on the
//! internet reaches a VPC only through its load balancers (`cloud` on the lab bridge):
//!
//! ```text
//!   <prefix>client: eth0 203.0.113.2/24, default via 203.0.113.1
//!      └─ <prefix>cloud: eth1 203.0.113.1/24, eth0 198.18.0.3/24 (bridge), ip_forward=1;
//!                        load balancers take addresses from 198.51.100.0/24
//!   every node: 203.0.113.0/24 via 198.18.0.3 (replies go back through the load balancer)
//! ```

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;

use super::NetnsError;
use super::names::Prefix;

/// What to build.
#[derive(Clone, Debug)]
pub struct LabSpec {
    /// How many node namespaces (at most 200).
    pub nodes: usize,
    /// How many pod namespaces behind each node (at most 250).
    pub pods_per_node: usize,
    /// The /24 that joins host, client and nodes. Concurrent topologies on one machine need
    /// different subnets, as the host leg routes it: `198.18.0.0/24`, `198.18.1.0/24`, ...
    pub node_subnet: Ipv4Net,
    /// The `portico-lab` executable: pods run its `echo-server`, probes its `probe`.
    pub lab_binary: PathBuf,
    /// Whether a cloud namespace stands between the client and the nodes (off by default).
    pub cloud: bool,
}

impl LabSpec {
    /// `nodes` nodes with `pods_per_node` pods each on `198.18.0.0/24`.
    pub fn new(nodes: usize, pods_per_node: usize, lab_binary: impl Into<PathBuf>) -> Self {
        LabSpec {
            nodes,
            pods_per_node,
            node_subnet: "198.18.0.0/24".parse().expect("a valid /24"),
            lab_binary: lab_binary.into(),
            cloud: false,
        }
    }

    /// The same spec with a cloud namespace: the client on a subnet of its own whose only way
    /// to the nodes is through the cloud, where the lab cloud runs its load balancers.
    pub fn with_cloud(mut self) -> Self {
        self.cloud = true;
        self
    }

    /// The same spec on another /24 (for topologies that run side by side).
    pub fn with_node_subnet(mut self, node_subnet: Ipv4Net) -> Self {
        self.node_subnet = node_subnet;
        self
    }
}

/// One pod namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodLayout {
    pub ns: String,
    pub ip: Ipv4Addr,
}

/// One node namespace and the pods behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeLayout {
    /// The node's name as the lab's Node objects would carry it: `node-<index>`.
    pub name: String,
    pub ns: String,
    pub ip: Ipv4Addr,
    /// `10.244.<index>.0/24`.
    pub pod_cidr: Ipv4Net,
    /// `10.244.<index>.1`: the node's address on its pod bridge, the pods' default gateway.
    pub pod_gateway: Ipv4Addr,
    pub pods: Vec<PodLayout>,
}

/// The cloud namespace between the client subnet and the node subnet (`LabSpec::with_cloud`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudLayout {
    pub ns: String,
    /// Its address on the lab bridge: the nodes' route to the client subnet.
    pub node_side_ip: Ipv4Addr,
    /// Its address on the client subnet: the client's default gateway.
    pub client_side_ip: Ipv4Addr,
    /// The client's subnet (only the client and the cloud are on it).
    pub client_subnet: Ipv4Net,
    /// Where the lab cloud takes load-balancer addresses from (local to the cloud namespace,
    /// reached by the client through its default route).
    pub load_balancer_range: Ipv4Net,
}

/// The whole topology, addresses included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub prefix: Prefix,
    pub node_subnet: Ipv4Net,
    pub bridge_ns: String,
    pub host_link: String,
    pub host_ip: Ipv4Addr,
    pub client_ns: String,
    pub client_ip: Ipv4Addr,
    pub nodes: Vec<NodeLayout>,
    /// The cloud namespace, when the spec asks for one.
    pub cloud: Option<CloudLayout>,
}

/// Name of the bridge inside the bridge namespace, and of the pod bridge inside each node.
const LAB_BRIDGE: &str = "br0";
const POD_BRIDGE: &str = "cbr0";
const FIRST_NODE_HOST: u32 = 10;
const MAX_NODES: usize = 200;
const MAX_PODS: usize = 250;
/// The cloud's host number on the node subnet (`.1` is the host leg, `.2` the client's
/// address when there is no cloud).
const CLOUD_HOST: u32 = 3;
/// RFC 5737 TEST-NET-3 and TEST-NET-2: they exist only inside a lab's own namespaces, so
/// every lab can use the same ones.
const CLIENT_SUBNET: &str = "203.0.113.0/24";
const LOAD_BALANCER_RANGE: &str = "198.51.100.0/24";
/// The cloud's leg towards the client (its leg on the lab bridge is `eth0`).
const CLOUD_CLIENT_LINK: &str = "eth1";

fn host_in(subnet: Ipv4Net, host: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + host)
}

fn net(ip: Ipv4Addr, prefix_len: u8) -> Ipv4Net {
    Ipv4Net::new(ip, prefix_len).expect("prefix length at most 32")
}

impl Layout {
    /// Works out names and addresses; refuses specs that do not fit the address plan.
    pub fn plan(spec: &LabSpec, prefix: Prefix) -> Result<Self, NetnsError> {
        if spec.node_subnet.prefix_len() != 24 {
            return Err(NetnsError::Spec(format!(
                "node subnet {} is not a /24",
                spec.node_subnet
            )));
        }
        if spec.nodes == 0 || spec.nodes > MAX_NODES {
            return Err(NetnsError::Spec(format!(
                "{} nodes: between 1 and {MAX_NODES} fit the address plan",
                spec.nodes
            )));
        }
        if spec.pods_per_node > MAX_PODS {
            return Err(NetnsError::Spec(format!(
                "{} pods per node: at most {MAX_PODS} fit a /24",
                spec.pods_per_node
            )));
        }
        let subnet = spec.node_subnet.trunc();
        let nodes = (0..spec.nodes)
            .map(|index| {
                let pod_cidr = net(Ipv4Addr::new(10, 244, index as u8, 0), 24);
                let pods = (0..spec.pods_per_node)
                    .map(|pod| PodLayout {
                        ns: prefix.namespace(&format!("n{index}p{pod}")),
                        ip: host_in(pod_cidr, pod as u32 + 2),
                    })
                    .collect();
                NodeLayout {
                    name: format!("node-{index}"),
                    ns: prefix.namespace(&format!("n{index}")),
                    ip: host_in(subnet, FIRST_NODE_HOST + index as u32),
                    pod_cidr,
                    pod_gateway: host_in(pod_cidr, 1),
                    pods,
                }
            })
            .collect();
        let cloud = spec.cloud.then(|| {
            let client_subnet: Ipv4Net = CLIENT_SUBNET.parse().expect("a valid /24");
            CloudLayout {
                ns: prefix.namespace("cloud"),
                node_side_ip: host_in(subnet, CLOUD_HOST),
                client_side_ip: host_in(client_subnet, 1),
                client_subnet,
                load_balancer_range: LOAD_BALANCER_RANGE.parse().expect("a valid /24"),
            }
        });
        let client_ip = match &cloud {
            Some(cloud) => host_in(cloud.client_subnet, 2),
            None => host_in(subnet, 2),
        };
        Ok(Layout {
            prefix,
            node_subnet: subnet,
            bridge_ns: prefix.namespace("br"),
            host_link: prefix.host_link(),
            host_ip: host_in(subnet, 1),
            client_ns: prefix.namespace("client"),
            client_ip,
            nodes,
            cloud,
        })
    }

    /// Every namespace, the bridge's first; the order `create` adds them in.
    pub fn namespaces(&self) -> Vec<String> {
        let mut all = vec![self.bridge_ns.clone()];
        all.extend(self.cloud.iter().map(|cloud| cloud.ns.clone()));
        all.push(self.client_ns.clone());
        for node in &self.nodes {
            all.push(node.ns.clone());
            all.extend(node.pods.iter().map(|pod| pod.ns.clone()));
        }
        all
    }

    /// A node by its name (`node-1`).
    pub fn node(&self, name: &str) -> Option<&NodeLayout> {
        self.nodes.iter().find(|node| node.name == name)
    }

    /// The commands that build the topology once its namespaces exist, in order.
    pub fn build_commands(&self) -> Vec<Vec<String>> {
        let mut cmds = Vec::new();
        for ns in self.namespaces() {
            cmds.push(ip(Some(&ns), "link set lo up"));
        }
        let br = &self.bridge_ns;
        cmds.push(ip(Some(br), &format!("link add {LAB_BRIDGE} type bridge")));
        cmds.push(ip(Some(br), &format!("link set {LAB_BRIDGE} up")));

        // The host leg: the only thing in the host namespace.
        cmds.push(ip(
            None,
            &format!(
                "link add {} type veth peer name host netns {br}",
                self.host_link
            ),
        ));
        cmds.extend(bridge_port(br, "host"));
        cmds.push(ip(
            None,
            &format!(
                "addr add {} dev {}",
                self.subnet_addr(self.host_ip),
                self.host_link
            ),
        ));
        cmds.push(ip(None, &format!("link set {} up", self.host_link)));

        match &self.cloud {
            Some(cloud) => cmds.extend(self.cloud_commands(cloud)),
            None => cmds.extend(self.leg(&self.client_ns, "client", self.client_ip)),
        }
        for (index, node) in self.nodes.iter().enumerate() {
            cmds.extend(self.leg(&node.ns, &format!("n{index}"), node.ip));
            cmds.push(sysctl(&node.ns, "net.ipv4.ip_forward=1"));
            if let Some(cloud) = &self.cloud {
                // As a VPC's route table: the internet's answers leave through the load
                // balancer, which keeps the client's address on the way in.
                cmds.push(ip(
                    Some(&node.ns),
                    &format!(
                        "route replace {} via {}",
                        cloud.client_subnet, cloud.node_side_ip
                    ),
                ));
            }
            cmds.push(ip(
                Some(&node.ns),
                &format!("link add {POD_BRIDGE} type bridge"),
            ));
            cmds.push(ip(
                Some(&node.ns),
                &format!("addr add {}/24 dev {POD_BRIDGE}", node.pod_gateway),
            ));
            cmds.push(ip(Some(&node.ns), &format!("link set {POD_BRIDGE} up")));
            for (pod_index, pod) in node.pods.iter().enumerate() {
                let port = format!("p{pod_index}");
                cmds.push(ip(
                    Some(&node.ns),
                    &format!("link add {port} type veth peer name eth0 netns {}", pod.ns),
                ));
                cmds.push(ip(
                    Some(&node.ns),
                    &format!("link set {port} master {POD_BRIDGE}"),
                ));
                // As kubelet and the CNI bridge plugin (`hairpinMode`) set it: with
                // bridge-nf-call-iptables on, a pod's packet DNATed back to the pod itself is
                // bridged out of the port it came in on, which the bridge refuses otherwise.
                cmds.push(ip(
                    Some(&node.ns),
                    &format!("link set {port} type bridge_slave hairpin on"),
                ));
                cmds.push(ip(Some(&node.ns), &format!("link set {port} up")));
                cmds.push(ip(
                    Some(&pod.ns),
                    &format!("addr add {}/24 dev eth0", pod.ip),
                ));
                cmds.push(ip(Some(&pod.ns), "link set eth0 up"));
                cmds.push(ip(
                    Some(&pod.ns),
                    &format!("route replace default via {}", node.pod_gateway),
                ));
            }
            // flannel host-gw: every other node's pods through that node.
            for other in self.nodes.iter().filter(|other| other.ns != node.ns) {
                cmds.push(ip(
                    Some(&node.ns),
                    &format!("route replace {} via {}", other.pod_cidr, other.ip),
                ));
            }
        }
        cmds
    }

    /// The cloud on the lab bridge, the client behind it on the client subnet.
    fn cloud_commands(&self, cloud: &CloudLayout) -> Vec<Vec<String>> {
        let mut cmds = self.leg(&cloud.ns, "cloud", cloud.node_side_ip);
        cmds.push(sysctl(&cloud.ns, "net.ipv4.ip_forward=1"));
        let client_len = cloud.client_subnet.prefix_len();
        cmds.push(ip(
            Some(&cloud.ns),
            &format!(
                "link add {CLOUD_CLIENT_LINK} type veth peer name eth0 netns {}",
                self.client_ns
            ),
        ));
        cmds.push(ip(
            Some(&cloud.ns),
            &format!(
                "addr add {} dev {CLOUD_CLIENT_LINK}",
                net(cloud.client_side_ip, client_len)
            ),
        ));
        cmds.push(ip(
            Some(&cloud.ns),
            &format!("link set {CLOUD_CLIENT_LINK} up"),
        ));
        cmds.push(ip(
            Some(&self.client_ns),
            &format!("addr add {} dev eth0", net(self.client_ip, client_len)),
        ));
        cmds.push(ip(Some(&self.client_ns), "link set eth0 up"));
        cmds.push(ip(
            Some(&self.client_ns),
            &format!("route replace default via {}", cloud.client_side_ip),
        ));
        cmds
    }

    /// A veth from the lab bridge (port `port`) to `eth0` in `ns`, addressed and up.
    fn leg(&self, ns: &str, port: &str, address: Ipv4Addr) -> Vec<Vec<String>> {
        let br = &self.bridge_ns;
        let mut cmds = vec![ip(
            Some(br),
            &format!("link add {port} type veth peer name eth0 netns {ns}"),
        )];
        cmds.extend(bridge_port(br, port));
        cmds.push(ip(
            Some(ns),
            &format!("addr add {} dev eth0", self.subnet_addr(address)),
        ));
        cmds.push(ip(Some(ns), "link set eth0 up"));
        cmds
    }

    fn subnet_addr(&self, address: Ipv4Addr) -> Ipv4Net {
        net(address, self.node_subnet.prefix_len())
    }
}

/// `ip [-n NS] <args>` as an argv.
pub fn ip(ns: Option<&str>, args: &str) -> Vec<String> {
    let mut argv = vec!["ip".to_owned()];
    if let Some(ns) = ns {
        argv.extend(["-n".to_owned(), ns.to_owned()]);
    }
    argv.extend(args.split_whitespace().map(str::to_owned));
    argv
}

fn sysctl(ns: &str, setting: &str) -> Vec<String> {
    ["ip", "netns", "exec", ns, "sysctl", "-qw", setting]
        .map(str::to_owned)
        .to_vec()
}

fn bridge_port(br: &str, port: &str) -> Vec<Vec<String>> {
    vec![
        ip(Some(br), &format!("link set {port} master {LAB_BRIDGE}")),
        ip(Some(br), &format!("link set {port} up")),
    ]
}

#[cfg(test)]
mod tests;
