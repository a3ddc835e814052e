//! Stale UDP conntrack entries are deleted when their endpoint goes away, so a UDP client that
//! keeps sending is not stuck on a dead pod.

use k8s_openapi::api::core::v1::Service;
use portico_agent::dataplane::conntrack::{delete_stale_udp_flows, stale_udp_flows};

use crate::helper::send_udp_from;
use crate::services::{mk_service, mk_slice, node_context, state};
use crate::topology::{NODE_NAME, POD_A_IP, Topology, output_in_ns};

fn udp_service() -> Service {
    let mut service = mk_service("dns", "10.96.0.53", "ClusterIP", None);
    let port = &mut service.spec.as_mut().unwrap().ports.as_mut().unwrap()[0];
    port.protocol = Some("UDP".into());
    service
}

fn udp_slice() -> k8s_openapi::api::discovery::v1::EndpointSlice {
    let mut slice = mk_slice("dns", &[(POD_A_IP, NODE_NAME)]);
    slice.ports.as_mut().unwrap()[0].protocol = Some("UDP".into());
    slice
}

fn entries_to(node: &str, endpoint: &str) -> usize {
    let listing = output_in_ns(node, &["conntrack", "-L", "-p", "udp"]);
    listing
        .lines()
        .filter(|line| line.contains(&format!("src={endpoint} ")))
        .count()
}

crate::in_both_modes!(udp_entries_of_a_removed_endpoint_are_deleted);
async fn udp_entries_of_a_removed_endpoint_are_deleted(mode: portico_agent::args::ProxyMode) {
    let topology = Topology::new(&crate::services::tag(mode, "udp"));
    let services = [udp_service()];
    let before = state(&services, &[udp_slice()]);
    let mut syncer = crate::services::backend(mode, &topology.node);
    syncer.sync(&before, &node_context()).await.expect("sync");
    send_udp_from(&topology.pod_b, "10.96.0.53:80");
    assert_eq!(
        entries_to(&topology.node, POD_A_IP),
        1,
        "the datagram was DNATed to the endpoint"
    );

    let after = state(&services, &[]);
    syncer.sync(&after, &node_context()).await.expect("sync");
    let flows = stale_udp_flows(&before, &after, NODE_NAME);
    assert_eq!(flows.len(), 1);
    delete_stale_udp_flows(&flows, Some(&topology.node))
        .await
        .expect("conntrack -D");
    assert_eq!(
        entries_to(&topology.node, POD_A_IP),
        0,
        "the stale entry is gone"
    );
    // Deleting again finds nothing, which is not an error.
    delete_stale_udp_flows(&flows, Some(&topology.node))
        .await
        .expect("conntrack -D of nothing");
}
