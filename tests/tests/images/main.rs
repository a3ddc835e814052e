//! The container images: `scripts/images` builds both from Debian packages and the binaries
//! `cargo test` built; the tests read the archives back as a runtime would and run what is
//! inside (chrooted, in network namespaces they create). The Dockerfile and the release
//! workflow, which cannot run here, are linted and checked to declare the same images.
//!
//! Needs root (chroot, network namespaces), umoci, jq, skopeo, podman and containerd (Debian
//! packages that scripts/test installs), and the Debian package lists; under CI a missing piece
//! fails.

mod agent;
mod build;
mod config;
mod controller;
mod lint;
mod load;
mod sandbox;
