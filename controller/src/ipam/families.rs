//! Which IP families a Service gets addresses of, from `spec.ipFamilies` and
//! `spec.ipFamilyPolicy`, and whether its requested addresses fit them.

use portico_api::IpFamily;

use super::error::IpamError;
use super::request::{IpFamilyPolicy, ServiceRequest};

/// The families to allocate, in the Service's order of preference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FamilyPlan {
    pub wanted: Vec<IpFamily>,
    /// Every wanted family must be served (`SingleStack`, `RequireDualStack`); otherwise
    /// (`PreferDualStack`) one is enough when no pool can give both.
    pub require_all: bool,
}

pub(crate) fn other_family(family: IpFamily) -> IpFamily {
    match family {
        IpFamily::V4 => IpFamily::V6,
        IpFamily::V6 => IpFamily::V4,
    }
}

/// Works out the families and checks the requested addresses against them.
pub(crate) fn plan_families(request: &ServiceRequest) -> Result<FamilyPlan, IpamError> {
    let policy = request.ip_family_policy;
    let mut listed: Vec<IpFamily> = Vec::with_capacity(2);
    for family in &request.ip_families {
        if !listed.contains(family) {
            listed.push(*family);
        }
    }
    // The API server always fills ipFamilies; an empty list (a hand-built request) follows the
    // requested addresses, else prefers IPv4 first as the API server does on dual-stack clusters.
    let defaulted = listed.is_empty();
    if defaulted {
        for addr in &request.requested_ips {
            let family = IpFamily::of(*addr);
            if !listed.contains(&family) {
                listed.push(family);
            }
        }
        if listed.is_empty() {
            listed.push(IpFamily::V4);
        }
    }
    let primary = listed[0];
    let wanted = match policy {
        IpFamilyPolicy::SingleStack => vec![primary],
        IpFamilyPolicy::RequireDualStack => vec![primary, other_family(primary)],
        IpFamilyPolicy::PreferDualStack if defaulted => vec![primary, other_family(primary)],
        IpFamilyPolicy::PreferDualStack => listed.clone(),
    };
    for addr in &request.requested_ips {
        if !wanted.contains(&IpFamily::of(*addr)) {
            return Err(IpamError::FamilyNotAllowed {
                addr: *addr,
                listed: request.ip_families.clone(),
                allowed: wanted,
                policy,
            });
        }
    }
    if policy == IpFamilyPolicy::RequireDualStack && request.requested_ips.len() == 1 {
        return Err(IpamError::DualStackIncomplete {
            addr: request.requested_ips[0],
        });
    }
    Ok(FamilyPlan {
        wanted,
        require_all: policy != IpFamilyPolicy::PreferDualStack,
    })
}
