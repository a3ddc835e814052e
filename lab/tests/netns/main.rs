//! The lab's network-namespace cluster on the real kernel: it comes up, routes like the design
//! says (client → nodes, client → pods via a node, pod → pod across nodes with host-gw routes,
//! nodes → a server in the host namespace) and goes away leaving nothing, also after a killed
//! run. Needs root: skipped with a message without it, failed when `CI` is set.
//!
//! Tests run in parallel, each on its own /24 (`198.18.<n>.0/24`), since the host leg routes
//! the subnet in the host namespace.

mod leftovers;
mod routing;

use portico_lab::netns::{LabSpec, LabTopology, cmd};

const LAB_BINARY: &str = env!("CARGO_BIN_EXE_portico-lab");

/// Whether the tests can run; without root they skip, or fail on CI.
fn have_root(test: &str) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("");
    if euid == "0" {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: the netns tests need root, and CI is set: run them as root");
    }
    eprintln!("skipping {test}: the netns tests need root (network namespaces)");
    false
}

/// Every `LabTopology::create` first sweeps the leftovers of dead runs; the leftovers test holds
/// this while it looks at a run it killed on purpose, so a lab created by a test running in
/// parallel does not sweep it away in the middle.
static SWEEPS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn sweep_guard() -> std::sync::MutexGuard<'static, ()> {
    SWEEPS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A lab of `nodes` nodes and `pods_per_node` pods on `198.18.<subnet>.0/24`.
fn mk_lab(nodes: usize, pods_per_node: usize, subnet: u8) -> LabTopology {
    let spec = LabSpec::new(nodes, pods_per_node, LAB_BINARY)
        .with_node_subnet(format!("198.18.{subnet}.0/24").parse().unwrap());
    let _guard = sweep_guard();
    LabTopology::create(spec).expect("the lab topology comes up")
}

fn namespaces_starting_with(start: &str) -> Vec<String> {
    cmd::list_namespaces()
        .unwrap()
        .into_iter()
        .filter(|ns| ns.starts_with(start))
        .collect()
}

fn host_link_exists(name: &str) -> bool {
    cmd::list_host_links()
        .unwrap()
        .iter()
        .any(|link| link == name)
}

#[test]
fn topology_comes_up_and_goes_away_leaving_nothing() {
    if !have_root("topology_comes_up_and_goes_away_leaving_nothing") {
        return;
    }
    let lab = mk_lab(3, 2, 10);
    let layout = lab.layout().clone();
    let start = layout.prefix.namespace_start();
    let mut expected = layout.namespaces();
    expected.sort();
    let mut present = namespaces_starting_with(&start);
    present.sort();
    assert_eq!(present, expected, "bridge, client, 3 nodes and 6 pods");
    assert!(host_link_exists(&layout.host_link));
    let host_addrs =
        cmd::run_args(&["ip", "-o", "-4", "addr", "show", "dev", &layout.host_link]).unwrap();
    assert!(host_addrs.contains("198.18.10.1/24"), "{host_addrs}");
    let forwarding = lab
        .run_in(
            &layout.nodes[2].ns,
            "sysctl",
            &["-n", "net.ipv4.ip_forward"],
        )
        .unwrap();
    assert_eq!(forwarding.trim(), "1");
    // The client routes only its subnet until a test adds a VIP route.
    let client_routes = lab.run_in(lab.client_ns(), "ip", &["-4", "route"]).unwrap();
    assert_eq!(client_routes.lines().count(), 1, "{client_routes}");

    let _server = lab
        .spawn_echo_server(&layout.nodes[0].pods[0].ns, "0.0.0.0:8080".parse().unwrap())
        .unwrap();
    lab.teardown();
    assert_eq!(namespaces_starting_with(&start), Vec::<String>::new());
    assert!(
        !host_link_exists(&layout.host_link),
        "host leg {} left behind",
        layout.host_link
    );
}
