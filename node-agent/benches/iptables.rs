//! Placeholder until the iptables bench lands.
fn main() {}
