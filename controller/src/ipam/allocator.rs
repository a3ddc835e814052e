//! The allocator's state and its public operations: pools in, holdings restored, addresses
//! assigned and released, statistics out. Which addresses a Service gets is decided in
//! [`choose`]; this module keeps the pools' counters in step with the ledger.

mod choose;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use portico_api::{AddressPool, AddressPoolStatus, IpFamily, ValidationErrors};

use super::error::IpamError;
use super::families::plan_families;
use super::ledger::{Holding, Ledger, UsageChange};
use super::pool::Pool;
use super::request::{ServiceKey, ServiceRequest};
use super::sharing::ShareProfile;

/// One address given to a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssignedAddress {
    pub ip: IpAddr,
    /// The pool it counts against; `None` when no pool contains it any more (the pool shrank
    /// or was deleted): the Service keeps it, and the controller should warn.
    pub pool: Option<String>,
}

/// The outcome of [`Allocator::assign`] or [`Allocator::restore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// The Service's addresses, in its `ipFamilies` order: what `status.loadBalancer.ingress` lists.
    pub addresses: Vec<AssignedAddress>,
    /// What the Service held before the call (for a restore: what its status showed).
    pub previous: Vec<IpAddr>,
}

impl Allocation {
    pub fn ips(&self) -> Vec<IpAddr> {
        self.addresses.iter().map(|a| a.ip).collect()
    }

    /// Whether the Service's addresses differ from before (an `IPAllocated` Event is due).
    pub fn changed(&self) -> bool {
        let mut now = self.ips();
        let mut before = self.previous.clone();
        now.sort_unstable();
        before.sort_unstable();
        now != before
    }

    /// Addresses the Service held before and lost in this call.
    pub fn released(&self) -> Vec<IpAddr> {
        self.previous
            .iter()
            .filter(|ip| !self.addresses.iter().any(|a| a.ip == **ip))
            .copied()
            .collect()
    }

    /// Addresses kept although no pool contains them any more (a Warning Event is due).
    pub fn outside_pools(&self) -> Vec<IpAddr> {
        self.addresses
            .iter()
            .filter(|a| a.pool.is_none())
            .map(|a| a.ip)
            .collect()
    }
}

/// Per-pool counts for `AddressPool.status` and metrics, saturating at `i64::MAX`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub assigned_ipv4: i64,
    pub available_ipv4: i64,
    pub assigned_ipv6: i64,
    pub available_ipv6: i64,
}

impl PoolStats {
    /// Copies the counts into a status, leaving its conditions alone.
    pub fn write_to(&self, status: &mut AddressPoolStatus) {
        status.assigned_ipv4 = self.assigned_ipv4;
        status.available_ipv4 = self.available_ipv4;
        status.assigned_ipv6 = self.assigned_ipv6;
        status.available_ipv6 = self.available_ipv6;
    }
}

/// Bare-metal IPAM: pure state, no I/O. See the module documentation of `ipam` for the call order.
#[derive(Clone, Debug, Default)]
pub struct Allocator {
    /// Valid pools by name.
    pools: BTreeMap<String, Pool>,
    /// Pools whose spec fails validation, and why; never allocated from.
    invalid_pools: BTreeMap<String, ValidationErrors>,
    /// Valid pool names in the order automatic allocation tries them.
    pool_order: Vec<String>,
    ledger: Ledger,
}

impl Allocator {
    pub fn new() -> Self {
        Allocator::default()
    }

    /// Replaces the pools with the current list of `AddressPool`s. Holdings are untouched: an
    /// address that left every pool stays with its Service ([`Allocator::outside_pools`]).
    pub fn set_pools(&mut self, address_pools: &[AddressPool]) {
        let mut pools = BTreeMap::new();
        let mut invalid_pools = BTreeMap::new();
        for address_pool in address_pools {
            let name = address_pool.metadata.name.clone().unwrap_or_default();
            match Pool::from_address_pool(address_pool) {
                Ok(mut pool) => {
                    if let Some(previous) = self.pools.get(&name) {
                        pool.keep_cursors_of(previous);
                    }
                    pools.insert(name, pool);
                }
                Err(errors) => {
                    invalid_pools.insert(name, errors);
                }
            }
        }
        for pool in pools.values_mut() {
            for family in [IpFamily::V4, IpFamily::V6] {
                let held_in_pool = pool.count_held(family, self.ledger.used());
                pool.space_mut(family).assigned = held_in_pool;
            }
        }
        let mut pool_order: Vec<&Pool> = pools.values().collect();
        pool_order.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        self.pool_order = pool_order
            .into_iter()
            .map(|pool| pool.name.clone())
            .collect();
        self.pools = pools;
        self.invalid_pools = invalid_pools;
    }

    /// Records the addresses a Service already has (`status.loadBalancer.ingress`) without
    /// checking pools, so that a restart renumbers nothing. Call it for every Service that has
    /// addresses before assigning any. Fails, recording nothing, when an address is already
    /// held by a Service it cannot share with (the later [`Allocator::assign`] then gives this
    /// Service another address). A Service already known keeps what it holds.
    pub fn restore(&mut self, request: &ServiceRequest) -> Result<Allocation, IpamError> {
        if let Some(holding) = self.ledger.holding(&request.key) {
            let ips = holding.ips.clone();
            return Ok(self.allocation(request, ips.clone(), ips));
        }
        // Its status already shows these addresses, so nothing "changes" by restoring them.
        let profile = ShareProfile::of(request);
        let mut ips: Vec<IpAddr> = Vec::with_capacity(2);
        for addr in &request.current_ips {
            if !ips
                .iter()
                .any(|kept| IpFamily::of(*kept) == IpFamily::of(*addr))
            {
                self.ledger.check_sharing(&request.key, &profile, *addr)?;
                ips.push(*addr);
            }
        }
        if !ips.is_empty() {
            self.commit(&request.key, ips.clone(), profile, &[]);
        }
        Ok(self.allocation(request, ips, request.current_ips.clone()))
    }

    /// Gives the Service its addresses: what it already holds while that still fits its request
    /// and pools, else new ones. On error nothing changes (the Service keeps what it had).
    pub fn assign(&mut self, request: &ServiceRequest) -> Result<Allocation, IpamError> {
        let plan = plan_families(request)?;
        if self.ledger.holding(&request.key).is_none() && !request.current_ips.is_empty() {
            // Not restored (a Service seen for the first time after start): its status is still
            // the best claim it has. A conflict just means it gets new addresses below.
            let _ = self.restore(request);
        }
        let previous = self
            .ledger
            .holding(&request.key)
            .map(|holding| holding.ips.clone())
            .unwrap_or_default();
        let profile = ShareProfile::of(request);
        let chosen = self.choose(request, &plan, &previous, &profile)?;
        self.commit(&request.key, chosen.ips.clone(), profile, &chosen.advance);
        let mut ips = chosen.ips;
        ips.sort_by_key(|ip| {
            plan.wanted
                .iter()
                .position(|family| *family == IpFamily::of(*ip))
        });
        Ok(self.allocation(request, ips, previous))
    }

    /// Frees everything the Service holds (Service deleted, or no longer a LoadBalancer of
    /// Portico's class). Returns what it held.
    pub fn release(&mut self, key: &ServiceKey) -> Vec<IpAddr> {
        let ips = self.addresses_of(key);
        let change = self.ledger.remove(key);
        self.count(&change);
        ips
    }

    /// What the Service holds now.
    pub fn addresses_of(&self, key: &ServiceKey) -> Vec<IpAddr> {
        self.ledger
            .holding(key)
            .map(|holding| holding.ips.clone())
            .unwrap_or_default()
    }

    /// Counts for one valid pool.
    pub fn pool_stats(&self, name: &str) -> Option<PoolStats> {
        let pool = self.pools.get(name)?;
        let saturate = |n: u128| i64::try_from(n).unwrap_or(i64::MAX);
        Some(PoolStats {
            assigned_ipv4: saturate(pool.space(IpFamily::V4).assigned),
            available_ipv4: saturate(pool.space(IpFamily::V4).free()),
            assigned_ipv6: saturate(pool.space(IpFamily::V6).assigned),
            available_ipv6: saturate(pool.space(IpFamily::V6).free()),
        })
    }

    /// Counts for every valid pool, by name.
    pub fn stats(&self) -> BTreeMap<String, PoolStats> {
        self.pools
            .keys()
            .filter_map(|name| Some((name.clone(), self.pool_stats(name)?)))
            .collect()
    }

    /// Pools that are not used because their spec is invalid, and why (for a `Valid: False`
    /// condition and a Warning Event on the pool).
    pub fn invalid_pools(&self) -> impl Iterator<Item = (&str, &ValidationErrors)> {
        self.invalid_pools
            .iter()
            .map(|(name, errors)| (name.as_str(), errors))
    }

    /// Pairs of valid pools that share addresses, each pair sorted, for an `Overlapping`
    /// condition on both. Allocation stays safe regardless: an address held through one pool
    /// counts as used in the other.
    pub fn overlapping_pools(&self) -> Vec<(String, String)> {
        let mut pairs = BTreeSet::new();
        for family in [IpFamily::V4, IpFamily::V6] {
            let mut intervals: Vec<(u128, u128, &str)> = self
                .pools
                .values()
                .flat_map(|pool| {
                    pool.intervals(family)
                        .iter()
                        .map(move |(first, last)| (*first, *last, pool.name.as_str()))
                })
                .collect();
            intervals.sort_unstable();
            // A sweep in address order: every interval still open when another starts overlaps it.
            let mut open: Vec<(u128, &str)> = Vec::new();
            for (first, last, name) in intervals {
                open.retain(|(open_last, _)| *open_last >= first);
                for (_, other) in &open {
                    if *other != name {
                        let (a, b) = if name < *other {
                            (name, *other)
                        } else {
                            (*other, name)
                        };
                        pairs.insert((a.to_owned(), b.to_owned()));
                    }
                }
                open.push((last, name));
            }
        }
        pairs.into_iter().collect()
    }

    /// The Services holding an address that one of these pools covers: call it before and after
    /// [`Allocator::set_pools`] with the pools whose spec changed, and those are the Services the
    /// change can affect (an address left a pool, came back into one, or changed pools).
    pub fn holders_in(&self, pool_names: &BTreeSet<String>) -> BTreeSet<ServiceKey> {
        let pools: Vec<&Pool> = pool_names
            .iter()
            .filter_map(|name| self.pools.get(name))
            .collect();
        if pools.is_empty() {
            return BTreeSet::new();
        }
        self.ledger
            .holdings()
            .filter(|(_, holding)| {
                holding
                    .ips
                    .iter()
                    .any(|ip| pools.iter().any(|pool| pool.covers(*ip)))
            })
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Held addresses that no valid pool contains (after a pool shrank or was deleted), by
    /// Service, sorted: each deserves a Warning Event on its Service.
    pub fn outside_pools(&self) -> Vec<(ServiceKey, IpAddr)> {
        let mut outside: Vec<(ServiceKey, IpAddr)> = self
            .ledger
            .holdings()
            .flat_map(|(key, holding)| holding.ips.iter().map(move |ip| (key, *ip)))
            .filter(|(_, ip)| self.pool_containing(*ip).is_none())
            .map(|(key, ip)| (key.clone(), ip))
            .collect();
        outside.sort();
        outside
    }

    /// The first valid pool, in allocation order, that contains `addr`.
    fn pool_containing(&self, addr: IpAddr) -> Option<&Pool> {
        self.ordered_pools().find(|pool| pool.contains(addr))
    }

    fn ordered_pools(&self) -> impl Iterator<Item = &Pool> {
        self.pool_order
            .iter()
            .filter_map(|name| self.pools.get(name))
    }

    /// Records the Service's new holding and moves the cursors of the pools it was picked from.
    fn commit(
        &mut self,
        key: &ServiceKey,
        ips: Vec<IpAddr>,
        profile: ShareProfile,
        advance: &[(String, IpAddr)],
    ) {
        let change = self.ledger.replace(key, Holding { ips, profile });
        self.count(&change);
        for (pool_name, addr) in advance {
            if let Some(pool) = self.pools.get_mut(pool_name) {
                pool.advance_cursor(*addr);
            }
        }
    }

    /// Keeps every pool's `assigned` counts in step with the ledger.
    fn count(&mut self, change: &UsageChange) {
        for pool in self.pools.values_mut() {
            for addr in &change.now_used {
                if pool.contains(*addr) {
                    let space = pool.space_mut(IpFamily::of(*addr));
                    space.assigned = space.assigned.saturating_add(1);
                }
            }
            for addr in &change.now_free {
                if pool.contains(*addr) {
                    let space = pool.space_mut(IpFamily::of(*addr));
                    space.assigned = space.assigned.saturating_sub(1);
                }
            }
        }
    }

    /// Names, for each address, the pool it counts against: the first pool the Service may use
    /// that contains it, else any pool that contains it, else none.
    fn allocation(
        &self,
        request: &ServiceRequest,
        ips: Vec<IpAddr>,
        previous: Vec<IpAddr>,
    ) -> Allocation {
        let addresses = ips
            .into_iter()
            .map(|ip| {
                let usable = self
                    .usable_pools(request)
                    .ok()
                    .and_then(|pools| pools.into_iter().find(|pool| pool.contains(ip)));
                let pool = usable.or_else(|| self.pool_containing(ip));
                AssignedAddress {
                    ip,
                    pool: pool.map(|pool| pool.name.clone()),
                }
            })
            .collect();
        Allocation {
            addresses,
            previous,
        }
    }
}
