//! portico-lab: the embedded Kubernetes API server and the network-namespace cluster that run
//! Portico's real binaries on one machine, for tests and for the demo.
#![forbid(unsafe_code)]

pub mod apiserver;
pub mod cli;

pub use apiserver::{ApiServerConfig, ApiServerError, LabApiServer};
