//! One usable `AddressPool`: its addresses as sorted integer intervals per family, and the
//! search for a free address.
//!
//! The search never enumerates the pool. Each family keeps a cursor just past the last address
//! it handed out; the next search walks the used-address map from the cursor, so consecutive
//! allocations cost a map lookup each, a /64 costs no more than a /30, and a just-released
//! address is not handed out again at once (stale ARP/NDP caches and DNS still point at it).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use portico_api::address_range::ip_to_u128;
use portico_api::{AddressPool, IpFamily, ServiceAllocation, ValidationErrors};

use super::request::ServiceRequest;
use super::selector::{allocation_restricts, allocation_serves};

/// The addresses of one family in one pool, and how many of them are held.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FamilySpace {
    /// Inclusive `[first, last]` intervals, sorted and disjoint (the spec's validation
    /// rejects overlapping entries).
    intervals: Vec<(u128, u128)>,
    /// Addresses that may be handed out (buggy ones excluded), saturating.
    usable: u128,
    /// Usable addresses held by some Service; kept up to date by the allocator.
    pub(crate) assigned: u128,
    /// Where the next search starts.
    cursor: u128,
}

impl FamilySpace {
    pub(crate) fn free(&self) -> u128 {
        self.usable.saturating_sub(self.assigned)
    }
}

/// A pool whose spec is valid, ready to allocate from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pool {
    pub(crate) name: String,
    pub(crate) auto_assign: bool,
    avoid_buggy_ips: bool,
    allocation: Option<ServiceAllocation>,
    v4: FamilySpace,
    v6: FamilySpace,
}

impl Pool {
    /// Builds the pool, or returns why its spec is not usable.
    pub(crate) fn from_address_pool(pool: &AddressPool) -> Result<Pool, ValidationErrors> {
        pool.spec.validate()?;
        let spec = &pool.spec;
        let mut v4 = FamilySpace::default();
        let mut v6 = FamilySpace::default();
        for range in spec.ranges() {
            let interval = (ip_to_u128(range.first()), ip_to_u128(range.last()));
            match range.family() {
                IpFamily::V4 => v4.intervals.push(interval),
                IpFamily::V6 => v6.intervals.push(interval),
            }
        }
        for (family, space) in [(IpFamily::V4, &mut v4), (IpFamily::V6, &mut v6)] {
            space.intervals.sort_unstable();
            space.usable = space.intervals.iter().fold(0u128, |total, (first, last)| {
                let size = (last - first).saturating_add(1);
                let buggy = if spec.avoid_buggy_ips && family == IpFamily::V4 {
                    buggy_between(*first, *last)
                } else {
                    0
                };
                total.saturating_add(size - buggy)
            });
        }
        Ok(Pool {
            name: pool.metadata.name.clone().unwrap_or_default(),
            auto_assign: spec.auto_assign,
            avoid_buggy_ips: spec.avoid_buggy_ips,
            allocation: spec.service_allocation.clone(),
            v4,
            v6,
        })
    }

    /// `serviceAllocation.priority`: lower first, none after every number.
    pub(crate) fn order_key(&self) -> (bool, i32, &str) {
        let priority = self.allocation.as_ref().and_then(|a| a.priority);
        (priority.is_none(), priority.unwrap_or_default(), &self.name)
    }

    /// Whether the pool's `serviceAllocation` lets this Service use it.
    pub(crate) fn serves(&self, request: &ServiceRequest) -> bool {
        allocation_serves(self.allocation.as_ref(), request)
    }

    /// Whether the pool was set aside for this Service: its `serviceAllocation` restricts who
    /// may use it, and the Service is among them. Such pools are tried before open ones.
    pub(crate) fn is_dedicated_to(&self, request: &ServiceRequest) -> bool {
        allocation_restricts(self.allocation.as_ref()) && self.serves(request)
    }

    pub(crate) fn space(&self, family: IpFamily) -> &FamilySpace {
        match family {
            IpFamily::V4 => &self.v4,
            IpFamily::V6 => &self.v6,
        }
    }

    pub(crate) fn space_mut(&mut self, family: IpFamily) -> &mut FamilySpace {
        match family {
            IpFamily::V4 => &mut self.v4,
            IpFamily::V6 => &mut self.v6,
        }
    }

    /// The pool's entries of `family` as sorted, disjoint inclusive integer intervals.
    pub(crate) fn intervals(&self, family: IpFamily) -> &[(u128, u128)] {
        &self.space(family).intervals
    }

    /// Whether the pool may hand out `addr` (inside an entry, and not a buggy address the
    /// pool avoids).
    pub(crate) fn contains(&self, addr: IpAddr) -> bool {
        self.covers(addr) && !self.is_buggy(IpFamily::of(addr), ip_to_u128(addr))
    }

    /// Whether `addr` lies inside one of the pool's entries, buggy or not.
    pub(crate) fn covers(&self, addr: IpAddr) -> bool {
        let value = ip_to_u128(addr);
        let intervals = &self.space(IpFamily::of(addr)).intervals;
        let after = intervals.partition_point(|(first, _)| *first <= value);
        after > 0 && value <= intervals[after - 1].1
    }

    fn is_buggy(&self, family: IpFamily, value: u128) -> bool {
        self.avoid_buggy_ips && family == IpFamily::V4 && matches!(value & 0xff, 0 | 0xff)
    }

    /// How many addresses of `used` the pool may hand out (for its `assigned` count after a
    /// pool change), walking only the used addresses inside its entries.
    pub(crate) fn count_held<V>(&self, family: IpFamily, used: &BTreeMap<IpAddr, V>) -> u128 {
        self.space(family)
            .intervals
            .iter()
            .map(|(first, last)| {
                used.range(to_ip(family, *first)..=to_ip(family, *last))
                    .filter(|(addr, _)| !self.is_buggy(family, ip_to_u128(**addr)))
                    .count() as u128
            })
            .sum()
    }

    /// The first free address at or after the cursor, wrapping round once; `None` when full.
    pub(crate) fn next_free<V>(
        &self,
        family: IpFamily,
        used: &BTreeMap<IpAddr, V>,
    ) -> Option<IpAddr> {
        let space = self.space(family);
        if space.free() == 0 {
            return None;
        }
        let cursor = space.cursor;
        let found = space
            .intervals
            .iter()
            .filter(|(_, last)| *last >= cursor)
            .find_map(|(first, last)| {
                self.first_free_between(family, (*first).max(cursor), *last, used)
            })
            .or_else(|| {
                space
                    .intervals
                    .iter()
                    .take_while(|(first, _)| *first < cursor)
                    .find_map(|(first, last)| {
                        self.first_free_between(family, *first, (*last).min(cursor - 1), used)
                    })
            });
        found.map(|value| to_ip(family, value))
    }

    /// Starts the next search just past `addr`.
    pub(crate) fn advance_cursor(&mut self, addr: IpAddr) {
        let space = self.space_mut(IpFamily::of(addr));
        space.cursor = ip_to_u128(addr).checked_add(1).unwrap_or(0);
    }

    /// Keeps the cursors of the pool this one replaces, so that a pool edit does not send the
    /// next allocations back to the start.
    pub(crate) fn keep_cursors_of(&mut self, previous: &Pool) {
        self.v4.cursor = previous.v4.cursor;
        self.v6.cursor = previous.v6.cursor;
    }

    /// Walks `[low, high]` alongside the used addresses in it; stops at the first gap.
    fn first_free_between<V>(
        &self,
        family: IpFamily,
        low: u128,
        high: u128,
        used: &BTreeMap<IpAddr, V>,
    ) -> Option<u128> {
        let mut taken = used
            .range(to_ip(family, low)..=to_ip(family, high))
            .map(|(addr, _)| ip_to_u128(*addr));
        let mut next_taken = taken.next();
        let mut candidate = low;
        while candidate <= high {
            if next_taken == Some(candidate) {
                next_taken = taken.next();
            } else if !self.is_buggy(family, candidate) {
                return Some(candidate);
            }
            candidate = candidate.checked_add(1)?;
        }
        None
    }
}

/// The address of `family` whose integer value is `value`.
pub(crate) fn to_ip(family: IpFamily, value: u128) -> IpAddr {
    match family {
        // Values of an IPv4 space come from IPv4 addresses, so they fit; the mask only keeps
        // the conversion total.
        IpFamily::V4 => IpAddr::V4(Ipv4Addr::from((value & u128::from(u32::MAX)) as u32)),
        IpFamily::V6 => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// How many IPv4 addresses in `[first, last]` end in `.0` or `.255`.
fn buggy_between(first: u128, last: u128) -> u128 {
    // Addresses in [0, n] ending in .0 or .255.
    let up_to = |n: u128| (n / 256 + 1) + (n + 1) / 256;
    up_to(last) - if first == 0 { 0 } else { up_to(first - 1) }
}
