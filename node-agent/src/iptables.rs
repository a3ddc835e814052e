//! The iptables dataplane: kube-proxy's rule layout under the `PORTICO-` prefix.
//!
//! ```text
//!   DesiredState ─▶ RenderCache::render (pure) ─▶ RuleSet ─▶ RuleSet::{full,partial}_restore
//!                                                                 │ iptables-restore input
//!   Syncer: remembers the last RuleSet written ◀──────────────────┴─▶ Iptables::restore (I/O)
//! ```
//!
//! Only Portico's own chains are ever declared, and every restore runs with `--noflush`, so the
//! rules of other programs in the same tables survive every sync and the cleanup.

pub mod apply;
pub mod names;
pub mod render;
pub mod ruleset;
pub mod service;
pub mod syncer;

pub use apply::{Backend, Iptables, IptablesError, detect_backend};
pub use render::{BUILTIN_JUMPS, RenderCache, render};
pub use ruleset::{RuleSet, Table};
pub use service::{RenderContext, render_service_port};
pub use syncer::{SyncKind, SyncOutcome, Syncer};
