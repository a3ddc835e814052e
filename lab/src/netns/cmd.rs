//! Running `ip`, `sysctl` and `kill`: the one place the netns code starts short-lived commands.

use std::process::{Command, Stdio};

use super::NetnsError;

/// Runs `argv` to completion and returns its stdout; a non-zero exit is an error carrying
/// stderr.
pub fn run(argv: &[String]) -> Result<String, NetnsError> {
    let (program, args) = argv.split_first().expect("a command has a program");
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| NetnsError::Spawn {
            command: argv.join(" "),
            source,
        })?;
    if !output.status.success() {
        return Err(NetnsError::Command {
            command: argv.join(" "),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `run` from string slices.
pub fn run_args(argv: &[&str]) -> Result<String, NetnsError> {
    run(&argv.iter().map(|arg| (*arg).to_owned()).collect::<Vec<_>>())
}

/// Runs `argv` for its effect on cleanup paths: failures are logged, never raised.
pub fn best_effort(argv: &[&str]) {
    if let Err(error) = run_args(argv) {
        tracing::warn!(%error, label = error.label(), "lab cleanup step failed");
    }
}

/// Namespace names from `ip netns list` (lines like `name (id: 3)`).
pub fn list_namespaces() -> Result<Vec<String>, NetnsError> {
    Ok(parse_netns_list(&run_args(&["ip", "netns", "list"])?))
}

/// Link names of the host namespace from `ip -o link show` (`7: name@peer: <...> ...`).
pub fn list_host_links() -> Result<Vec<String>, NetnsError> {
    Ok(parse_link_list(&run_args(&["ip", "-o", "link", "show"])?))
}

/// PIDs of the processes inside namespace `ns`.
pub fn namespace_pids(ns: &str) -> Result<Vec<u32>, NetnsError> {
    let out = run_args(&["ip", "netns", "pids", ns])?;
    Ok(out
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect())
}

/// SIGKILLs every process in `ns` (they are the lab's own: nothing else enters its
/// namespaces), then deletes the namespace. Best effort.
pub fn delete_namespace(ns: &str) {
    match namespace_pids(ns) {
        Ok(pids) if !pids.is_empty() => {
            let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
            let mut argv = vec!["kill", "-KILL"];
            argv.extend(pids.iter().map(String::as_str));
            best_effort(&argv);
        }
        Ok(_) => {}
        Err(error) => tracing::debug!(%error, ns, "could not list the namespace's processes"),
    }
    best_effort(&["ip", "netns", "delete", ns]);
}

fn parse_netns_list(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn parse_link_list(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_listings() {
        assert_eq!(
            parse_netns_list("ptl-1-0-n0 (id: 3)\nptl-1-0-br\n"),
            ["ptl-1-0-n0", "ptl-1-0-br"]
        );
        let links = "1: lo: <LOOPBACK,UP> mtu 65536\n9: ptl12-0@if2: <BROADCAST> mtu 1500\n";
        assert_eq!(parse_link_list(links), ["lo", "ptl12-0"]);
    }
}
