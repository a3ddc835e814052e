//! The lab cloud: load balancers that obey the cloud APIs Portico's controller talks to (moto
//! for AWS, the fake Compute server for GCP) and check the nodes' health for real from the
//! lab's cloud namespace.

pub mod checker;
pub mod gcp;
