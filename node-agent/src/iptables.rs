//! The iptables dataplane: kube-proxy's rule layout under the `PORTICO-` prefix.
//!
//! ```text
//!   DesiredState ─▶ RenderCache::render (pure, re-renders changed ports only)
//!                     ─▶ RuleSet + names of the chains that changed
//!                     ─▶ RuleSet::{changed,full}_restore (pure) ─▶ iptables-restore input
//!   Syncer: partial when the kernel state is known, else full ─▶ Iptables::restore (I/O)
//! ```
//!
//! Layout (`service` has the per-Service part): `PORTICO-SERVICES` dispatches by the lowest
//! byte of the destination to at most 256 `PORTICO-SVCS-XX` buckets, `PORTICO-NODEPORTS` by
//! 64-port ranges to `PORTICO-NPS-<PROTO>-<first port>` buckets, so a one-Service change
//! rewrites one small bucket instead of a 10,000-rule dispatch chain.
//!
//! Only Portico's own chains are ever declared, and every restore runs with `--noflush`, so the
//! rules of other programs in the same tables survive every sync and the cleanup.

pub mod apply;
pub mod backend;
pub mod drift;
pub mod incremental;
pub mod ledger;
pub mod names;
pub mod render;
pub mod ruleset;
pub mod service;
pub mod syncer;

pub use apply::{Backend, Iptables, IptablesError, detect_backend};
pub use backend::IptablesBackend;
pub use incremental::{Changes, RenderCache};
pub use render::{BUILTIN_JUMPS, render};
pub use ruleset::{RuleSet, Table};
pub use service::{RenderContext, render_service_port};
pub use syncer::{SyncKind, SyncOutcome, Syncer};
