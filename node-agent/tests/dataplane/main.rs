//! Root-only tests with real packets (placeholder while being written).
