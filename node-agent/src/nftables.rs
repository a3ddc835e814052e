//! The nftables dataplane: one table `portico` per family (`ip`, `ip6`), with maps instead of
//! chains for dispatch, so a Service costs a few map elements and a chain or two, and a change
//! is a transaction of a few lines.
//!
//! ```text
//!   DesiredState ─▶ TableCache::update (pure; re-renders changed ports) ─▶ Update
//!        Full ─▶ full_text: `add table; delete table; table { ... }`   ┐
//!        Partial ─▶ only the changed elements, chains and sets        ┘ ▶ Nft::apply (`nft -f -`, one transaction)
//!                   ─▶ netlink::encode ─▶ one nf_tables batch (no nft binary, no cache fetch)
//!   NftablesBackend: partial when the kernel state is known, else full
//! ```
//!
//! Text rather than JSON (the `nftables` crate's form): nft 1.0.6 parses both into the same
//! commands, the text is a third of the bytes to write and parse at 10,000 Services, it is what
//! an operator reads in `nft list table ip portico`, and it needs no new dependency.
//!
//! Nothing outside the `portico` tables is ever written: the hooks are the table's own base
//! chains, so other tables (iptables-nft's, firewalld's) keep their rules and their order.

pub mod apply;
pub mod backend;
pub mod fixed;
pub mod names;
pub mod netlink;
pub mod pick;
pub mod service;
pub mod table;
pub mod transaction;

pub use apply::{Nft, NftError, remove_tables};
pub use backend::NftablesBackend;
pub use service::{NftContext, PortObjects, render_port};
pub use table::{TableCache, Update};
pub use transaction::{Command, Transaction};
