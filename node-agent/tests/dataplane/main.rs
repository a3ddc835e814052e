//! Real packets through Portico's iptables rules, in network namespaces this test creates.
//!
//! ```text
//!   client ns (198.18.0.2) ── veth ── node ns (198.18.0.10, ip_forward, Portico's rules)
//!                                       ├── veth ── pod-a ns (10.244.0.7, echo server)
//!                                       └── veth ── pod-b ns (10.244.0.8, client pod)
//! ```
//!
//! The echo server and the TCP client run as this same test binary re-executed inside a
//! namespace (`ip netns exec <ns> <this binary> --exact helper_process`), steered by
//! environment variables, so no extra tools or binaries are needed.
//!
//! Needs root. Without root the tests skip with a message, or fail when `CI` is set.

mod comments;
mod conntrack;
mod hairpin;
mod helper;
mod nftables;
mod packets;
mod resume;
mod services;
mod survival;
mod topology;

/// Not a test of its own: the entry point of the echo server and the client when this binary
/// is re-executed inside a namespace. Does nothing when run normally.
#[test]
fn helper_process() {
    helper::run_from_env();
}
