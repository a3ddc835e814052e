//! portico-lab: the embedded Kubernetes API server and the network-namespace cluster that run
//! Portico's real binaries on one machine, for tests and for the demo.
//!
//! The API server, from a test (or `portico-lab up`):
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use portico_lab::{ApiServerConfig, LabApiServer};
//!
//! let lab = LabApiServer::start(ApiServerConfig::default()).await?; // 127.0.0.1, free port
//! let client = lab.client().await?; // a kube::Client, read from the kubeconfig it wrote
//! println!("kubectl --kubeconfig {} get svc", lab.kubeconfig_path().display());
//! lab.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! From a shell: `portico-lab apiserver --listen 127.0.0.1:6443 --kubeconfig /tmp/lab.kubeconfig`.
#![forbid(unsafe_code)]

pub mod apiserver;
pub mod cli;
pub mod cloud;
pub mod demo;
pub mod fake_compute;
pub mod netns;

pub use apiserver::{ApiServerConfig, ApiServerError, LabApiServer};
