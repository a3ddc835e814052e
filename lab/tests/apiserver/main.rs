//! API-level tests of the lab API server: real HTTPS, real kube-rs clients and kubectl, real
//! watches. One test binary; each module covers one area.

mod binary;
mod common;
mod crds;
mod crud;
mod decoding;
mod events;
mod kubectl;
mod leader;
mod patch;
mod protobuf;
mod python;
mod reads;
mod runtime;
mod services;
mod watch;
