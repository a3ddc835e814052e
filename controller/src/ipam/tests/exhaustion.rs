//! Running out, skipping buggy addresses, counting, and pools too large to enumerate.

use super::*;

#[test]
fn exhausted_pool_is_named_in_the_error() {
    let cases = [
        (
            vec![mk_pool("tiny", &["10.0.0.0/31"])],
            "AddressPool \"tiny\" has no free IPv4 address",
        ),
        (
            vec![
                mk_pool("a", &["10.0.0.0/32"]),
                mk_pool("b", &["10.0.1.0-10.0.1.1"]),
            ],
            "AddressPools \"a\", \"b\" have no free IPv4 address",
        ),
    ];
    for (pools, message) in cases {
        let mut allocator = allocator(&pools);
        let capacity = if pools.len() == 1 { 2 } else { 3 };
        for i in 0..capacity {
            allocator.assign(&mk_service(&format!("ns/s{i}"))).unwrap();
        }
        let err = allocator
            .assign(&mk_service("ns/one-too-many"))
            .unwrap_err();
        assert_eq!(
            (err.label(), err.to_string()),
            ("pool_exhausted", message.to_owned())
        );
    }
}

#[test]
fn exhausted_pool_spills_over_to_the_next_one() {
    let mut allocator = allocator(&[
        mk_pool("a", &["10.0.0.0/32"]),
        mk_pool("b", &["10.0.1.0/32"]),
    ]);
    let first = allocator.assign(&mk_service("ns/1")).unwrap();
    let second = allocator.assign(&mk_service("ns/2")).unwrap();
    assert_eq!(first.addresses[0].pool.as_deref(), Some("a"));
    assert_eq!(second.addresses[0].pool.as_deref(), Some("b"));
}

#[test]
fn freed_address_is_found_after_the_cursor_wraps() {
    let mut allocator = allocator(&[mk_pool("p", &["10.0.0.0/30"])]);
    for name in ["ns/0", "ns/1", "ns/2", "ns/3"] {
        allocator.assign(&mk_service(name)).unwrap();
    }
    allocator.release(&ServiceKey::new("ns", "1"));
    assert_eq!(
        outcome(allocator.assign(&mk_service("ns/again"))),
        got(&["10.0.0.1"])
    );
}

#[test]
fn avoid_buggy_ips_skips_dot_zero_and_dot_255() {
    let pools = [mk_pool_with(
        "p",
        &["10.0.0.254/31", "10.0.1.0-10.0.1.1"],
        |s| s.avoid_buggy_ips = true,
    )];
    let mut allocator = allocator(&pools);
    let given: Vec<_> = (0..3)
        .map(|i| outcome(allocator.assign(&mk_service(&format!("ns/{i}")))))
        .collect();
    assert_eq!(
        given,
        [
            got(&["10.0.0.254"]),
            got(&["10.0.1.1"]),
            Err("pool_exhausted")
        ]
    );
    let stats = allocator.pool_stats("p").unwrap();
    assert_eq!((stats.assigned_ipv4, stats.available_ipv4), (2, 0));
}

#[test]
fn avoid_buggy_ips_leaves_ipv6_alone_and_is_off_by_default() {
    let mut avoiding = allocator(&[mk_pool_with("p", &["2001:db8::ff/128"], |s| {
        s.avoid_buggy_ips = true
    })]);
    let v6 = mk_service("ns/a").families(&[portico_api::IpFamily::V6], IpFamilyPolicy::SingleStack);
    assert_eq!(outcome(avoiding.assign(&v6)), got(&["2001:db8::ff"]));
    let mut plain = allocator(&[mk_pool("p", &["10.0.0.0/24"])]);
    assert_eq!(
        outcome(plain.assign(&mk_service("ns/a"))),
        got(&["10.0.0.0"])
    );
}

#[test]
fn stats_count_per_family_and_saturate_for_huge_pools() {
    let mut allocator = allocator(&[
        mk_pool_with("p", &["10.0.0.0/24", "2001:db8::/64"], |s| {
            s.avoid_buggy_ips = true
        }),
        mk_pool("everything", &["::/0"]),
    ]);
    allocator.assign(&mk_service("ns/a").in_pool("p")).unwrap();
    let stats = allocator.pool_stats("p").unwrap();
    assert_eq!(
        stats,
        PoolStats {
            assigned_ipv4: 1,
            available_ipv4: 253,
            assigned_ipv6: 0,
            available_ipv6: i64::MAX,
        }
    );
    assert_eq!(
        allocator.pool_stats("everything").unwrap().available_ipv6,
        i64::MAX
    );
    let mut status = portico_api::AddressPoolStatus::default();
    stats.write_to(&mut status);
    assert_eq!((status.assigned_ipv4, status.available_ipv4), (1, 253));
}

#[test]
fn ipv6_slash_64_allocates_without_enumerating_the_pool() {
    let mut allocator = allocator(&[mk_pool("v6", &["2001:db8::/64"])]);
    let v6 = |name: &str| {
        mk_service(name).families(&[portico_api::IpFamily::V6], IpFamilyPolicy::SingleStack)
    };
    allocator
        .assign(&v6("ns/pinned").asking_for(&["2001:db8::1"]))
        .unwrap();
    let given: Vec<_> = ["ns/a", "ns/b"]
        .iter()
        .map(|n| outcome(allocator.assign(&v6(n))))
        .collect();
    assert_eq!(given, [got(&["2001:db8::"]), got(&["2001:db8::2"])]);
    assert_eq!(allocator.pool_stats("v6").unwrap().available_ipv6, i64::MAX);
}

#[test]
fn ten_thousand_services_from_a_slash_16_get_distinct_addresses() {
    let mut allocator = allocator(&[mk_pool("big", &["10.1.0.0/16"])]);
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..10_000 {
        let allocation = allocator
            .assign(&mk_service(&format!("ns/svc-{i}")))
            .unwrap();
        assert!(seen.insert(allocation.ips()[0]), "address handed out twice");
    }
    let stats = allocator.pool_stats("big").unwrap();
    assert_eq!(
        (stats.assigned_ipv4, stats.available_ipv4),
        (10_000, 65_536 - 10_000)
    );
}

#[test]
fn avoid_buggy_ips_counts_every_dot_zero_and_dot_255_across_a_range() {
    // 56 + 256 + 11 addresses, of which 10.0.0.255, 10.0.1.0, 10.0.1.255 and 10.0.2.0 are skipped.
    let allocator = allocator(&[mk_pool_with("p", &["10.0.0.200-10.0.2.10"], |s| {
        s.avoid_buggy_ips = true
    })]);
    assert_eq!(allocator.pool_stats("p").unwrap().available_ipv4, 323 - 4);
}

#[test]
fn churn_refills_every_freed_address_before_reporting_exhaustion() {
    let mut allocator = allocator(&[mk_pool("p", &["10.0.0.0/24", "10.0.2.0/25"])]);
    let key = |i: usize| format!("ns/s{i}");
    for i in 0..384 {
        allocator.assign(&mk_service(&key(i))).unwrap();
    }
    for i in (0..384).step_by(3) {
        allocator.release(&ServiceKey::new("ns", format!("s{i}")));
    }
    let mut refilled = std::collections::BTreeSet::new();
    for i in 0..128 {
        let allocation = allocator
            .assign(&mk_service(&format!("ns/new{i}")))
            .unwrap();
        assert!(refilled.insert(allocation.ips()[0]));
    }
    let freed_addresses: std::collections::BTreeSet<_> = (0..384)
        .step_by(3)
        .map(|i: usize| {
            if i < 256 {
                ip(&format!("10.0.0.{i}"))
            } else {
                ip(&format!("10.0.2.{}", i - 256))
            }
        })
        .collect();
    assert_eq!(refilled, freed_addresses);
    assert_eq!(
        outcome(allocator.assign(&mk_service("ns/extra"))),
        Err("pool_exhausted")
    );
}
