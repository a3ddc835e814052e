//! Addresses do not move: not on restart, not when pools change order, not when a pool shrinks
//! or goes away (the Service keeps the address and the allocator reports it).

use std::collections::BTreeSet;

use super::*;

#[test]
fn restore_before_assign_keeps_every_address_after_a_restart() {
    let pools = [mk_pool("main", &["10.0.0.0/24"])];
    let services = [
        mk_service("ns/a").with_status(&["10.0.0.7"]),
        mk_service("ns/b").with_status(&["10.0.0.0"]),
        mk_service("ns/new"),
    ];
    let mut allocator = allocator(&pools);
    for service in services.iter().filter(|s| !s.current_ips.is_empty()) {
        allocator.restore(service).unwrap();
    }
    let assigned: Vec<_> = services
        .iter()
        .map(|s| outcome(allocator.assign(s)))
        .collect();
    assert_eq!(
        assigned,
        [got(&["10.0.0.7"]), got(&["10.0.0.0"]), got(&["10.0.0.1"])]
    );
    assert!(
        services
            .iter()
            .all(|s| !allocator.assign(s).unwrap().changed()),
        "a second pass changes nothing"
    );
}

#[test]
fn restore_refuses_a_second_claim_on_an_unshareable_address() {
    let mut allocator = allocator(&[mk_pool("main", &["10.0.0.0/24"])]);
    allocator
        .restore(&mk_service("ns/a").with_status(&["10.0.0.7"]))
        .unwrap();
    let err = allocator
        .restore(&mk_service("ns/b").with_status(&["10.0.0.7"]))
        .unwrap_err();
    assert_eq!(err.label(), "address_in_use");
    let b = allocator
        .assign(&mk_service("ns/b").with_status(&["10.0.0.7"]))
        .unwrap();
    assert_eq!(
        b.ips(),
        ips(&["10.0.0.0"]),
        "the loser gets a fresh address"
    );
}

#[test]
fn assign_without_restore_still_reclaims_the_status_address() {
    let mut allocator = allocator(&[mk_pool("main", &["10.0.0.0/24"])]);
    let allocation = allocator
        .assign(&mk_service("ns/a").with_status(&["10.0.0.42"]))
        .unwrap();
    assert_eq!(allocation.ips(), ips(&["10.0.0.42"]));
}

#[test]
fn new_higher_priority_pool_does_not_renumber_existing_services() {
    let mut allocator = allocator(&[mk_pool("old", &["10.0.0.0/24"])]);
    allocator.assign(&mk_service("ns/a")).unwrap();
    allocator.set_pools(&[
        mk_pool("old", &["10.0.0.0/24"]),
        mk_pool_with("new", &["10.0.9.0/24"], |s| {
            s.service_allocation = priority(0)
        }),
    ]);
    let again = allocator.assign(&mk_service("ns/a")).unwrap();
    assert_eq!((again.ips(), again.changed()), (ips(&["10.0.0.0"]), false));
    assert_eq!(
        outcome(allocator.assign(&mk_service("ns/b"))),
        got(&["10.0.9.0"])
    );
}

#[test]
fn pool_shrink_keeps_the_address_and_reports_it() {
    let mut allocator = allocator(&[mk_pool("main", &["10.0.0.0/24"])]);
    allocator
        .assign(&mk_service("ns/a").asking_for(&["10.0.0.200"]))
        .unwrap();
    allocator.assign(&mk_service("ns/b")).unwrap();
    allocator.set_pools(&[mk_pool("main", &["10.0.0.0/25"])]);

    let kept = allocator
        .assign(&mk_service("ns/a").asking_for(&["10.0.0.200"]))
        .unwrap();
    assert_eq!(kept.ips(), ips(&["10.0.0.200"]));
    assert_eq!(kept.outside_pools(), ips(&["10.0.0.200"]));
    assert!(!kept.changed());
    assert_eq!(
        allocator.outside_pools(),
        vec![(ServiceKey::new("ns", "a"), ip("10.0.0.200"))]
    );
    let stats = allocator.pool_stats("main").unwrap();
    assert_eq!(
        (stats.assigned_ipv4, stats.available_ipv4),
        (1, 127),
        "the stray address is not counted"
    );
}

#[test]
fn pool_deletion_keeps_the_address_of_an_automatic_service() {
    let mut allocator = allocator(&[
        mk_pool("gone", &["10.0.0.0/24"]),
        mk_pool("other", &["10.0.1.0/24"]),
    ]);
    allocator
        .assign(&mk_service("ns/a").in_pool("gone"))
        .unwrap();
    allocator.assign(&mk_service("ns/b")).unwrap();
    allocator.set_pools(&[mk_pool("other", &["10.0.1.0/24"])]);
    let named = allocator
        .assign(&mk_service("ns/a").in_pool("gone"))
        .unwrap();
    assert_eq!(
        (named.ips(), named.outside_pools()),
        (ips(&["10.0.0.0"]), ips(&["10.0.0.0"]))
    );
    let automatic = allocator.assign(&mk_service("ns/b")).unwrap();
    assert_eq!(
        (automatic.ips(), automatic.changed()),
        (ips(&["10.0.0.1"]), false)
    );
    assert_eq!(allocator.outside_pools().len(), 2);
}

#[test]
fn pool_becoming_invalid_keeps_addresses_and_reports_them() {
    let mut allocator = allocator(&[mk_pool("main", &["10.0.0.0/24"])]);
    allocator.assign(&mk_service("ns/a")).unwrap();
    allocator.set_pools(&[mk_pool("main", &["10.0.0.0/24", "10.0.0.0/25"])]);
    let kept = allocator.assign(&mk_service("ns/a")).unwrap();
    assert_eq!(kept.outside_pools(), ips(&["10.0.0.0"]));
    assert_eq!(allocator.invalid_pools().count(), 1);
}

#[test]
fn moving_to_a_named_pool_renumbers_because_the_user_asked() {
    let mut allocator = allocator(&[
        mk_pool("a", &["10.0.0.0/24"]),
        mk_pool("b", &["10.0.1.0/24"]),
    ]);
    allocator.assign(&mk_service("ns/x")).unwrap();
    let moved = allocator.assign(&mk_service("ns/x").in_pool("b")).unwrap();
    assert_eq!(
        (moved.ips(), moved.released()),
        (ips(&["10.0.1.0"]), ips(&["10.0.0.0"]))
    );
    assert_eq!(moved.addresses[0].pool.as_deref(), Some("b"));
}

#[test]
fn released_address_is_not_handed_out_again_at_once() {
    let mut allocator = allocator(&[mk_pool("main", &["10.0.0.0/24"])]);
    allocator.assign(&mk_service("ns/a")).unwrap();
    allocator.assign(&mk_service("ns/b")).unwrap();
    assert_eq!(
        allocator.release(&ServiceKey::new("ns", "a")),
        ips(&["10.0.0.0"])
    );
    assert_eq!(
        outcome(allocator.assign(&mk_service("ns/c"))),
        got(&["10.0.0.2"])
    );
    assert!(
        allocator
            .release(&ServiceKey::new("ns", "missing"))
            .is_empty()
    );
}

#[test]
fn overlapping_pools_are_reported_and_never_hand_out_one_address_twice() {
    let mut allocator = allocator(&[
        mk_pool("a", &["10.0.0.0/30", "2001:db8::/126"]),
        mk_pool("b", &["10.0.0.2-10.0.0.9"]),
        mk_pool("c", &["10.0.1.0/24", "2001:db8::2-2001:db8::9"]),
    ]);
    assert_eq!(
        allocator.overlapping_pools(),
        [
            ("a".to_owned(), "b".to_owned()),
            ("a".to_owned(), "c".to_owned())
        ]
    );
    allocator.assign(&mk_service("ns/x").in_pool("b")).unwrap();
    allocator.assign(&mk_service("ns/y").in_pool("b")).unwrap();
    let given: Vec<_> = (0..3)
        .map(|i| outcome(allocator.assign(&mk_service(&format!("ns/a{i}")).in_pool("a"))))
        .collect();
    assert_eq!(
        given,
        [
            got(&["10.0.0.0"]),
            got(&["10.0.0.1"]),
            Err("pool_exhausted")
        ]
    );
    assert_eq!(allocator.pool_stats("a").unwrap().available_ipv4, 0);
}

#[test]
fn a_pool_change_names_only_the_holders_it_can_affect() {
    let before = [
        mk_pool("main", &["10.0.0.0/24"]),
        mk_pool("other", &["10.0.1.0/24"]),
    ];
    let mut allocator = allocator(&before);
    for (name, ip) in [
        ("ns/a", "10.0.0.7"),
        ("ns/b", "10.0.1.7"),
        ("ns/c", "10.0.2.7"),
    ] {
        allocator.assign(&mk_service(name).asking_for(&[ip])).ok();
    }
    // ns/c asked for an address in no pool and holds nothing; ns/a and ns/b hold theirs.
    assert!(
        allocator
            .addresses_of(&ServiceKey::new("ns", "c"))
            .is_empty()
    );
    let changed = BTreeSet::from(["other".to_string()]);
    let mut affected = allocator.holders_in(&changed);
    // "other" shrinks away from ns/b's address and grows over 10.0.2.0/24.
    allocator.set_pools(&[
        mk_pool("main", &["10.0.0.0/24"]),
        mk_pool("other", &["10.0.2.0/24"]),
    ]);
    affected.extend(allocator.holders_in(&changed));
    assert_eq!(affected, BTreeSet::from([ServiceKey::new("ns", "b")]));
    assert!(
        allocator
            .holders_in(&BTreeSet::from(["gone".to_string()]))
            .is_empty()
    );
}
