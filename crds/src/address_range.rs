//! One entry of `AddressPool.spec.addresses`: a CIDR (`192.168.10.0/24`) or an inclusive range
//! (`192.168.10.10-192.168.10.20`), IPv4 or IPv6. Parsing is strict on purpose: a typo in a pool
//! hands out addresses that belong to someone else, so anything ambiguous is an error that says
//! what was probably meant.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// An IP family, as in `Service.spec.ipFamilies`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }

    /// The spelling Kubernetes uses (`IPv4`, `IPv6`).
    pub fn as_k8s_str(self) -> &'static str {
        match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        }
    }
}

/// Why an entry is not a usable CIDR or range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressRangeError {
    #[error("must not be empty")]
    Empty,
    #[error("{value:?} contains white space")]
    WhiteSpace { value: String },
    #[error(
        "{value:?} is a single address; write it as a CIDR ({value}/{bits}) or a range ({value}-{value})"
    )]
    BareAddress { value: String, bits: u8 },
    #[error("{value:?} is not a valid CIDR: {reason}")]
    InvalidCidr { value: String, reason: String },
    #[error("{value:?} has host bits set; did you mean {network}?")]
    HostBitsSet { value: String, network: IpNet },
    #[error("{value:?} is not an IP address")]
    InvalidAddress { value: String },
    #[error("range {value:?} starts after it ends")]
    StartAfterEnd { value: String },
    #[error("range {value:?} mixes IPv4 and IPv6")]
    MixedFamilies { value: String },
    #[error(
        "{value:?} is neither a CIDR (192.168.10.0/24) nor a range (192.168.10.10-192.168.10.20)"
    )]
    Unrecognised { value: String },
}

/// A parsed pool entry: the inclusive interval `[first, last]` of one family.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AddressRange {
    Cidr(IpNet),
    Range { start: IpAddr, end: IpAddr },
}

impl AddressRange {
    pub fn parse(value: &str) -> Result<Self, AddressRangeError> {
        if value.is_empty() {
            return Err(AddressRangeError::Empty);
        }
        if value.chars().any(char::is_whitespace) {
            return Err(AddressRangeError::WhiteSpace {
                value: value.to_owned(),
            });
        }
        if value.contains('/') {
            return parse_cidr(value);
        }
        if let Some((start, end)) = value.split_once('-') {
            return parse_range(value, start, end);
        }
        match IpAddr::from_str(value) {
            Ok(addr) => Err(AddressRangeError::BareAddress {
                value: value.to_owned(),
                bits: max_prefix(IpFamily::of(addr)),
            }),
            Err(_) => Err(AddressRangeError::Unrecognised {
                value: value.to_owned(),
            }),
        }
    }

    pub fn first(&self) -> IpAddr {
        match self {
            AddressRange::Cidr(net) => net.network(),
            AddressRange::Range { start, .. } => *start,
        }
    }

    pub fn last(&self) -> IpAddr {
        match self {
            AddressRange::Cidr(net) => net.broadcast(),
            AddressRange::Range { end, .. } => *end,
        }
    }

    pub fn family(&self) -> IpFamily {
        IpFamily::of(self.first())
    }

    /// Whether `addr` lies inside the range (both ends included).
    pub fn contains(&self, addr: IpAddr) -> bool {
        IpFamily::of(addr) == self.family() && self.first() <= addr && addr <= self.last()
    }

    /// Whether the two ranges share at least one address.
    pub fn overlaps(&self, other: &AddressRange) -> bool {
        self.family() == other.family()
            && self.first() <= other.last()
            && other.first() <= self.last()
    }

    /// Number of addresses, saturating at `u128::MAX` for a whole IPv6 space.
    pub fn size(&self) -> u128 {
        (ip_to_u128(self.last()) - ip_to_u128(self.first())).saturating_add(1)
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressRange::Cidr(net) => write!(f, "{net}"),
            AddressRange::Range { start, end } => write!(f, "{start}-{end}"),
        }
    }
}

impl FromStr for AddressRange {
    type Err = AddressRangeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AddressRange::parse(s)
    }
}

/// The address as an integer, for arithmetic over both families.
pub fn ip_to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn max_prefix(family: IpFamily) -> u8 {
    match family {
        IpFamily::V4 => 32,
        IpFamily::V6 => 128,
    }
}

fn parse_cidr(value: &str) -> Result<AddressRange, AddressRangeError> {
    let (addr_text, prefix_text) = value.split_once('/').unwrap_or((value, ""));
    let addr = IpAddr::from_str(addr_text).map_err(|_| AddressRangeError::InvalidCidr {
        value: value.to_owned(),
        reason: format!("{addr_text:?} is not an IP address"),
    })?;
    let family = IpFamily::of(addr);
    let prefix: u8 = prefix_text
        .parse()
        .ok()
        .filter(|p| *p <= max_prefix(family))
        .ok_or_else(|| AddressRangeError::InvalidCidr {
            value: value.to_owned(),
            reason: format!(
                "prefix length {prefix_text:?} must be a number from 0 to {}",
                max_prefix(family)
            ),
        })?;
    let net = IpNet::new(addr, prefix).map_err(|e| AddressRangeError::InvalidCidr {
        value: value.to_owned(),
        reason: e.to_string(),
    })?;
    if net.trunc() != net {
        return Err(AddressRangeError::HostBitsSet {
            value: value.to_owned(),
            network: net.trunc(),
        });
    }
    Ok(AddressRange::Cidr(net))
}

fn parse_range(value: &str, start: &str, end: &str) -> Result<AddressRange, AddressRangeError> {
    let parse = |text: &str| {
        IpAddr::from_str(text).map_err(|_| AddressRangeError::InvalidAddress {
            value: text.to_owned(),
        })
    };
    let (start, end) = (parse(start)?, parse(end)?);
    if IpFamily::of(start) != IpFamily::of(end) {
        return Err(AddressRangeError::MixedFamilies {
            value: value.to_owned(),
        });
    }
    if start > end {
        return Err(AddressRangeError::StartAfterEnd {
            value: value.to_owned(),
        });
    }
    Ok(AddressRange::Range { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn accepts_cidrs_and_ranges_of_both_families() {
        let cases = [
            ("192.168.10.0/24", "192.168.10.0", "192.168.10.255", 256),
            (
                "192.168.10.10-192.168.10.20",
                "192.168.10.10",
                "192.168.10.20",
                11,
            ),
            ("198.18.0.200/32", "198.18.0.200", "198.18.0.200", 1),
            (
                "fc00:f853:ccd:e799::/124",
                "fc00:f853:ccd:e799::",
                "fc00:f853:ccd:e799::f",
                16,
            ),
            ("2001:db8::1-2001:db8::1", "2001:db8::1", "2001:db8::1", 1),
        ];
        for (text, first, last, size) in cases {
            let range = AddressRange::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                (range.first(), range.last()),
                (ip(first), ip(last)),
                "{text}"
            );
            assert_eq!(range.size(), size, "{text}");
            assert_eq!(range.to_string(), text, "round trip of {text}");
        }
    }

    #[test]
    fn rejections_say_what_was_probably_meant() {
        let err = |s: &str| AddressRange::parse(s).unwrap_err().to_string();
        assert!(err("192.168.10.5/24").contains("did you mean 192.168.10.0/24"));
        assert!(err("192.168.10.5").contains("192.168.10.5/32"));
        assert!(err("2001:db8::1").contains("2001:db8::1/128"));
        assert!(err("192.168.10.0/33").contains("from 0 to 32"));
        assert!(err("10.0.0.9-10.0.0.1").contains("starts after it ends"));
        assert!(err("10.0.0.1-2001:db8::1").contains("mixes IPv4 and IPv6"));
        assert!(err("10.0.0.1 - 10.0.0.9").contains("white space"));
        assert!(err("300.1.1.1/24").contains("not an IP address"));
        assert!(err("10.0.0.1-10.0.0").contains("\"10.0.0\" is not an IP address"));
        assert!(err("pool-a").contains("not an IP address"));
        assert!(err("").contains("must not be empty"));
    }

    #[test]
    fn overlap_and_containment_respect_families() {
        let a = AddressRange::parse("10.0.0.0/30").unwrap();
        let b = AddressRange::parse("10.0.0.3-10.0.0.9").unwrap();
        let c = AddressRange::parse("10.0.0.4-10.0.0.9").unwrap();
        let v6 = AddressRange::parse("::/0").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert!(!a.overlaps(&v6));
        assert!(a.contains(ip("10.0.0.3")) && !a.contains(ip("10.0.0.4")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert_eq!(v6.size(), u128::MAX);
    }
}
