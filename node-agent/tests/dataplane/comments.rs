//! What iptables-save shows is what was rendered: kube-proxy's comments, quoted as
//! iptables-save quotes them, on both backends, and the jumps from the built-in chains found
//! again by the next agent (an older agent's jumps without comments replaced, not doubled).

use portico_agent::dataplane::IpFamily;
use portico_agent::iptables::{
    BUILTIN_JUMPS, Backend, Iptables, RuleSet, SyncKind, Syncer, ledger,
};

use crate::services::{mk_service, mk_slice, node_context, state, with_lb_ip, with_local_policy};
use crate::topology::{
    LB_IP, NODE_NAME, POD_A_IP, POD_B_IP, Topology, in_ns, output_in_ns, root_or_skip,
};

/// The `--comment` argument of a rule, as written (quotes included).
fn comment_of(rule: &str) -> Option<&str> {
    let start = rule.find("--comment ")? + "--comment ".len();
    let rest = &rule[start..];
    let end = if rest.starts_with('"') {
        let mut escaped = false;
        let mut end = rest.len();
        for (index, character) in rest.char_indices().skip(1) {
            match character {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = index + 1;
                    break;
                }
                _ => {}
            }
        }
        end
    } else {
        rest.find(' ').unwrap_or(rest.len())
    };
    Some(&rest[..end])
}

/// Every rule the rule set and the built-in jumps hold, as `-A CHAIN rule` lines.
fn rendered_lines(set: &RuleSet) -> Vec<String> {
    let mut lines: Vec<String> = set
        .nat
        .iter()
        .chain(&set.filter)
        .flat_map(|(chain, rules)| rules.iter().map(move |rule| format!("-A {chain} {rule}")))
        .collect();
    lines.extend(
        BUILTIN_JUMPS
            .iter()
            .map(|jump| format!("-A {} {}", jump.chain, jump.spec())),
    );
    lines
}

async fn save_shows_the_rendered_rules(backend: Backend, tag: &str) {
    let topology = Topology::new(tag);
    let node = topology.node.as_str();
    let tool = format!("iptables-{}", backend.as_str());
    let save = format!("iptables-{}-save", backend.as_str());
    // What an older agent left: a jump without comment.
    in_ns(node, &[&tool, "-t", "nat", "-N", "PORTICO-SERVICES"]);
    in_ns(
        node,
        &[
            &tool,
            "-t",
            "nat",
            "-A",
            "PREROUTING",
            "-j",
            "PORTICO-SERVICES",
        ],
    );

    let mut affinity = mk_service("sticky", "10.96.0.12", "ClusterIP", None);
    affinity.spec.as_mut().unwrap().session_affinity = Some("ClientIP".into());
    let mut ranges = with_lb_ip(
        with_local_policy(mk_service(
            "ranged",
            "10.96.0.11",
            "LoadBalancer",
            Some(30081),
        )),
        LB_IP,
    );
    ranges.spec.as_mut().unwrap().load_balancer_source_ranges = Some(vec!["203.0.113.0/24".into()]);
    let services = [
        mk_service("web", "10.96.0.10", "NodePort", Some(30080)),
        ranges,
        affinity,
        mk_service("empty", "10.96.0.13", "NodePort", Some(30082)),
    ];
    let slices = [
        mk_slice("web", &[(POD_A_IP, NODE_NAME), (POD_B_IP, "node-b")]),
        mk_slice("ranged", &[(POD_B_IP, "node-b")]),
        mk_slice("sticky", &[(POD_A_IP, NODE_NAME), (POD_B_IP, "node-b")]),
    ];
    let mut syncer = Syncer::new(
        Iptables::new(IpFamily::V4)
            .with_backend(backend)
            .in_netns(node),
        &node_context(),
    );
    let outcome = syncer
        .sync(&state(&services, &slices), &node_context())
        .await
        .expect("full sync");
    assert_eq!(outcome.kind, SyncKind::Full);

    let dump = output_in_ns(node, &[&save]);
    let saved: Vec<&str> = dump
        .lines()
        .filter(|line| line.starts_with("-A ") && line.contains("PORTICO-"))
        .filter(|line| !line.starts_with(&format!("-A {} ", ledger::CHAIN)))
        .collect();
    let rendered = rendered_lines(syncer.rule_set());
    let mut saved_comments: Vec<&str> = saved.iter().filter_map(|line| comment_of(line)).collect();
    let mut rendered_comments: Vec<&str> = rendered
        .iter()
        .filter_map(|line| comment_of(line))
        .collect();
    saved_comments.sort_unstable();
    rendered_comments.sort_unstable();
    assert_eq!(saved_comments, rendered_comments, "{dump}");
    assert!(
        rendered_comments.contains(&r#""default/web:http -> 10.244.0.8:8080""#)
            && rendered_comments.contains(&r#""default/empty:http has no endpoints""#)
            && rendered_comments.contains(&r#""default/ranged:http has no local endpoints""#),
        "{rendered_comments:#?}"
    );
    // Rule for rule, but where iptables-save prints a target or match in its own words
    // (`MARK --set-xmark`, REJECT's default `--reject-with`, 11-digit probabilities, every
    // `recent` option).
    for line in &rendered {
        let reworded = ["-j MARK", "-j REJECT", "-m statistic", "-m recent"];
        if !reworded.iter().any(|words| line.contains(words)) {
            assert!(saved.contains(&line.as_str()), "{line} not in\n{dump}");
        }
    }
    assert_eq!(
        saved.len(),
        rendered.len(),
        "an older agent's jump was kept beside the new one:\n{dump}"
    );

    // The next agent finds every jump in place and adds none.
    let mut next = Syncer::new(
        Iptables::new(IpFamily::V4)
            .with_backend(backend)
            .in_netns(node),
        &node_context(),
    );
    next.sync(&state(&services, &slices), &node_context())
        .await
        .expect("full sync of the next agent");
    let again = output_in_ns(node, &[&save]);
    let jumps = |dump: &str| {
        dump.lines()
            .filter(|line| {
                line.starts_with("-A ")
                    && !line.starts_with("-A PORTICO-")
                    && line.contains("PORTICO-")
            })
            .count()
    };
    assert_eq!(jumps(&again), BUILTIN_JUMPS.len(), "{again}");
    // And so does its periodic full resync, which lists only the built-in chains (`iptables -S`).
    let resync = next
        .sync_full(&state(&services, &slices), &node_context())
        .await
        .expect("full resync");
    assert_eq!(resync.kind, SyncKind::Full);
    let resynced = output_in_ns(node, &[&save]);
    assert_eq!(jumps(&resynced), BUILTIN_JUMPS.len(), "{resynced}");
}

#[tokio::test]
async fn iptables_nft_save_shows_the_rendered_comments() {
    if root_or_skip("iptables_nft_save_shows_the_rendered_comments") {
        save_shows_the_rendered_rules(Backend::Nft, "cnft").await;
    }
}

#[tokio::test]
async fn iptables_legacy_save_shows_the_rendered_comments() {
    if root_or_skip("iptables_legacy_save_shows_the_rendered_comments") {
        save_shows_the_rendered_rules(Backend::Legacy, "cleg").await;
    }
}
