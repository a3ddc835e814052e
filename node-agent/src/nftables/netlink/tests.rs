use super::expr::Expr;
use super::rule::parse;
use super::*;

#[test]
fn element_keys_pad_each_field_to_four_bytes_in_network_order() {
    assert_eq!(
        element_key("1.2.3.4 . tcp . 99").unwrap(),
        vec![1, 2, 3, 4, 6, 0, 0, 0, 0, 99, 0, 0]
    );
    assert_eq!(
        element_key("udp . 30001").unwrap(),
        vec![17, 0, 0, 0, 0x75, 0x31, 0, 0]
    );
    assert!(element_key("1.2.3.4 . gre").is_err());
}

#[test]
fn prefixes_load_only_their_bytes_when_byte_aligned_and_mask_otherwise() {
    let aligned = parse(
        "ip saddr != 10.244.0.0/16 jump mark-for-masquerade",
        IpFamily::V4,
    );
    assert_eq!(
        aligned.unwrap()[..2],
        [
            Expr::Payload {
                base: 1,
                offset: 12,
                len: 2,
                dreg: 1
            },
            Expr::Cmp {
                op: 1,
                data: vec![10, 244]
            }
        ]
    );
    let masked = parse("ip saddr 10.16.0.0/12 goto x", IpFamily::V4).unwrap();
    assert_eq!(
        masked[1],
        Expr::Bitwise {
            mask: vec![255, 240, 0, 0],
            xor: vec![0; 4]
        }
    );
}

#[test]
fn every_per_service_rule_shape_encodes_and_others_fall_back_to_text() {
    for (rule, family) in [
        (
            "numgen random mod 6 0 meta l4proto tcp dnat ip to 10.245.0.1:8080",
            IpFamily::V4,
        ),
        ("meta l4proto udp dnat ip6 to [fd00::6]:53", IpFamily::V6),
        ("ip saddr @affinity-X goto endpoint-X", IpFamily::V4),
        ("update @affinity-X { ip6 saddr }", IpFamily::V6),
        (
            "fib saddr type local jump mark-for-masquerade",
            IpFamily::V4,
        ),
        ("numgen random mod 3 0 goto endpoint-X", IpFamily::V4),
        (
            "dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 3 offset 3 map @cluster-ip-endpoints",
            IpFamily::V4,
        ),
        (
            "dnat ip6 to meta l4proto . th dport . numgen random mod 3 offset 3 map @local-port-endpoints",
            IpFamily::V6,
        ),
        ("goto service-X", IpFamily::V4),
        (
            "ip daddr . meta l4proto . th dport vmap @service-ips",
            IpFamily::V4,
        ),
        (
            "ip6 daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports",
            IpFamily::V6,
        ),
        (
            "fib daddr type local meta l4proto . th dport vmap @service-nodeports",
            IpFamily::V4,
        ),
        (
            "ct status dnat ip6 saddr . ip6 daddr @hairpin jump mark-for-masquerade",
            IpFamily::V6,
        ),
        ("meta mark & 0x4000 == 0 return", IpFamily::V4),
        ("meta mark set meta mark xor 0x4000", IpFamily::V4),
        ("masquerade fully-random", IpFamily::V4),
        ("ct state new jump firewall-check", IpFamily::V4),
        ("reject", IpFamily::V6),
        ("ip saddr 198.18.0.10 goto external-X", IpFamily::V4),
    ] {
        assert!(parse(rule, family).is_ok(), "{rule}");
    }
    for (rule, family) in [
        ("ip saddr { 10.0.0.0/8, 10.1.0.0/16 } goto x", IpFamily::V4),
        ("ip saddr 0.0.0.0/0 goto x", IpFamily::V4),
        ("ip saddr 10.0.0.1 goto x", IpFamily::V6),
        ("counter", IpFamily::V4),
    ] {
        assert!(parse(rule, family).is_err(), "{rule}");
    }
}

#[test]
fn a_batch_is_framed_by_begin_and_end_and_only_its_last_command_asks_for_an_ack() {
    let transaction = Transaction {
        family: IpFamily::V4,
        commands: vec![
            Command::FlushChain("service-X".into()),
            Command::AddRule {
                chain: "service-X".into(),
                rule: "goto mark-for-masquerade".into(),
            },
        ],
    };
    let batch = encode(&transaction).unwrap();
    let bytes = batch.bytes();
    let mut at = 0;
    let mut messages = Vec::new();
    while at < bytes.len() {
        let len = u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes([bytes[at + 4], bytes[at + 5]]);
        let flags = u16::from_ne_bytes([bytes[at + 6], bytes[at + 7]]);
        messages.push((kind, flags & NLM_F_ACK != 0));
        at += len;
    }
    assert_eq!(
        messages,
        vec![
            (NFNL_MSG_BATCH_BEGIN, false),
            ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELRULE, false),
            ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE, true),
            (NFNL_MSG_BATCH_END, false),
        ]
    );
    assert_eq!(batch.last_seq(), Some(3));
}

#[test]
fn a_transaction_with_an_unknown_shape_is_not_encoded() {
    let transaction = Transaction {
        family: IpFamily::V4,
        commands: vec![Command::AddRule {
            chain: "firewall-X".into(),
            rule: "ip saddr { 10.0.0.0/8, 10.1.0.0/16 } goto external-X".into(),
        }],
    };
    assert!(encode(&transaction).is_err());
}

#[test]
fn concatenations_use_the_registers_after_the_first_field() {
    let v6 = parse(
        "ct status dnat ip6 saddr . ip6 daddr @hairpin jump x",
        IpFamily::V6,
    )
    .unwrap();
    // A 16-byte address fills register 1; the second starts at register 2 (nft's `reg 2`).
    assert!(
        matches!(
            v6[4],
            Expr::Payload {
                dreg: 2,
                len: 16,
                ..
            }
        ),
        "{v6:?}"
    );
    let v4 = parse(
        "ip daddr . meta l4proto . th dport vmap @service-ips",
        IpFamily::V4,
    )
    .unwrap();
    assert!(matches!(v4[1], Expr::Meta { dreg: 9, .. }), "{v4:?}");
    assert!(matches!(v4[2], Expr::Payload { dreg: 10, .. }), "{v4:?}");
}

#[test]
fn a_full_table_is_one_batch_whose_element_lists_fit_an_attribute() {
    let elements: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                "10.96.{}.{} . tcp . 80 : goto service-{i}",
                i / 256,
                i % 256
            )
        })
        .collect();
    let transaction = Transaction {
        family: IpFamily::V4,
        commands: vec![
            Command::AddTable,
            Command::DeleteTable,
            Command::AddTable,
            Command::AddMap {
                name: "service-ips".into(),
                body: "type ipv4_addr . inet_proto . inet_service : verdict;".into(),
            },
            Command::AddBaseChain {
                name: "nat-prerouting".into(),
                hook: "type nat hook prerouting priority dstnat; policy accept;".into(),
            },
            Command::AddElements {
                set: "service-ips".into(),
                elements,
            },
        ],
    };
    let batch = encode(&transaction).unwrap();
    // begin + 3 table commands + map + chain + 5 element messages of 200 + end
    assert_eq!(batch.last_seq(), Some(11));
}

#[test]
fn pick_rules_use_the_registers_nft_does() {
    // As `nft --debug=netlink` prints them: v4 key in 1, 9, 10, 11 and the port in 9; v6 key
    // in 1, 2, 13, 14 and the port in 2; node port keys from register 1.
    for (rule, family, numgen_reg, proto_reg) in [
        (
            "dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 5 offset 10 map @m",
            IpFamily::V4,
            11,
            9,
        ),
        (
            "dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 5 offset 10 map @m",
            IpFamily::V6,
            14,
            2,
        ),
        (
            "dnat ip to meta l4proto . th dport . numgen random mod 5 offset 10 map @m",
            IpFamily::V4,
            10,
            9,
        ),
        (
            "dnat ip6 to meta l4proto . th dport . numgen random mod 5 offset 10 map @m",
            IpFamily::V6,
            10,
            2,
        ),
    ] {
        let exprs = parse(rule, family).unwrap();
        assert!(
            exprs.contains(&Expr::Numgen {
                modulus: 5,
                offset: 10,
                dreg: numgen_reg
            }),
            "{rule}: {exprs:?}"
        );
        assert_eq!(
            exprs.last(),
            Some(&Expr::Dnat {
                family,
                proto_reg,
                flags: None
            }),
            "{rule}"
        );
    }
}

#[test]
fn endpoint_map_keys_end_in_a_host_order_bucket() {
    assert_eq!(
        endpoint_key("10.96.0.1 . tcp . 80 . 10").unwrap(),
        [
            vec![10, 96, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0],
            10u32.to_ne_bytes().to_vec()
        ]
        .concat()
    );
    assert_eq!(
        endpoint_key("udp . 30001 . 11").unwrap(),
        [
            vec![17, 0, 0, 0, 0x75, 0x31, 0, 0],
            11u32.to_ne_bytes().to_vec()
        ]
        .concat()
    );
}
