//! The part of Portico's table that does not depend on Services: the dispatch maps, the hairpin
//! and NodePort address sets, and the chains that hook into netfilter (dispatch, masquerade,
//! REJECT, the filter checks). One description feeds both the `nft -f` text and the netlink
//! full load.

use std::fmt::Write as _;

use super::names;
use super::pick::{Pick, pick_rules};
use super::service::{NftContext, addr_type, family_word};
use super::transaction::Command;

/// A map or set of the fixed part: its name, its declaration (`type ...`), and its elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedSet {
    pub is_map: bool,
    pub name: String,
    pub body: String,
    pub elements: Vec<String>,
}

/// The fixed part of one family's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedPart {
    pub sets: Vec<FixedSet>,
    /// (name, hook declaration or empty, rules)
    pub chains: Vec<(String, String, Vec<String>)>,
}

pub fn map_type(ctx: &NftContext, map: &str) -> String {
    let ip = family_word(ctx.family);
    if names::ENDPOINT_MAPS.contains(&map) {
        // `typeof`: nft has no fixed-size type name for numgen's integer. The data is `th
        // dport`, not `tcp dport`, which would add a TCP match to the pick rules.
        let key = if map == names::CLUSTER_IP_ENDPOINTS || map == names::LOCAL_IP_ENDPOINTS {
            format!("{ip} daddr . meta l4proto . th dport")
        } else {
            "meta l4proto . th dport".into()
        };
        format!("typeof {key} . numgen random mod 1 : {ip} daddr . th dport")
    } else if names::PORT_MAPS.contains(&map) {
        "type inet_proto . inet_service : verdict".into()
    } else {
        format!(
            "type {} . inet_proto . inet_service : verdict",
            addr_type(ctx.family)
        )
    }
}

pub fn hairpin_type(ctx: &NftContext) -> String {
    let addr = addr_type(ctx.family);
    format!("type {addr} . {addr}")
}

/// The maps, sets and chains that do not depend on Services.
pub fn fixed_objects(ctx: &NftContext) -> FixedPart {
    let ip = family_word(ctx.family);
    let mut sets: Vec<FixedSet> = names::ADDRESS_MAPS
        .iter()
        .chain(&names::PORT_MAPS)
        .chain(&names::ENDPOINT_MAPS)
        .map(|map| FixedSet {
            is_map: true,
            name: (*map).into(),
            body: format!("{};", map_type(ctx, map)),
            elements: vec![],
        })
        .collect();
    sets.push(FixedSet {
        is_map: false,
        name: names::HAIRPIN.into(),
        body: format!("{};", hairpin_type(ctx)),
        elements: vec![],
    });
    // NodePorts are served on every local address, or only on --nodeport-addresses.
    let local_destination = match &ctx.nodeport_ips {
        None => "fib daddr type local".to_string(),
        Some(ips) => {
            sets.push(FixedSet {
                is_map: false,
                name: names::NODEPORT_IPS.into(),
                body: format!("type {};", addr_type(ctx.family)),
                elements: ips.iter().map(ToString::to_string).collect(),
            });
            format!("{ip} daddr @{}", names::NODEPORT_IPS)
        }
    };
    let dispatch = |map: &str| format!("{ip} daddr . meta l4proto . th dport vmap @{map}");
    let node_port = |map: &str| format!("{local_destination} meta l4proto . th dport vmap @{map}");
    let chains: Vec<(&str, &str, Vec<String>)> = vec![
        (names::REJECT, "", vec!["reject".into()]),
        (
            names::PICK_CLUSTER,
            "",
            pick_rules(Pick::CLUSTER, ctx.family),
        ),
        (names::PICK_LOCAL, "", pick_rules(Pick::LOCAL, ctx.family)),
        (
            names::MARK_MASQ,
            "",
            vec!["meta mark set meta mark or 0x4000".into()],
        ),
        (
            names::SERVICES,
            "",
            // Node ports last, so that Service addresses that are also local match first.
            vec![
                dispatch(names::SERVICE_IPS),
                node_port(names::SERVICE_NODEPORTS),
            ],
        ),
        (
            "nat-prerouting",
            "type nat hook prerouting priority dstnat; policy accept;",
            vec![format!("jump {}", names::SERVICES)],
        ),
        (
            "nat-output",
            "type nat hook output priority -100; policy accept;",
            vec![format!("jump {}", names::SERVICES)],
        ),
        (
            "nat-postrouting",
            "type nat hook postrouting priority srcnat; policy accept;",
            vec![
                // A pod that reached itself through a Service: masqueraded, so its reply comes
                // back through this node (kube-proxy's per-endpoint `saddr jump mark`).
                format!(
                    "ct status dnat {ip} saddr . {ip} daddr @{} jump {}",
                    names::HAIRPIN,
                    names::MARK_MASQ
                ),
                "meta mark & 0x4000 == 0 return".into(),
                // Cleared so a packet re-routed or encapsulated is not masqueraded twice.
                "meta mark set meta mark xor 0x4000".into(),
                "masquerade fully-random".into(),
            ],
        ),
        (
            "service-endpoints-check",
            "",
            vec![dispatch(names::NO_ENDPOINT_SERVICES)],
        ),
        (
            "external-endpoints-check",
            "",
            vec![
                dispatch(names::NO_ENDPOINT_EXTERNAL),
                node_port(names::NO_ENDPOINT_NODEPORTS),
            ],
        ),
        ("firewall-check", "", vec![dispatch(names::FIREWALL_IPS)]),
        (
            "filter-input",
            "type filter hook input priority -5; policy accept;",
            vec![
                "ct state new jump external-endpoints-check".into(),
                "ct state new jump firewall-check".into(),
            ],
        ),
        (
            "filter-forward",
            "type filter hook forward priority -5; policy accept;",
            vec![
                "ct state new jump service-endpoints-check".into(),
                "ct state new jump external-endpoints-check".into(),
                "ct state new jump firewall-check".into(),
            ],
        ),
        (
            "filter-output",
            "type filter hook output priority -5; policy accept;",
            vec![
                "ct state new jump service-endpoints-check".into(),
                "ct state new jump firewall-check".into(),
            ],
        ),
    ];
    FixedPart {
        sets,
        chains: chains
            .into_iter()
            .map(|(name, hook, rules)| (name.to_string(), hook.to_string(), rules))
            .collect(),
    }
}

/// The fixed part as `nft -f` text inside a `table ... { }` block.
pub fn fixed_part(ctx: &NftContext) -> String {
    let fixed = fixed_objects(ctx);
    let mut text = String::new();
    for set in &fixed.sets {
        let kind = if set.is_map { "map" } else { "set" };
        let elements = if set.elements.is_empty() {
            String::new()
        } else {
            format!(" elements = {{ {} }};", set.elements.join(", "))
        };
        let _ = writeln!(text, "{kind} {} {{ {}{elements} }}", set.name, set.body);
    }
    for (name, hook, rules) in &fixed.chains {
        let _ = writeln!(text, "chain {name} {{");
        if !hook.is_empty() {
            let _ = writeln!(text, "{hook}");
        }
        for rule in rules {
            let _ = writeln!(text, "{rule}");
        }
        text.push_str("}\n");
    }
    text
}

/// The fixed part as commands: sets, then chains, then rules, then elements.
pub fn fixed_commands(ctx: &NftContext, commands: &mut Vec<Command>) {
    let fixed = fixed_objects(ctx);
    for set in &fixed.sets {
        commands.push(if set.is_map {
            Command::AddMap {
                name: set.name.clone(),
                body: set.body.clone(),
            }
        } else {
            Command::AddSet {
                name: set.name.clone(),
                body: set.body.clone(),
            }
        });
        if !set.elements.is_empty() {
            commands.push(Command::AddElements {
                set: set.name.clone(),
                elements: set.elements.clone(),
            });
        }
    }
    for (name, hook, _) in &fixed.chains {
        commands.push(if hook.is_empty() {
            Command::AddChain(name.clone())
        } else {
            Command::AddBaseChain {
                name: name.clone(),
                hook: hook.clone(),
            }
        });
    }
    for (name, _, rules) in fixed.chains {
        for rule in rules {
            commands.push(Command::AddRule {
                chain: name.clone(),
                rule,
            });
        }
    }
}
