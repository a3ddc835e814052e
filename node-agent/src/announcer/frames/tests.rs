use pnet_packet::icmpv6::ndp::{MutableNeighborSolicitPacket, NeighborAdvertPacket};

use super::*;

const OWN: MacAddr = MacAddr(0x02, 0, 0, 0, 0, 0x0a);
const CLIENT: MacAddr = MacAddr(0x02, 0, 0, 0, 0, 0xc1);

fn owned(ips: &[&str]) -> BTreeSet<IpAddr> {
    ips.iter().map(|ip| ip.parse().unwrap()).collect()
}

fn arp_request(target: &str) -> Vec<u8> {
    arp_frame(
        CLIENT,
        MacAddr::broadcast(),
        ArpOperations::Request,
        "198.18.0.100".parse().unwrap(),
        MacAddr::zero(),
        target.parse().unwrap(),
    )
}

fn neighbor_solicitation(source: Ipv6Addr, target: Ipv6Addr, hop_limit: u8) -> Vec<u8> {
    let mut frame = vec![0u8; ETHERNET_HEADER + IPV6_HEADER + 24];
    let mut ethernet = MutableEthernetPacket::new(&mut frame).unwrap();
    ethernet.set_destination(solicited_node_mac(target));
    ethernet.set_source(CLIENT);
    ethernet.set_ethertype(EtherTypes::Ipv6);
    let mut ipv6 = MutableIpv6Packet::new(ethernet.payload_mut()).unwrap();
    ipv6.set_version(6);
    ipv6.set_payload_length(24);
    ipv6.set_next_header(IpNextHeaderProtocols::Icmpv6);
    ipv6.set_hop_limit(hop_limit);
    ipv6.set_source(source);
    let o = target.octets();
    ipv6.set_destination(Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    ));
    let mut solicit = MutableNeighborSolicitPacket::new(ipv6.payload_mut()).unwrap();
    solicit.set_icmpv6_type(Icmpv6Types::NeighborSolicit);
    solicit.set_target_addr(target);
    frame
}

#[test]
fn an_arp_request_for_an_owned_vip_gets_our_mac() {
    let reply = answer(&arp_request("198.18.0.200"), OWN, &owned(&["198.18.0.200"])).unwrap();
    let ethernet = EthernetPacket::new(&reply).unwrap();
    assert_eq!(ethernet.get_destination(), CLIENT);
    assert_eq!(ethernet.get_source(), OWN);
    let arp = ArpPacket::new(ethernet.payload()).unwrap();
    assert_eq!(arp.get_operation(), ArpOperations::Reply);
    assert_eq!(arp.get_sender_hw_addr(), OWN);
    assert_eq!(arp.get_sender_proto_addr().to_string(), "198.18.0.200");
    assert_eq!(arp.get_target_hw_addr(), CLIENT);
    assert_eq!(arp.get_target_proto_addr().to_string(), "198.18.0.100");
}

#[test]
fn nothing_is_answered_unless_owned_and_asked() {
    let vips = owned(&["198.18.0.200", "fd00::200"]);
    assert_eq!(answer(&arp_request("198.18.0.201"), OWN, &vips), None);
    assert_eq!(
        answer(&arp_request("198.18.0.200"), OWN, &BTreeSet::new()),
        None,
        "a node that owns nothing is silent"
    );
    // Replies (ours or another node's) are never answered.
    let mut reply = arp_request("198.18.0.200");
    MutableArpPacket::new(&mut reply[ETHERNET_HEADER..])
        .unwrap()
        .set_operation(ArpOperations::Reply);
    assert_eq!(answer(&reply, OWN, &vips), None);
    // Our own request, seen again as an outgoing frame.
    let mut own = arp_request("198.18.0.200");
    MutableEthernetPacket::new(&mut own)
        .unwrap()
        .set_source(OWN);
    assert_eq!(answer(&own, OWN, &vips), None);
    // Truncated frames and other protocols.
    assert_eq!(answer(&arp_request("198.18.0.200")[..20], OWN, &vips), None);
    assert_eq!(answer(&[0u8; 3], OWN, &vips), None);
    let forged = neighbor_solicitation(
        "fd00::100".parse().unwrap(),
        "fd00::200".parse().unwrap(),
        64,
    );
    assert_eq!(answer(&forged, OWN, &vips), None, "hop limit must be 255");
}

#[test]
fn a_neighbor_solicitation_for_an_owned_vip_gets_a_valid_advertisement() {
    let client: Ipv6Addr = "fd00::100".parse().unwrap();
    let vip: Ipv6Addr = "fd00::200".parse().unwrap();
    let frame = neighbor_solicitation(client, vip, 255);
    let reply = answer(&frame, OWN, &owned(&["fd00::200"])).unwrap();
    let ethernet = EthernetPacket::new(&reply).unwrap();
    assert_eq!(ethernet.get_destination(), CLIENT);
    assert_eq!(ethernet.get_source(), OWN);
    let ipv6 = Ipv6Packet::new(ethernet.payload()).unwrap();
    assert_eq!(ipv6.get_source(), vip);
    assert_eq!(ipv6.get_destination(), client);
    assert_eq!(ipv6.get_hop_limit(), 255);
    assert_eq!(usize::from(ipv6.get_payload_length()), ipv6.payload().len());
    let advert = NeighborAdvertPacket::new(ipv6.payload()).unwrap();
    assert_eq!(advert.get_icmpv6_type(), Icmpv6Types::NeighborAdvert);
    assert_eq!(
        advert.get_flags(),
        NeighborAdvertFlags::Solicited | NeighborAdvertFlags::Override
    );
    assert_eq!(advert.get_target_addr(), vip);
    let options = advert.get_options();
    assert_eq!(options.len(), 1);
    assert_eq!(options[0].option_type, NdpOptionTypes::TargetLLAddr);
    assert_eq!(options[0].data, OWN.octets());
    let icmp = Icmpv6Packet::new(ipv6.payload()).unwrap();
    assert_eq!(icmp.get_checksum(), checksum(&icmp, &vip, &client));
    assert_ne!(icmp.get_checksum(), 0);
}

#[test]
fn duplicate_address_detection_is_answered_to_all_nodes() {
    let vip: Ipv6Addr = "fd00::200".parse().unwrap();
    let probe = neighbor_solicitation(Ipv6Addr::UNSPECIFIED, vip, 255);
    let reply = answer(&probe, OWN, &owned(&["fd00::200"])).unwrap();
    let ethernet = EthernetPacket::new(&reply).unwrap();
    assert_eq!(ethernet.get_destination(), all_nodes_mac());
    let ipv6 = Ipv6Packet::new(ethernet.payload()).unwrap();
    assert_eq!(ipv6.get_destination().to_string(), "ff02::1");
    let advert = NeighborAdvertPacket::new(ipv6.payload()).unwrap();
    assert_eq!(advert.get_flags(), NeighborAdvertFlags::Override);
}

#[test]
fn takeover_announcements_are_gratuitous() {
    let frames = announcements("198.18.0.200".parse().unwrap(), OWN);
    let operations: Vec<ArpOperation> = frames
        .iter()
        .map(|frame| {
            let ethernet = EthernetPacket::new(frame).unwrap();
            assert_eq!(ethernet.get_destination(), MacAddr::broadcast());
            let arp = ArpPacket::new(ethernet.payload()).unwrap();
            assert_eq!(arp.get_sender_proto_addr(), arp.get_target_proto_addr());
            assert_eq!(arp.get_sender_hw_addr(), OWN);
            arp.get_operation()
        })
        .collect();
    assert_eq!(operations, [ArpOperations::Request, ArpOperations::Reply]);

    let frames = announcements("fd00::200".parse().unwrap(), OWN);
    assert_eq!(frames.len(), 1);
    let ethernet = EthernetPacket::new(&frames[0]).unwrap();
    assert_eq!(ethernet.get_destination(), all_nodes_mac());
    let ipv6 = Ipv6Packet::new(ethernet.payload()).unwrap();
    let advert = NeighborAdvertPacket::new(ipv6.payload()).unwrap();
    assert_eq!(advert.get_flags(), NeighborAdvertFlags::Override);
    assert_eq!(advert.get_target_addr().to_string(), "fd00::200");
}

#[test]
fn the_solicited_node_group_takes_the_last_three_bytes() {
    assert_eq!(
        solicited_node_mac("fd00::12:3456".parse().unwrap()),
        MacAddr::new(0x33, 0x33, 0xff, 0x12, 0x34, 0x56)
    );
}
