//! portico-controller end to end: the real binary against the lab API server.

mod allocation;
mod aws;
mod bad_input;
mod conditions;
mod gcp;
mod gcp_shared_check;
mod leader;
mod logs;
mod outage;
mod pools;
mod restart;
