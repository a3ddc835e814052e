//! portico-agent end to end: the real binary in network namespaces (one per node), against the
//! lab API server, answering health checks from the cluster's EndpointSlices and cleaning up
//! after itself. Root only; fails rather than skips under CI.

mod announce;
mod announce_gate;
mod drift;
mod hairpin;
mod health;
mod l2_failover;
mod lab_cloud;
mod lab_cloud_gcp;
mod nodes;
mod source_ip;
mod telling;
mod two_nodes;
