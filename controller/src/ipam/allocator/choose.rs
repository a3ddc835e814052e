//! Which addresses a Service gets: keep what still fits, take what was requested, or pick from
//! the pools in order. Reads the state only; `Allocator::assign` commits the choice.
//!
//! ```text
//!   held ──▶ still fits? ──yes──▶ kept ─┐
//!                                       ├─▶ requested IPs? ──▶ each in a usable pool, shareable
//!                                       └─▶ families missing? ──▶ pools in order ──▶ shared or next free
//! ```

use std::net::IpAddr;

use portico_api::IpFamily;
use portico_api::keys::service::ADDRESS_POOL;

use super::Allocator;
use crate::ipam::error::IpamError;
use crate::ipam::families::FamilyPlan;
use crate::ipam::pool::Pool;
use crate::ipam::request::ServiceRequest;
use crate::ipam::sharing::ShareProfile;

/// The addresses chosen, and the pools whose cursor moves past a freshly picked one.
pub(super) struct Chosen {
    pub ips: Vec<IpAddr>,
    pub advance: Vec<(String, IpAddr)>,
}

impl Allocator {
    pub(super) fn choose(
        &self,
        request: &ServiceRequest,
        plan: &FamilyPlan,
        previous: &[IpAddr],
        profile: &ShareProfile,
    ) -> Result<Chosen, IpamError> {
        let kept: Vec<IpAddr> = previous
            .iter()
            .filter(|ip| self.still_fits(request, plan, profile, **ip))
            .copied()
            .collect();

        if !request.requested_ips.is_empty() {
            for addr in request
                .requested_ips
                .iter()
                .filter(|addr| !kept.contains(addr))
            {
                self.check_requested(request, profile, *addr)?;
            }
            return Ok(Chosen {
                ips: request.requested_ips.clone(),
                advance: Vec::new(),
            });
        }

        let missing: Vec<IpFamily> = plan
            .wanted
            .iter()
            .filter(|family| !kept.iter().any(|ip| IpFamily::of(*ip) == **family))
            .copied()
            .collect();
        let keep_only = || Chosen {
            ips: kept.clone(),
            advance: Vec::new(),
        };
        if missing.is_empty() {
            return Ok(keep_only());
        }
        // PreferDualStack with one family held: adding the other is welcome, failing to is not an error.
        let optional = !plan.require_all && !kept.is_empty();
        let pools = match self.auto_pools(request) {
            Ok(pools) => pools,
            Err(_) if optional => return Ok(keep_only()),
            Err(e) => return Err(e),
        };
        if kept.is_empty() {
            return self.choose_fresh(request, plan, profile, &pools);
        }

        // Dual stack with one family held: the other from the same pool if it can, so both
        // addresses follow one pool's rules; else from the next pool in order.
        let family = missing[0];
        let same_pool = pools.iter().position(|pool| pool.contains(kept[0]));
        let in_order = same_pool
            .into_iter()
            .chain((0..pools.len()).filter(|i| Some(*i) != same_pool));
        for i in in_order {
            if let Some(picked) = self.pick(pools[i], family, request, profile) {
                let mut chosen = keep_only();
                chosen.push(pools[i], picked);
                return Ok(chosen);
            }
        }
        if optional {
            return Ok(keep_only());
        }
        Err(IpamError::PoolExhausted {
            pools: names(&pools),
            family,
        })
    }

    /// Nothing held: both families from the first pool that has both, else (unless both are
    /// required) one family from the first pool that has it.
    fn choose_fresh(
        &self,
        request: &ServiceRequest,
        plan: &FamilyPlan,
        profile: &ShareProfile,
        pools: &[&Pool],
    ) -> Result<Chosen, IpamError> {
        let mut chosen = Chosen {
            ips: Vec::new(),
            advance: Vec::new(),
        };
        if let [first_family, second_family] = plan.wanted[..] {
            for pool in pools {
                let first = self.pick(pool, first_family, request, profile);
                let second = self.pick(pool, second_family, request, profile);
                if let (Some(first), Some(second)) = (first, second) {
                    chosen.push(pool, first);
                    chosen.push(pool, second);
                    return Ok(chosen);
                }
            }
            if plan.require_all {
                return Err(IpamError::NoDualStackPool {
                    pools: names(pools),
                });
            }
        }
        for family in &plan.wanted {
            for pool in pools {
                if let Some(picked) = self.pick(pool, *family, request, profile) {
                    chosen.push(pool, picked);
                    return Ok(chosen);
                }
            }
        }
        Err(IpamError::PoolExhausted {
            pools: names(pools),
            family: plan.wanted[0],
        })
    }

    /// An address of `family` from `pool`: one already shared under the Service's sharing key
    /// that it may join, else the next free one.
    fn pick(
        &self,
        pool: &Pool,
        family: IpFamily,
        request: &ServiceRequest,
        profile: &ShareProfile,
    ) -> Option<Picked> {
        if let Some(sharing_key) = &profile.sharing_key {
            let shared = self.ledger.shared_under(sharing_key).find(|ip| {
                IpFamily::of(*ip) == family
                    && pool.contains(*ip)
                    && self
                        .ledger
                        .check_sharing(&request.key, profile, *ip)
                        .is_ok()
            });
            if let Some(ip) = shared {
                return Some(Picked { ip, fresh: false });
            }
        }
        pool.next_free(family, self.ledger.used())
            .map(|ip| Picked { ip, fresh: true })
    }

    /// Whether a held address may stay: of a wanted family, the requested one if any, still
    /// shareable with its other holders, and in a pool the Service may use, or in no pool at
    /// all (the pool shrank or went away: keep it rather than renumber, and report it).
    fn still_fits(
        &self,
        request: &ServiceRequest,
        plan: &FamilyPlan,
        profile: &ShareProfile,
        ip: IpAddr,
    ) -> bool {
        let requested = request.requested_ips.contains(&ip);
        plan.wanted.contains(&IpFamily::of(ip))
            && (request.requested_ips.is_empty() || requested)
            && self.ledger.check_sharing(&request.key, profile, ip).is_ok()
            && (self.pool_containing(ip).is_none()
                || self.usable_pools(request).is_ok_and(|pools| {
                    pools.iter().any(|pool| {
                        pool.contains(ip)
                            && (pool.auto_assign || requested || request.pool.is_some())
                    })
                }))
    }

    /// Why a requested address cannot be given, if it cannot.
    fn check_requested(
        &self,
        request: &ServiceRequest,
        profile: &ShareProfile,
        addr: IpAddr,
    ) -> Result<(), IpamError> {
        let pools = self.usable_pools(request)?;
        if !pools.iter().any(|pool| pool.contains(addr)) {
            let not_usable = |pool: &Pool, why: String| IpamError::NotInUsablePool {
                addr,
                requested_by: request.requested_by,
                pool: pool.name.clone(),
                why,
            };
            if let Some(avoiding) = pools.iter().find(|pool| pool.covers(addr)) {
                return Err(not_usable(
                    avoiding,
                    "which skips addresses ending in .0 and .255 (spec.avoidBuggyIPs)".to_owned(),
                ));
            }
            return Err(match (self.pool_containing(addr), &request.pool) {
                (None, _) => IpamError::NotInAnyPool {
                    addr,
                    requested_by: request.requested_by,
                },
                (Some(pool), Some(named)) => not_usable(
                    pool,
                    format!("not in AddressPool {named:?} named by annotation {ADDRESS_POOL}"),
                ),
                (Some(pool), None) => not_usable(
                    pool,
                    format!(
                        "whose spec.serviceAllocation does not select Service {}",
                        request.key
                    ),
                ),
            });
        }
        self.ledger.check_sharing(&request.key, profile, addr)
    }

    /// Pools the Service may take addresses from, in the order automatic allocation tries them:
    /// the named pool; else first the pools whose `serviceAllocation` selects the Service, then
    /// the unrestricted ones (MetalLB's order), each group by priority then name. Includes
    /// `autoAssign: false` pools, which serve requests for specific addresses.
    pub(super) fn usable_pools(&self, request: &ServiceRequest) -> Result<Vec<&Pool>, IpamError> {
        let Some(name) = &request.pool else {
            let mut pools: Vec<&Pool> = self
                .ordered_pools()
                .filter(|pool| pool.serves(request))
                .collect();
            // Stable: each group keeps the priority order.
            pools.sort_by_key(|pool| !pool.is_dedicated_to(request));
            return Ok(pools);
        };
        match self.pools.get(name) {
            Some(pool) if pool.serves(request) => Ok(vec![pool]),
            Some(_) => Err(IpamError::PoolNotAllowed {
                pool: name.clone(),
                service: request.key.clone(),
            }),
            None => match self.invalid_pools.get(name) {
                Some(errors) => Err(IpamError::InvalidPool {
                    name: name.clone(),
                    errors: errors.clone(),
                }),
                None => Err(IpamError::UnknownPool { name: name.clone() }),
            },
        }
    }

    /// Pools automatic allocation tries, in order: the named pool, else the `autoAssign` pools
    /// among [`Allocator::usable_pools`].
    fn auto_pools(&self, request: &ServiceRequest) -> Result<Vec<&Pool>, IpamError> {
        let mut pools = self.usable_pools(request)?;
        if request.pool.is_none() {
            pools.retain(|pool| pool.auto_assign);
        }
        if pools.is_empty() {
            return Err(IpamError::NoPoolForService {
                service: request.key.clone(),
            });
        }
        Ok(pools)
    }
}

struct Picked {
    ip: IpAddr,
    /// Taken from the free addresses (not joined as a share): the pool's cursor moves past it.
    fresh: bool,
}

impl Chosen {
    fn push(&mut self, pool: &Pool, picked: Picked) {
        self.ips.push(picked.ip);
        if picked.fresh {
            self.advance.push((pool.name.clone(), picked.ip));
        }
    }
}

fn names(pools: &[&Pool]) -> Vec<String> {
    pools.iter().map(|pool| pool.name.clone()).collect()
}
