//! The frames the announcer reads and writes, pure: an ARP request or a Neighbor Solicitation in,
//! the answer out; and the unsolicited announcements a new owner sends. No socket here, so every
//! rule is tested with bytes.
//!
//! ```text
//!   Ethernet ─┬─ ARP request, target = owned VIP        ─▶ ARP reply (our MAC), to the asker
//!             └─ IPv6 ─ ICMPv6 NS, target = owned VIP   ─▶ NA (S|O, target link-layer = our MAC)
//!   takeover / refresh ─▶ gratuitous ARP (request and reply, broadcast) | unsolicited NA (O, ff02::1)
//! ```

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pnet_base::MacAddr;
use pnet_packet::arp::{
    ArpHardwareTypes, ArpOperation, ArpOperations, ArpPacket, MutableArpPacket,
};
use pnet_packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{
    MutableNeighborAdvertPacket, NdpOptionTypes, NeighborAdvertFlags, NeighborSolicitPacket,
};
use pnet_packet::icmpv6::{Icmpv6Code, Icmpv6Packet, Icmpv6Types, MutableIcmpv6Packet, checksum};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::{Ipv6Packet, MutableIpv6Packet};
use pnet_packet::{MutablePacket, Packet};

const ETHERNET_HEADER: usize = 14;
const ARP_LEN: usize = 28;
const IPV6_HEADER: usize = 40;
/// A Neighbor Advertisement with one Target Link-Layer Address option.
const NA_LEN: usize = 24 + 8;
/// NDP messages from off-link are forged; RFC 4861 makes receivers drop any other hop limit.
const NDP_HOP_LIMIT: u8 = 255;

/// An answer to one received frame, when it asks for an owned VIP.
pub fn answer(frame: &[u8], own_mac: MacAddr, owned: &BTreeSet<IpAddr>) -> Option<Vec<u8>> {
    let ethernet = EthernetPacket::new(frame)?;
    // Our own frames come back to a packet socket as outgoing ones; never answer ourselves.
    if ethernet.get_source() == own_mac {
        return None;
    }
    match ethernet.get_ethertype() {
        EtherTypes::Arp => answer_arp(&ethernet, own_mac, owned),
        EtherTypes::Ipv6 => answer_neighbor_solicitation(&ethernet, own_mac, owned),
        _ => None,
    }
}

fn answer_arp(
    ethernet: &EthernetPacket,
    own_mac: MacAddr,
    owned: &BTreeSet<IpAddr>,
) -> Option<Vec<u8>> {
    let request = ArpPacket::new(ethernet.payload())?;
    let wanted = request.get_target_proto_addr();
    if request.get_operation() != ArpOperations::Request
        || request.get_hardware_type() != ArpHardwareTypes::Ethernet
        || request.get_protocol_type() != EtherTypes::Ipv4
        || !owned.contains(&IpAddr::V4(wanted))
    {
        return None;
    }
    Some(arp_frame(
        own_mac,
        request.get_sender_hw_addr(),
        ArpOperations::Reply,
        wanted,
        request.get_sender_hw_addr(),
        request.get_sender_proto_addr(),
    ))
}

fn answer_neighbor_solicitation(
    ethernet: &EthernetPacket,
    own_mac: MacAddr,
    owned: &BTreeSet<IpAddr>,
) -> Option<Vec<u8>> {
    let ipv6 = Ipv6Packet::new(ethernet.payload())?;
    if ipv6.get_next_header() != IpNextHeaderProtocols::Icmpv6
        || ipv6.get_hop_limit() != NDP_HOP_LIMIT
    {
        return None;
    }
    let icmp = Icmpv6Packet::new(ipv6.payload())?;
    if icmp.get_icmpv6_type() != Icmpv6Types::NeighborSolicit {
        return None;
    }
    let solicit = NeighborSolicitPacket::new(ipv6.payload())?;
    let target = solicit.get_target_addr();
    if !owned.contains(&IpAddr::V6(target)) {
        return None;
    }
    let asker = ipv6.get_source();
    if asker.is_unspecified() {
        // Duplicate address detection: answer to all nodes, without the Solicited flag
        // (RFC 4861 § 7.2.4), so the prober learns the address is taken.
        return Some(neighbor_advert(
            own_mac,
            all_nodes_mac(),
            target,
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
            NeighborAdvertFlags::Override,
        ));
    }
    Some(neighbor_advert(
        own_mac,
        ethernet.get_source(),
        target,
        asker,
        NeighborAdvertFlags::Solicited | NeighborAdvertFlags::Override,
    ))
}

/// What a new owner sends so that neighbours and switches move the VIP to its MAC at once:
/// for IPv4 a gratuitous ARP request and reply (some hosts heed only one of the two, as
/// MetalLB found), for IPv6 an unsolicited Neighbor Advertisement to all nodes.
pub fn announcements(vip: IpAddr, own_mac: MacAddr) -> Vec<Vec<u8>> {
    match vip {
        IpAddr::V4(v4) => [ArpOperations::Request, ArpOperations::Reply]
            .into_iter()
            .map(|op| {
                arp_frame(
                    own_mac,
                    MacAddr::broadcast(),
                    op,
                    v4,
                    MacAddr::broadcast(),
                    v4,
                )
            })
            .collect(),
        IpAddr::V6(v6) => vec![neighbor_advert(
            own_mac,
            all_nodes_mac(),
            v6,
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
            NeighborAdvertFlags::Override,
        )],
    }
}

fn all_nodes_mac() -> MacAddr {
    MacAddr::new(0x33, 0x33, 0, 0, 0, 1)
}

/// The multicast MAC a Neighbor Solicitation for `vip` is sent to (its solicited-node group,
/// RFC 4291 § 2.7.1): the interface must accept it, or the solicitation never arrives.
pub fn solicited_node_mac(vip: Ipv6Addr) -> MacAddr {
    let o = vip.octets();
    MacAddr::new(0x33, 0x33, 0xff, o[13], o[14], o[15])
}

fn arp_frame(
    own_mac: MacAddr,
    destination: MacAddr,
    operation: ArpOperation,
    sender_ip: Ipv4Addr,
    target_mac: MacAddr,
    target_ip: Ipv4Addr,
) -> Vec<u8> {
    let mut frame = vec![0u8; ETHERNET_HEADER + ARP_LEN];
    let mut ethernet = MutableEthernetPacket::new(&mut frame).expect("sized for the header");
    ethernet.set_destination(destination);
    ethernet.set_source(own_mac);
    ethernet.set_ethertype(EtherTypes::Arp);
    let mut arp = MutableArpPacket::new(ethernet.payload_mut()).expect("sized for ARP");
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_operation(operation);
    arp.set_sender_hw_addr(own_mac);
    arp.set_sender_proto_addr(sender_ip);
    arp.set_target_hw_addr(target_mac);
    arp.set_target_proto_addr(target_ip);
    frame
}

fn neighbor_advert(
    own_mac: MacAddr,
    destination_mac: MacAddr,
    target: Ipv6Addr,
    destination: Ipv6Addr,
    flags: u8,
) -> Vec<u8> {
    let mut frame = vec![0u8; ETHERNET_HEADER + IPV6_HEADER + NA_LEN];
    let mut ethernet = MutableEthernetPacket::new(&mut frame).expect("sized for the header");
    ethernet.set_destination(destination_mac);
    ethernet.set_source(own_mac);
    ethernet.set_ethertype(EtherTypes::Ipv6);
    let mut ipv6 = MutableIpv6Packet::new(ethernet.payload_mut()).expect("sized for IPv6");
    ipv6.set_version(6);
    ipv6.set_payload_length(NA_LEN as u16);
    ipv6.set_next_header(IpNextHeaderProtocols::Icmpv6);
    ipv6.set_hop_limit(NDP_HOP_LIMIT);
    ipv6.set_source(target);
    ipv6.set_destination(destination);
    let body = ipv6.payload_mut();
    {
        let mut advert = MutableNeighborAdvertPacket::new(body).expect("sized for NA");
        advert.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
        advert.set_icmpv6_code(Icmpv6Code(0));
        advert.set_flags(flags);
        advert.set_target_addr(target);
    }
    // One Target Link-Layer Address option after the fixed 24 bytes, written by offset: pnet's
    // option list is sized from the packet, so there is nothing to gain from its setter here.
    body[24] = NdpOptionTypes::TargetLLAddr.0;
    body[25] = 1; // length, in units of 8 bytes
    body[26..32].copy_from_slice(&own_mac.octets());
    let sum = checksum(
        &Icmpv6Packet::new(body).expect("sized for ICMPv6"),
        &target,
        &destination,
    );
    MutableIcmpv6Packet::new(body)
        .expect("sized for ICMPv6")
        .set_checksum(sum);
    frame
}

#[cfg(test)]
mod tests;
