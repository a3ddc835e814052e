//! Why an address could not be given. Each message names the annotation, field, pool or Service
//! to look at, because it ends up verbatim in an `AllocationFailed` Event the user reads.

use std::fmt;
use std::net::IpAddr;

use portico_api::keys::service::{ADDRESS_POOL, ALLOW_SHARED_IP};
use portico_api::{IpFamily, ValidationErrors};

use super::request::{IpFamilyPolicy, RequestedBy, ServiceKey, TrafficPolicy};

/// Everything the allocator can refuse, from malformed input to a full pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// An annotation's value does not parse.
    #[error("annotation {key}: {value:?} {reason}")]
    MalformedAnnotation {
        key: &'static str,
        value: String,
        reason: String,
    },
    /// A Service field's value does not parse or is not one Kubernetes defines.
    #[error("{field}: {value:?} {reason}")]
    MalformedField {
        field: &'static str,
        value: String,
        reason: String,
    },
    /// Two requested addresses of one family: a Service gets at most one per family.
    #[error(
        "{source_name} requests two {} addresses ({first} and {second}); a Service gets at most one per family",
        .family.as_k8s_str()
    )]
    TwoAddressesOfOneFamily {
        source_name: &'static str,
        family: IpFamily,
        first: IpAddr,
        second: IpAddr,
    },
    /// The annotation and `spec.loadBalancerIP` ask for different addresses.
    #[error(
        "spec.loadBalancerIP {load_balancer_ip} is not among the addresses of annotation {annotation}: {annotation_value:?}; \
         set only the annotation (spec.loadBalancerIP is deprecated)"
    )]
    ConflictingRequests {
        annotation: &'static str,
        annotation_value: String,
        load_balancer_ip: IpAddr,
    },
    /// A requested address is of a family the Service's `ipFamilies`/`ipFamilyPolicy` exclude.
    #[error(
        "requested address {addr} is {}, but spec.ipFamilies {} with ipFamilyPolicy {policy} allows only {}",
        family_name(.addr), FamilyList(.listed), FamilyList(.allowed)
    )]
    FamilyNotAllowed {
        addr: IpAddr,
        listed: Vec<IpFamily>,
        allowed: Vec<IpFamily>,
        policy: IpFamilyPolicy,
    },
    /// `RequireDualStack` with requested addresses of only one family.
    #[error(
        "ipFamilyPolicy RequireDualStack needs one requested address of each family, but only {} was requested ({addr})",
        family_name(.addr)
    )]
    DualStackIncomplete { addr: IpAddr },
    /// The pool annotation names no `AddressPool`.
    #[error("annotation {ADDRESS_POOL}: no AddressPool named {name:?}")]
    UnknownPool { name: String },
    /// The pool annotation names an `AddressPool` whose spec is invalid.
    #[error("AddressPool {name:?} named by annotation {ADDRESS_POOL} is not usable: {errors}")]
    InvalidPool {
        name: String,
        errors: ValidationErrors,
    },
    /// The named pool's `serviceAllocation` does not select this Service.
    #[error(
        "AddressPool {pool:?} does not serve Service {service}: its spec.serviceAllocation selects other namespaces or Services"
    )]
    PoolNotAllowed { pool: String, service: ServiceKey },
    /// No pool may give this Service an address automatically.
    #[error(
        "no AddressPool serves Service {service}: none has autoAssign true and a spec.serviceAllocation that selects it; \
         name a pool with annotation {ADDRESS_POOL}"
    )]
    NoPoolForService { service: ServiceKey },
    /// Every pool the Service may use is full for the family it needs.
    #[error("{} no free {} address", PoolNames(.pools), .family.as_k8s_str())]
    PoolExhausted {
        pools: Vec<String>,
        family: IpFamily,
    },
    /// `RequireDualStack`, but no pool the Service may use has a free address of each family.
    #[error(
        "ipFamilyPolicy RequireDualStack needs an IPv4 and an IPv6 address from one pool, but {} free addresses of both families",
        PoolNamesLacking(.pools)
    )]
    NoDualStackPool { pools: Vec<String> },
    /// A requested address lies in no valid pool.
    #[error("{requested_by}: requested address {addr} is in no AddressPool")]
    NotInAnyPool {
        addr: IpAddr,
        requested_by: RequestedBy,
    },
    /// A requested address lies in a pool, but not one this Service may use.
    #[error("{requested_by}: requested address {addr} is in AddressPool {pool:?}, {why}")]
    NotInUsablePool {
        addr: IpAddr,
        requested_by: RequestedBy,
        pool: String,
        why: String,
    },
    /// A requested (or restored) address is held by a Service it cannot share with.
    #[error("address {addr} is held by Service {holder}, and cannot be shared: {refusal}")]
    AddressInUse {
        addr: IpAddr,
        holder: ServiceKey,
        refusal: ShareRefusal,
    },
}

impl IpamError {
    /// A short, stable name for metrics (`reason` label of allocation failures).
    pub fn label(&self) -> &'static str {
        match self {
            IpamError::MalformedAnnotation { .. } => "malformed_annotation",
            IpamError::MalformedField { .. } => "malformed_field",
            IpamError::TwoAddressesOfOneFamily { .. } => "two_addresses_of_one_family",
            IpamError::ConflictingRequests { .. } => "conflicting_requests",
            IpamError::FamilyNotAllowed { .. } => "family_not_allowed",
            IpamError::DualStackIncomplete { .. } => "dual_stack_incomplete",
            IpamError::UnknownPool { .. } => "unknown_pool",
            IpamError::InvalidPool { .. } => "invalid_pool",
            IpamError::PoolNotAllowed { .. } => "pool_not_allowed",
            IpamError::NoPoolForService { .. } => "no_pool_for_service",
            IpamError::PoolExhausted { .. } => "pool_exhausted",
            IpamError::NoDualStackPool { .. } => "no_dual_stack_pool",
            IpamError::NotInAnyPool { .. } => "address_not_in_pool",
            IpamError::NotInUsablePool { .. } => "address_in_unusable_pool",
            IpamError::AddressInUse { .. } => "address_in_use",
        }
    }
}

/// Why two Services may not share one address (MetalLB's sharing rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareRefusal {
    /// The holder has no sharing key.
    HolderDoesNotShare,
    /// The requesting Service has no sharing key.
    RequesterDoesNotShare,
    /// Both have keys, but different ones.
    DifferentKeys { requester: String, holder: String },
    /// Both listen on the same port and protocol.
    PortClash { port: i32, protocol: String },
    /// One has `externalTrafficPolicy: Local`, the other `Cluster`: the address would have to
    /// be announced from different node sets.
    TrafficPolicyDiffers {
        requester: TrafficPolicy,
        holder: TrafficPolicy,
    },
    /// Both are `Local` but select different pods, so they would be announced from different nodes.
    SelectorDiffers,
}

impl fmt::Display for ShareRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShareRefusal::HolderDoesNotShare => {
                write!(f, "the holder has no annotation {ALLOW_SHARED_IP}")
            }
            ShareRefusal::RequesterDoesNotShare => {
                write!(f, "this Service has no annotation {ALLOW_SHARED_IP}")
            }
            ShareRefusal::DifferentKeys { requester, holder } => write!(
                f,
                "annotation {ALLOW_SHARED_IP} is {requester:?} here but {holder:?} on the holder"
            ),
            ShareRefusal::PortClash { port, protocol } => {
                write!(f, "both Services use port {port}/{protocol}")
            }
            ShareRefusal::TrafficPolicyDiffers { requester, holder } => write!(
                f,
                "externalTrafficPolicy is {requester} here but {holder} on the holder; sharing needs both Cluster, \
                 or both Local with the same selector"
            ),
            ShareRefusal::SelectorDiffers => write!(
                f,
                "both have externalTrafficPolicy Local but different spec.selector, so they would be announced \
                 from different nodes"
            ),
        }
    }
}

fn family_name(addr: &IpAddr) -> &'static str {
    IpFamily::of(*addr).as_k8s_str()
}

/// `IPv4, IPv6` for messages.
struct FamilyList<'a>(&'a [IpFamily]);

impl fmt::Display for FamilyList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("[]");
        }
        let names: Vec<&str> = self.0.iter().map(|family| family.as_k8s_str()).collect();
        f.write_str(&names.join(", "))
    }
}

/// `AddressPool "a" has` or `AddressPools "a", "b" have` for messages.
struct PoolNames<'a>(&'a [String]);

impl fmt::Display for PoolNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted: Vec<String> = self.0.iter().map(|name| format!("{name:?}")).collect();
        match quoted.len() {
            1 => write!(f, "AddressPool {} has", quoted[0]),
            _ => write!(f, "AddressPools {} have", quoted.join(", ")),
        }
    }
}

/// `AddressPool "a" lacks` or `none of AddressPools "a", "b" has` for messages.
struct PoolNamesLacking<'a>(&'a [String]);

impl fmt::Display for PoolNamesLacking<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted: Vec<String> = self.0.iter().map(|name| format!("{name:?}")).collect();
        match quoted.len() {
            1 => write!(f, "AddressPool {} lacks", quoted[0]),
            _ => write!(f, "none of AddressPools {} has", quoted.join(", ")),
        }
    }
}
