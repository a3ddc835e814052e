//! The node's Service dataplane (being built).
