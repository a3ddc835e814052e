//! Leftovers of earlier runs: a killed test (SIGKILL, a panic with `abort`, a CI timeout)
//! never reaches its teardown, and its namespaces, processes and host link stay behind.
//! Before building, the lab removes everything of its family whose owning process is gone,
//! and leaves alone what live processes (parallel tests, other binaries) own.

use std::path::Path;

use super::{NetnsError, cmd, names};

/// Where `ip netns exec` finds a namespace's own /etc files.
const NETNS_ETC: &str = "/etc/netns";

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub namespaces: Vec<String>,
    pub host_links: Vec<String>,
}

/// Whether a process with this PID exists (in the PID namespace the lab runs in).
pub fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes the namespaces (with the processes inside) and host links of lab runs whose owner
/// is no longer alive.
pub fn sweep_dead_runs() -> Result<Swept, NetnsError> {
    sweep(|pid| !process_alive(pid))
}

/// Removes lab namespaces and host links whose owning PID `is_dead` says is gone.
pub fn sweep(is_dead: impl Fn(u32) -> bool) -> Result<Swept, NetnsError> {
    let mut swept = Swept::default();
    for ns in cmd::list_namespaces()? {
        if names::namespace_owner(&ns).is_some_and(&is_dead) {
            cmd::delete_namespace(&ns);
            swept.namespaces.push(ns);
        }
    }
    // The lab cloud's hosts files for the client (`/etc/netns/<client ns>/hosts`).
    if let Ok(entries) = std::fs::read_dir(NETNS_ETC) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if names::namespace_owner(&name).is_some_and(&is_dead) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    // Deleting the bridge namespace takes the host leg with it, but only once the kernel has
    // finished with the namespace; a leg whose bridge namespace is gone already is removed
    // here.
    for link in cmd::list_host_links()? {
        if names::host_link_owner(&link).is_some_and(&is_dead) {
            cmd::best_effort(&["ip", "link", "delete", &link]);
            swept.host_links.push(link);
        }
    }
    if !swept.namespaces.is_empty() || !swept.host_links.is_empty() {
        tracing::info!(?swept, "removed leftovers of earlier lab runs");
    }
    Ok(swept)
}
