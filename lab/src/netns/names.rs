//! Names of everything the lab creates: one family prefix (`ptl`), the owning process and a
//! per-process sequence number, so that leftovers of a killed run can be told apart from the
//! namespaces of runs still alive (other tests in this process, other test binaries, and the
//! dataplane tests' `ptc-dp-` family, which this never matches).
//!
//! ```text
//! namespaces  ptl-<pid>-<seq>-br, ptl-<pid>-<seq>-client, ptl-<pid>-<seq>-n0, ptl-<pid>-<seq>-n0p0
//! host link   ptl<pid>-<seq>   (the only name in the host namespace; at most 15 bytes)
//! ```
//! Links inside the lab's namespaces have short fixed names (`eth0`, `br0`, `cbr0`): each
//! namespace is its own name space for links.

use std::sync::atomic::{AtomicU32, Ordering};

/// The family every lab name starts with.
pub const FAMILY: &str = "ptl";

/// Linux's limit on interface names (IFNAMSIZ - 1).
pub const MAX_LINK_NAME: usize = 15;

static NEXT_SEQ: AtomicU32 = AtomicU32::new(0);

/// The owner of one topology's names: a process and a sequence number within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub pid: u32,
    pub seq: u32,
}

impl Prefix {
    /// A fresh prefix for this process; every call gives another sequence number, so
    /// topologies created concurrently (parallel tests) never share a name.
    pub fn for_this_process() -> Self {
        Prefix {
            pid: std::process::id(),
            seq: NEXT_SEQ.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// `ptl-<pid>-<seq>-<suffix>`: the name of one of this topology's namespaces.
    pub fn namespace(&self, suffix: &str) -> String {
        format!("{FAMILY}-{}-{}-{suffix}", self.pid, self.seq)
    }

    /// The start every namespace of this topology shares.
    pub fn namespace_start(&self) -> String {
        self.namespace("")
    }

    /// `ptl<pid>-<seq>`: the veth leg in the host namespace.
    pub fn host_link(&self) -> String {
        format!("{FAMILY}{}-{}", self.pid, self.seq)
    }
}

/// The owning PID of a lab namespace name (`ptl-<pid>-<seq>-...`), or `None` for names
/// outside the family.
pub fn namespace_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(FAMILY)?.strip_prefix('-')?;
    let mut parts = rest.splitn(3, '-');
    let pid = parts.next()?.parse().ok()?;
    parts.next()?.parse::<u32>().ok()?;
    parts.next()?;
    Some(pid)
}

/// The owning PID of a host link name (`ptl<pid>-<seq>`), or `None` for other links.
pub fn host_link_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(FAMILY)?;
    let (pid, seq) = rest.split_once('-')?;
    seq.parse::<u32>().ok()?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_to_their_owner() {
        let prefix = Prefix {
            pid: 4_194_304,
            seq: 9999,
        };
        assert_eq!(prefix.namespace("n0p1"), "ptl-4194304-9999-n0p1");
        assert_eq!(
            namespace_owner(&prefix.namespace("client")),
            Some(4_194_304)
        );
        assert_eq!(host_link_owner(&prefix.host_link()), Some(4_194_304));
        assert!(prefix.host_link().len() <= MAX_LINK_NAME);
    }

    #[test]
    fn other_families_are_not_claimed() {
        for name in [
            "ptc-dp-1-n0",
            "ptc-123-n0",
            "ptl-x-1-n0",
            "ptl-12-n0",
            "eth0",
            "ptl12",
        ] {
            assert_eq!(namespace_owner(name), None, "{name}");
            assert_eq!(host_link_owner(name), None, "{name}");
        }
        assert_eq!(host_link_owner("ptl-12-3-br"), None);
    }

    #[test]
    fn prefixes_of_one_process_differ() {
        let (a, b) = (Prefix::for_this_process(), Prefix::for_this_process());
        assert_ne!(a.namespace_start(), b.namespace_start());
        assert_ne!(a.host_link(), b.host_link());
    }
}
