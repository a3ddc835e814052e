//! The AWS lab cloud end to end, on the lab cloud harness (`portico_tests::cloud_lab::CloudLab`
//! with `Provider::Aws`): moto as the cloud API, HAProxy in the cloud namespace as the NLBs,
//! probing every node's `/healthz` as the target group says. The tests write EndpointSlices by
//! hand (the lab has no kubelet) and reach the load balancer from the client by the name in the
//! Service's status. The default-interval figures are the `lab_cloud` bench's.

pub(crate) mod policies;
mod rolling;
