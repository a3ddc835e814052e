//! Placeholder until the dataplane tests land.
