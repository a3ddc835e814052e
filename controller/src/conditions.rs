//! The `portico.dev/LoadBalancerReady` condition in `status.conditions`, for every provider: the
//! answer to "why is my Service pending" with a reason a person can act on. Worked out here from
//! the reconcile's outcome (pure), compared with the Service's, written with the ingress in one
//! server-side apply (reconcile.rs `write_status`) and only on a difference.
//!
//! | reason | status | when |
//! | --- | --- | --- |
//! | `Ready` | True | the load balancer or address is in place |
//! | `WaitingForSubnets` | False | no subnet tagged for the cluster and none in `portico.dev/aws-subnets` |
//! | `Throttled` | False | the cloud said "slow down" past the retries; retried with backoff |
//! | `NoEligibleNodes` | False | every node is excluded, being deleted or tainted for deletion |
//! | `PoolExhausted` | False | no free address in the pools this Service may use |
//! | `NoAddressPool` | False | no AddressPool this Service may use (or the one named is unknown) |
//! | `InvalidConfiguration` | False | an annotation or field the user must fix (named in the message) |
//! | `CloudError` | False | another error from the cloud's API (its error code in the message) |

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use portico_api::keys::LOAD_BALANCER_READY_CONDITION;
use portico_api::keys::service as ann;

use crate::ipam::IpamError;
use crate::providers::{ProviderError, is_throttling};

pub const READY: &str = "Ready";
pub const WAITING_FOR_SUBNETS: &str = "WaitingForSubnets";
pub const THROTTLED: &str = "Throttled";
pub const NO_ELIGIBLE_NODES: &str = "NoEligibleNodes";
pub const POOL_EXHAUSTED: &str = "PoolExhausted";
pub const NO_ADDRESS_POOL: &str = "NoAddressPool";
pub const INVALID_CONFIGURATION: &str = "InvalidConfiguration";
pub const CLOUD_ERROR: &str = "CloudError";

/// The condition's content Portico decides (the times and generation are filled in on write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Readiness {
    pub fn ready(message: impl Into<String>) -> Self {
        Readiness {
            ready: true,
            reason: READY,
            message: message.into(),
        }
    }

    fn not_ready(reason: &'static str, message: impl Into<String>) -> Self {
        Readiness {
            ready: false,
            reason,
            message: message.into(),
        }
    }

    pub fn no_eligible_nodes() -> Self {
        Self::not_ready(
            NO_ELIGIBLE_NODES,
            "no node can take traffic: every node is labelled \
             node.kubernetes.io/exclude-from-external-load-balancers, being deleted or tainted \
             ToBeDeletedByClusterAutoscaler",
        )
    }

    pub fn from_provider_error(error: &ProviderError) -> Self {
        match error {
            ProviderError::Invalid { field, .. } if field == ann::AWS_SUBNETS => {
                Self::not_ready(WAITING_FOR_SUBNETS, error.to_string())
            }
            ProviderError::Invalid { .. } => {
                Self::not_ready(INVALID_CONFIGURATION, error.to_string())
            }
            ProviderError::Cloud { code, .. } if is_throttling(code) => {
                Self::not_ready(THROTTLED, format!("{error}; retrying with backoff"))
            }
            ProviderError::Cloud { .. } => Self::not_ready(CLOUD_ERROR, error.to_string()),
            ProviderError::Allocation(e) => Self::from_ipam_error(e),
        }
    }

    pub fn from_ipam_error(error: &IpamError) -> Self {
        let reason = match error {
            IpamError::PoolExhausted { .. } | IpamError::NoDualStackPool { .. } => POOL_EXHAUSTED,
            IpamError::NoPoolForService { .. }
            | IpamError::UnknownPool { .. }
            | IpamError::PoolNotAllowed { .. }
            | IpamError::InvalidPool { .. } => NO_ADDRESS_POOL,
            _ => INVALID_CONFIGURATION,
        };
        Self::not_ready(reason, error.to_string())
    }
}

/// Portico's condition on the Service now, if any.
pub fn current(service: &Service) -> Option<&Condition> {
    service
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == LOAD_BALANCER_READY_CONDITION)
}

fn status_word(ready: bool) -> &'static str {
    if ready { "True" } else { "False" }
}

/// Whether the Service's condition already says this (no write needed).
pub fn is_current(service: &Service, readiness: &Readiness) -> bool {
    current(service).is_some_and(|c| {
        c.status == status_word(readiness.ready)
            && c.reason == readiness.reason
            && c.message == readiness.message
    })
}

/// The condition to write: the transition time moves only when the status does.
pub fn condition(service: &Service, readiness: &Readiness, now: Time) -> Condition {
    let status = status_word(readiness.ready);
    let last_transition_time = current(service)
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(now);
    Condition {
        type_: LOAD_BALANCER_READY_CONDITION.into(),
        status: status.into(),
        reason: readiness.reason.into(),
        message: readiness.message.clone(),
        last_transition_time,
        observed_generation: service.metadata.generation,
    }
}

#[cfg(test)]
#[path = "conditions_tests.rs"]
mod tests;
