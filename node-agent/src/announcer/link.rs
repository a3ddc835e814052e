//! What the announcer needs to know about an interface: its index (to bind a packet socket),
//! its MAC (the answer to every ARP and NS), and which interface holds the node's InternalIP
//! (where VIPs are announced when no `L2Announcement` names interfaces).

use std::io;
use std::net::IpAddr;
use std::path::Path;

use pnet_base::MacAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub index: u32,
    pub mac: MacAddr,
}

/// Reads the interface's index and MAC from sysfs (no netlink, no `unsafe`).
pub fn link(name: &str) -> io::Result<Link> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not an interface name"),
        ));
    }
    let dir = Path::new("/sys/class/net").join(name);
    let read = |file: &str| -> io::Result<String> {
        std::fs::read_to_string(dir.join(file))
            .map(|text| text.trim().to_owned())
            .map_err(|e| io::Error::new(e.kind(), format!("interface {name:?}: {file}: {e}")))
    };
    let index = read("ifindex")?.parse::<u32>().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("interface {name:?}: ifindex: {e}"),
        )
    })?;
    let mac = parse_mac(&read("address")?).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("interface {name:?} has no Ethernet address"),
        )
    })?;
    Ok(Link {
        name: name.to_owned(),
        index,
        mac,
    })
}

fn parse_mac(text: &str) -> Option<MacAddr> {
    let octets: Vec<u8> = text
        .split(':')
        .map(|part| u8::from_str_radix(part, 16).ok())
        .collect::<Option<_>>()?;
    let octets: [u8; 6] = octets.try_into().ok()?;
    Some(MacAddr::from(octets))
}

/// The interface that holds one of `addresses` (the node's InternalIPs, in order).
pub fn holding(addresses: &[IpAddr]) -> io::Result<Option<String>> {
    let interfaces = if_addrs::get_if_addrs()?;
    Ok(addresses.iter().find_map(|wanted| {
        interfaces
            .iter()
            .find(|interface| interface.ip() == *wanted)
            .map(|interface| interface.name.clone())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_from_sysfs_text() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:0a"),
            Some(MacAddr::new(0x02, 0x42, 0xac, 0x11, 0, 0x0a))
        );
        assert_eq!(parse_mac(""), None, "interfaces without a MAC (tun)");
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
        assert_eq!(parse_mac("zz:42:ac:11:00:0a"), None);
    }

    #[test]
    fn loopback_is_found_by_its_address_and_bad_names_are_refused() {
        let lo = holding(&["127.0.0.1".parse().unwrap()]).unwrap();
        assert_eq!(lo.as_deref(), Some("lo"));
        assert_eq!(holding(&["192.0.2.123".parse().unwrap()]).unwrap(), None);
        assert!(link("../etc").is_err());
        assert!(link("no-such-if0").is_err());
        assert_eq!(link("lo").unwrap().index, 1);
    }
}
