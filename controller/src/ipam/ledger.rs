//! Who holds which address: the one place that records holdings, so the three views of them
//! (address → holders, Service → addresses, sharing key → addresses) cannot drift apart.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use super::error::IpamError;
use super::request::ServiceKey;
use super::sharing::ShareProfile;

/// One Service's holding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Holding {
    pub ips: Vec<IpAddr>,
    pub profile: ShareProfile,
}

/// What a change of holdings did to the set of used addresses, for the pools' counters.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct UsageChange {
    /// Addresses nobody held before.
    pub now_used: Vec<IpAddr>,
    /// Addresses nobody holds any more.
    pub now_free: Vec<IpAddr>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Ledger {
    /// Every held address and its holders (more than one only when shared), ordered so that a
    /// pool can walk the used addresses of a range.
    holders: BTreeMap<IpAddr, Vec<ServiceKey>>,
    services: HashMap<ServiceKey, Holding>,
    /// Addresses held by some Service with this sharing key: where a sharing Service looks first.
    by_sharing_key: HashMap<String, BTreeSet<IpAddr>>,
}

impl Ledger {
    pub(crate) fn used(&self) -> &BTreeMap<IpAddr, Vec<ServiceKey>> {
        &self.holders
    }

    pub(crate) fn holding(&self, key: &ServiceKey) -> Option<&Holding> {
        self.services.get(key)
    }

    pub(crate) fn holdings(&self) -> impl Iterator<Item = (&ServiceKey, &Holding)> {
        self.services.iter()
    }

    /// Addresses held under `sharing_key`, in address order.
    pub(crate) fn shared_under(&self, sharing_key: &str) -> impl Iterator<Item = IpAddr> + '_ {
        self.by_sharing_key
            .get(sharing_key)
            .into_iter()
            .flatten()
            .copied()
    }

    /// Whether `profile` (of Service `key`) may hold `addr` alongside its other holders; the
    /// error names the first holder it may not share with.
    pub(crate) fn check_sharing(
        &self,
        key: &ServiceKey,
        profile: &ShareProfile,
        addr: IpAddr,
    ) -> Result<(), IpamError> {
        let others = self
            .holders
            .get(&addr)
            .into_iter()
            .flatten()
            .filter(|holder| *holder != key);
        for holder in others {
            let Some(holding) = self.services.get(holder) else {
                continue;
            };
            profile
                .can_share_with(&holding.profile)
                .map_err(|refusal| IpamError::AddressInUse {
                    addr,
                    holder: holder.clone(),
                    refusal,
                })?;
        }
        Ok(())
    }

    /// Makes `holding` the Service's whole holding (replacing any earlier one).
    pub(crate) fn replace(&mut self, key: &ServiceKey, holding: Holding) -> UsageChange {
        let mut change = self.remove(key);
        for addr in &holding.ips {
            let holders = self.holders.entry(*addr).or_default();
            if holders.is_empty() {
                // Freed and taken again in one change: the address stays used.
                match change.now_free.iter().position(|freed| freed == addr) {
                    Some(i) => {
                        change.now_free.swap_remove(i);
                    }
                    None => change.now_used.push(*addr),
                }
            }
            holders.push(key.clone());
            if let Some(sharing_key) = &holding.profile.sharing_key {
                self.by_sharing_key
                    .entry(sharing_key.clone())
                    .or_default()
                    .insert(*addr);
            }
        }
        self.services.insert(key.clone(), holding);
        change
    }

    /// Drops the Service's holding.
    pub(crate) fn remove(&mut self, key: &ServiceKey) -> UsageChange {
        let mut change = UsageChange::default();
        let Some(holding) = self.services.remove(key) else {
            return change;
        };
        for addr in holding.ips {
            let Some(holders) = self.holders.get_mut(&addr) else {
                continue;
            };
            holders.retain(|holder| holder != key);
            let remaining: Vec<ServiceKey> = holders.clone();
            if remaining.is_empty() {
                self.holders.remove(&addr);
                change.now_free.push(addr);
            }
            if let Some(sharing_key) = &holding.profile.sharing_key {
                let still_shared_under_key = remaining.iter().any(|holder| {
                    self.services
                        .get(holder)
                        .is_some_and(|h| h.profile.sharing_key.as_ref() == Some(sharing_key))
                });
                if !still_shared_under_key
                    && let Some(addrs) = self.by_sharing_key.get_mut(sharing_key)
                {
                    addrs.remove(&addr);
                    if addrs.is_empty() {
                        self.by_sharing_key.remove(sharing_key);
                    }
                }
            }
        }
        change
    }
}
