//! AF_PACKET sockets bound to one interface: the only `unsafe` in the agent, for the calls that
//! have no safe form (binding to a link-layer address, joining a link-layer multicast group,
//! and registering a descriptor with tokio's reactor).
//!
//! ```text
//!   arp(ifindex)  ── ETH_P_ARP: every ARP frame on the interface
//!   ndp(ifindex)  ── ETH_P_IPV6 + a BPF filter: only ICMPv6 Neighbor Solicitations reach us
//!   join_multicast(mac) ── the solicited-node groups of owned v6 VIPs, so the NIC accepts them
//! ```
#![allow(unsafe_code)]

use std::io;
use std::mem::size_of;
use std::os::fd::AsRawFd;

use pnet_base::MacAddr;
use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, SockFilter, Socket, Type};
use tokio::io::unix::AsyncFd;

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;

/// Accepts only untagged IPv6 frames whose next header is ICMPv6 (58) and whose ICMPv6 type is
/// Neighbor Solicitation (135): the kernel drops the rest of the node's IPv6 traffic before it
/// is copied to us. Offsets count from the Ethernet header (SOCK_RAW).
const NEIGHBOR_SOLICITATION_FILTER: [SockFilter; 8] = [
    SockFilter::new(0x28, 0, 0, 12), // ldh [12]        ethertype
    SockFilter::new(0x15, 0, 5, ETH_P_IPV6 as u32), // jne IPv6 → drop
    SockFilter::new(0x30, 0, 0, 20), // ldb [14 + 6]    next header
    SockFilter::new(0x15, 0, 3, 58), // jne ICMPv6 → drop
    SockFilter::new(0x30, 0, 0, 54), // ldb [14 + 40]   ICMPv6 type
    SockFilter::new(0x15, 0, 1, 135), // jne NS → drop
    SockFilter::new(0x06, 0, 0, 0xffff), // accept (up to 64 KiB)
    SockFilter::new(0x06, 0, 0, 0),  // drop
];

/// Hands `socket` to tokio's reactor (which wakes the responder when a frame is queued).
pub fn register(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: `Socket` owns its file descriptor, closes it only when dropped, and returns the
    // same descriptor from every `as_raw_fd()`; the `AsyncFd` owns the `Socket`, so the
    // descriptor stays open and unchanged for as long as it is registered.
    unsafe { AsyncFd::register(socket) }.map_err(io::Error::from)
}

/// A non-blocking raw socket that receives every ARP frame on `ifindex` and sends whole frames
/// out of it.
pub fn arp(ifindex: u32) -> io::Result<Socket> {
    bound(ifindex, ETH_P_ARP)
}

/// A non-blocking raw socket that receives the Neighbor Solicitations on `ifindex`.
pub fn ndp(ifindex: u32) -> io::Result<Socket> {
    let socket = bound(ifindex, ETH_P_IPV6)?;
    socket.attach_filter(&NEIGHBOR_SOLICITATION_FILTER)?;
    Ok(socket)
}

fn bound(ifindex: u32, ethertype: u16) -> io::Result<Socket> {
    let ifindex = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index too large"))?;
    // The protocol of a packet socket is the ethertype in network byte order.
    let protocol = Protocol::from(i32::from(ethertype.to_be()));
    let socket = Socket::new(Domain::PACKET, Type::RAW, Some(protocol))?;
    socket.set_nonblocking(true)?;
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: `sockaddr_ll` is one of this platform's `sockaddr_*` types and is smaller than
    // `sockaddr_storage` (view_as asserts it); the storage is zeroed, so every field we do not
    // set is a valid zero.
    let link = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    link.sll_family = libc::AF_PACKET as libc::sa_family_t;
    link.sll_protocol = ethertype.to_be();
    link.sll_ifindex = ifindex;
    let len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: the storage holds an initialised `sockaddr_ll` of family AF_PACKET and `len` is
    // its exact size, which is what `SockAddr::new` requires of its arguments.
    let address = unsafe { SockAddr::new(storage, len) };
    socket.bind(&address)?;
    Ok(socket)
}

/// Makes the interface accept frames sent to the link-layer multicast `group` for as long as
/// `socket` is open (PACKET_ADD_MEMBERSHIP; the kernel drops the membership with the socket).
pub fn join_multicast(socket: &Socket, ifindex: u32, group: MacAddr) -> io::Result<()> {
    let mut request = libc::packet_mreq {
        mr_ifindex: i32::try_from(ifindex).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "interface index too large")
        })?,
        mr_type: libc::PACKET_MR_MULTICAST as u16,
        mr_alen: 6,
        mr_address: [0; 8],
    };
    request.mr_address[..6].copy_from_slice(&group.octets());
    // SAFETY: the pointer and length describe `request`, a fully initialised `packet_mreq` that
    // lives across the call; the kernel only reads it. The fd is open for `socket`'s lifetime.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            (&raw const request).cast::<libc::c_void>(),
            size_of::<libc::packet_mreq>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
