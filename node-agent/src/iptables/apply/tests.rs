use super::*;

#[test]
fn backend_comes_from_the_version_line() {
    assert_eq!(
        parse_backend("iptables v1.8.9 (nf_tables)\n"),
        Some(Backend::Nft)
    );
    assert_eq!(
        parse_backend("iptables v1.8.9 (legacy)\n"),
        Some(Backend::Legacy)
    );
    assert_eq!(parse_backend("iptables v1.4.21\n"), None);
}

#[test]
fn binary_names_follow_family_and_backend() {
    assert_eq!(
        Iptables::new(IpFamily::V4).binary("-restore"),
        "iptables-restore"
    );
    assert_eq!(
        Iptables::new(IpFamily::V6)
            .with_backend(Backend::Nft)
            .binary("-save"),
        "ip6tables-nft-save"
    );
    assert_eq!(
        Iptables::new(IpFamily::V4)
            .with_backend(Backend::Legacy)
            .binary(""),
        "iptables-legacy"
    );
}

#[test]
fn inspection_adds_missing_jumps_and_replaces_stale_ones() {
    let jump = |index: usize| {
        let jump = &BUILTIN_JUMPS[index];
        format!("-A {} {}", jump.chain, jump.spec())
    };
    // Every wanted nat jump but PREROUTING's, which an older version left without comment.
    let dump = format!(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:PORTICO-SERVICES - [0:0]\n\
         -A PREROUTING -j PORTICO-SERVICES\n-A PREROUTING -j CNI-HOSTPORT\n{}\n{}\nCOMMIT\n",
        jump(1),
        jump(2)
    );
    let (chains, extra) = inspect_dump(&dump);
    assert_eq!(chains.nat, ["PORTICO-SERVICES".to_string()].into());
    assert_eq!(
        extra.nat,
        [
            "-D PREROUTING -j PORTICO-SERVICES".to_string(),
            format!("-I PREROUTING {}", BUILTIN_JUMPS[0].spec()),
        ]
    );
    assert_eq!(
        BUILTIN_JUMPS[0].spec(),
        r#"-m comment --comment "portico service portals" -j PORTICO-SERVICES"#
    );
    // No filter section in the dump: every filter jump is missing.
    assert_eq!(
        extra.filter.len(),
        BUILTIN_JUMPS
            .iter()
            .filter(|jump| jump.table == Table::Filter)
            .count()
    );
}

#[test]
fn cleanup_removes_only_portico_chains_and_jumps() {
    let dump = "\
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:PORTICO-SERVICES - [0:0]
:PORTICO-SVC-ABC - [0:0]
:CNI-HOSTPORT - [0:0]
-A PREROUTING -j PORTICO-SERVICES
-A PREROUTING -j CNI-HOSTPORT
-A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE
-A PORTICO-SERVICES -d 10.96.0.1/32 -j PORTICO-SVC-ABC
COMMIT
";
    assert_eq!(
        cleanup_restore(Table::Nat, dump),
        "*nat\n:PORTICO-SERVICES - [0:0]\n:PORTICO-SVC-ABC - [0:0]\n\
         -D PREROUTING -j PORTICO-SERVICES\n-X PORTICO-SERVICES\n-X PORTICO-SVC-ABC\nCOMMIT\n"
    );
    assert_eq!(
        cleanup_restore(Table::Filter, "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"),
        ""
    );
}

#[test]
fn a_full_restore_lists_each_table_first_so_iptables_nft_fetches_the_whole_table() {
    let text = "*nat\n:PORTICO-SERVICES - [0:0]\n-A PORTICO-SERVICES -j RETURN\nCOMMIT\n\
                *filter\n:PORTICO-FIREWALL - [0:0]\nCOMMIT\n";
    assert_eq!(
        with_whole_table_cache(text),
        "*nat\n-S\n:PORTICO-SERVICES - [0:0]\n-A PORTICO-SERVICES -j RETURN\nCOMMIT\n\
         *filter\n-S\n:PORTICO-FIREWALL - [0:0]\nCOMMIT\n"
    );
    // A header on the last line without its newline still gets its own `-S` line.
    assert_eq!(with_whole_table_cache("*nat"), "*nat\n-S\n");
}
