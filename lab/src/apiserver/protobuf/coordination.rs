//! coordination.k8s.io/v1 Leases (leader election from Go clients speaks protobuf).

use k8s_pb::api::coordination::v1::{Lease, LeaseSpec};
use serde_json::Value;

use super::json::{Fields, micro_time};

pub fn lease(lease: &Lease) -> Value {
    Fields::object("coordination.k8s.io/v1", "Lease", lease.metadata.as_ref())
        .opt_value("spec", lease.spec.as_ref().map(lease_spec))
        .build()
}

fn lease_spec(spec: &LeaseSpec) -> Value {
    Fields::new()
        .opt_string("holderIdentity", &spec.holder_identity)
        .opt_int("leaseDurationSeconds", spec.lease_duration_seconds)
        .opt_value(
            "acquireTime",
            spec.acquire_time.as_ref().and_then(micro_time),
        )
        .opt_value("renewTime", spec.renew_time.as_ref().and_then(micro_time))
        .opt_int("leaseTransitions", spec.lease_transitions)
        .opt_string("strategy", &spec.strategy)
        .opt_string("preferredHolder", &spec.preferred_holder)
        .build()
}
