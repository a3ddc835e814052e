//! The agent image holds every program the agent runs, each able to run from the image alone,
//! and the agent itself starts there: `--help`, and `--cleanup` against a network namespace's
//! rules (Portico's chains go, another program's rule stays).

use crate::build::images;
use crate::sandbox::{Netns, exists_in};

/// What the agent executes (its start-up check looks for exactly these on PATH), and the two
/// backends behind the `iptables` names.
const PROGRAMS: [(&str, &str); 10] = [
    ("iptables", "-V"),
    ("iptables-save", "-V"),
    ("iptables-restore", "-V"),
    ("ip6tables", "-V"),
    ("ip6tables-save", "-V"),
    ("ip6tables-restore", "-V"),
    ("conntrack", "--version"),
    ("nft", "--version"),
    ("iptables-legacy", "-V"),
    ("ip6tables-legacy-restore", "-V"),
];

#[test]
fn the_agent_image_runs_every_program_the_agent_executes() {
    let Some(images) = images() else { return };
    let agent = &images.agent;
    let netns = Netns::new();
    for (program, version_flag) in PROGRAMS {
        // By name, through the image's PATH, as the agent starts them.
        let output = netns.ok_in(agent, program, &[version_flag]);
        assert!(
            output.contains('v') && output.chars().any(|c| c.is_ascii_digit()),
            "{program} {version_flag}: {output}"
        );
    }
    // The plain names pick nf_tables, as Debian's alternatives do by default; legacy is there
    // for nodes whose other iptables users still write the legacy tables.
    assert!(
        netns
            .ok_in(agent, "iptables", &["-V"])
            .contains("nf_tables")
    );
    assert!(
        netns
            .ok_in(agent, "iptables-legacy", &["-V"])
            .contains("legacy")
    );
    // Both backends work against the kernel, not only print versions.
    netns.ok_in(
        agent,
        "iptables-legacy",
        &[
            "-t",
            "filter",
            "-A",
            "INPUT",
            "-s",
            "192.0.2.9/32",
            "-j",
            "ACCEPT",
        ],
    );
    assert!(
        netns
            .ok_in(agent, "iptables-legacy-save", &[])
            .contains("192.0.2.9")
    );
    netns.ok_in(agent, "nft", &["add", "table", "inet", "probe"]);
    assert!(
        netns
            .ok_in(agent, "nft", &["list", "tables"])
            .contains("probe")
    );
    netns.ok_in(agent, "conntrack", &["-L"]);
}

/// Each image carries its binary, what the binary runs and the libraries those need, and
/// nothing else: no shell, no package manager, no other program.
#[test]
fn the_images_carry_only_what_their_binary_runs() {
    let Some(images) = images() else { return };
    let base = ["base-files", "netbase", "gcc-12-base"];
    for (name, rootfs, programs) in [
        (
            "portico-controller",
            &images.controller.rootfs,
            &["ca-certificates"][..],
        ),
        (
            "portico-agent",
            &images.agent.rootfs,
            &["iptables", "nftables", "conntrack"][..],
        ),
    ] {
        for shell in ["/bin/sh", "/bin/bash", "/bin/dash", "/usr/bin/sh"] {
            assert!(!exists_in(rootfs, shell), "{name} has {shell}");
        }
        assert!(exists_in(rootfs, &format!("/usr/local/bin/{name}")));
        let packages: Vec<String> = std::fs::read_dir(rootfs.join("var/lib/dpkg/status.d"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        for program in programs {
            assert!(
                packages.iter().any(|p| p == program),
                "{name} lacks {program}"
            );
        }
        for package in &packages {
            assert!(
                package.starts_with("lib")
                    || base.contains(&package.as_str())
                    || programs.contains(&package.as_str()),
                "{name} carries {package}, which it does not run: {packages:?}"
            );
        }
    }
}

#[test]
fn the_agent_starts_in_its_image_and_cleans_up_only_portico_rules() {
    let Some(images) = images() else { return };
    let agent = &images.agent;
    let entrypoint = agent.entrypoint();
    let netns = Netns::new();

    let help = netns.ok_in(agent, &entrypoint[0], &["--help"]);
    assert!(
        help.contains("--cleanup") && help.contains("--node-name"),
        "{help}"
    );

    // Another program's rules and a leftover of Portico's, in both families.
    for (iptables, foreign) in [
        ("iptables", "192.0.2.7/32"),
        ("ip6tables", "2001:db8::7/128"),
    ] {
        let rules: [&[&str]; 5] = [
            &["-t", "filter", "-A", "INPUT", "-s", foreign, "-j", "ACCEPT"],
            &["-t", "nat", "-N", "PORTICO-SERVICES"],
            &[
                "-t",
                "nat",
                "-A",
                "PORTICO-SERVICES",
                "-s",
                foreign,
                "-j",
                "RETURN",
            ],
            &["-t", "nat", "-I", "PREROUTING", "-j", "PORTICO-SERVICES"],
            &["-t", "filter", "-N", "PORTICO-FIREWALL"],
        ];
        for rule in rules {
            netns.ok_in(agent, iptables, rule);
        }
        netns.ok_in(
            agent,
            iptables,
            &["-t", "filter", "-I", "INPUT", "-j", "PORTICO-FIREWALL"],
        );
    }

    let output = netns.run_in(agent, None, &entrypoint[0], &["--cleanup"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "--cleanup in the image: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Both backends, both families (the rules below are checked gone).
    assert!(
        stdout.contains("removed Portico's iptables and nftables rules"),
        "{stdout}"
    );

    for (save, foreign) in [
        ("iptables-save", "192.0.2.7/32"),
        ("ip6tables-save", "2001:db8::7/128"),
    ] {
        let rules = netns.ok_in(agent, save, &[]);
        assert!(
            !rules.contains("PORTICO-"),
            "{save} after --cleanup:\n{rules}"
        );
        assert!(
            rules.contains(&format!("-A INPUT -s {foreign} -j ACCEPT")),
            "{save}: the foreign rule survives:\n{rules}"
        );
    }
}
