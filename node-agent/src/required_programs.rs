//! The programs the agent runs, checked once at start: a node without iptables or conntrack
//! gets one line naming what is missing and the Debian package that provides it, instead of
//! an error on every sync.

use std::ffi::OsStr;
use std::path::Path;

/// A program the agent runs, and the Debian package (the agent image's base) that provides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Program {
    pub name: &'static str,
    pub package: &'static str,
}

const fn program(name: &'static str, package: &'static str) -> Program {
    Program { name, package }
}

/// What the iptables dataplane and `--cleanup` run: restore and save for both families, and
/// `iptables` itself to list chains.
pub const IPTABLES: &[Program] = &[
    program("iptables", "iptables"),
    program("iptables-save", "iptables"),
    program("iptables-restore", "iptables"),
    program("ip6tables", "iptables"),
    program("ip6tables-save", "iptables"),
    program("ip6tables-restore", "iptables"),
];

/// What the nftables dataplane runs.
pub const NFT: &[Program] = &[program("nft", "nftables")];

/// What drops stale UDP flows after an endpoint goes (kube-proxy needs it too).
pub const CONNTRACK: &[Program] = &[program("conntrack", "conntrack")];

/// The programs of `wanted` that `search_path` (a `PATH` value) does not hold as executables.
pub fn missing(wanted: &[&[Program]], search_path: Option<&OsStr>, cwd: &Path) -> Vec<Program> {
    wanted
        .iter()
        .flat_map(|group| group.iter())
        .filter(|program| {
            search_path.is_none_or(|path| which::which_in(program.name, Some(path), cwd).is_err())
        })
        .copied()
        .collect()
}

/// One line for the user: the missing programs grouped by the package to install, e.g.
/// `iptables-save, iptables-restore not found on PATH (install the Debian package iptables);
/// conntrack not found on PATH (install the Debian package conntrack)`.
pub fn describe_missing(missing: &[Program]) -> Option<String> {
    let mut packages: Vec<&str> = Vec::new();
    for program in missing {
        if !packages.contains(&program.package) {
            packages.push(program.package);
        }
    }
    let parts: Vec<String> = packages
        .iter()
        .map(|package| {
            let names: Vec<&str> = missing
                .iter()
                .filter(|p| p.package == *package)
                .map(|p| p.name)
                .collect();
            format!(
                "{} not found on PATH (install the Debian package {package})",
                names.join(", ")
            )
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The line to print when a program of `wanted` is not on this process's `PATH`.
pub fn check(wanted: &[&[Program]]) -> Option<String> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    describe_missing(&missing(wanted, std::env::var_os("PATH").as_deref(), &cwd))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::unix::fs::PermissionsExt;

    fn executable(dir: &Path, name: &str) {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn names_each_missing_program_with_its_package() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "iptables",
            "ip6tables",
            "ip6tables-save",
            "ip6tables-restore",
        ] {
            executable(dir.path(), name);
        }
        // Present but not executable: not usable either.
        std::fs::write(dir.path().join("iptables-save"), "").unwrap();
        let found = missing(
            &[IPTABLES, CONNTRACK],
            Some(dir.path().as_os_str()),
            dir.path(),
        );
        let names: Vec<&str> = found.iter().map(|p| p.name).collect();
        assert_eq!(names, ["iptables-save", "iptables-restore", "conntrack"]);
        assert_eq!(
            describe_missing(&found).unwrap(),
            "iptables-save, iptables-restore not found on PATH (install the Debian package \
             iptables); conntrack not found on PATH (install the Debian package conntrack)"
        );
    }

    #[test]
    fn nothing_to_say_when_every_program_is_there() {
        let dir = tempfile::tempdir().unwrap();
        for program in IPTABLES.iter().chain(CONNTRACK) {
            executable(dir.path(), program.name);
        }
        assert_eq!(
            missing(
                &[IPTABLES, CONNTRACK],
                Some(dir.path().as_os_str()),
                dir.path()
            ),
            []
        );
        assert_eq!(describe_missing(&[]), None);
    }

    #[test]
    fn without_a_path_everything_is_missing() {
        assert_eq!(
            missing(&[IPTABLES], None, Path::new("/")).len(),
            IPTABLES.len()
        );
    }
}
