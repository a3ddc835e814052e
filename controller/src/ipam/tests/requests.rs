//! Specific addresses asked for by annotation `portico.dev/load-balancer-ips` or
//! `spec.loadBalancerIP`.

use super::*;

#[test]
fn requested_address_is_given_only_from_a_pool_the_service_may_use() {
    let pools = [
        mk_pool("main", &["10.0.0.0/24"]),
        mk_pool_with("manual", &["10.0.5.0/24"], |s| s.auto_assign = false),
        mk_pool_with("team-a", &["10.0.6.0/24"], |s| {
            s.service_allocation = Some(portico_api::ServiceAllocation {
                namespaces: vec!["team-a".into()],
                ..Default::default()
            })
        }),
        mk_pool_with("buggy", &["10.0.7.0/24"], |s| s.avoid_buggy_ips = true),
    ];
    let cases = [
        (
            "address inside an autoAssign pool",
            mk_service("ns/a").asking_for(&["10.0.0.42"]),
            got(&["10.0.0.42"]),
        ),
        (
            "autoAssign false does not block an explicit address",
            mk_service("ns/a").asking_for(&["10.0.5.9"]),
            got(&["10.0.5.9"]),
        ),
        (
            "address in no pool",
            mk_service("ns/a").asking_for(&["192.0.2.1"]),
            Err("address_not_in_pool"),
        ),
        (
            "address in a pool restricted to another namespace",
            mk_service("ns/a").asking_for(&["10.0.6.1"]),
            Err("address_in_unusable_pool"),
        ),
        (
            "address in the restricted pool from its namespace",
            mk_service("team-a/a").asking_for(&["10.0.6.1"]),
            got(&["10.0.6.1"]),
        ),
        (
            "address outside the named pool",
            mk_service("ns/a")
                .in_pool("manual")
                .asking_for(&["10.0.0.1"]),
            Err("address_in_unusable_pool"),
        ),
        (
            "address inside the named pool",
            mk_service("ns/a")
                .in_pool("manual")
                .asking_for(&["10.0.5.1"]),
            got(&["10.0.5.1"]),
        ),
        (
            "address a pool avoids as buggy",
            mk_service("ns/a").asking_for(&["10.0.7.255"]),
            Err("address_in_unusable_pool"),
        ),
        (
            "named pool unknown",
            mk_service("ns/a").in_pool("nope").asking_for(&["10.0.0.1"]),
            Err("unknown_pool"),
        ),
    ];
    for (name, service, expected) in cases {
        let mut allocator = allocator(&pools);
        assert_eq!(outcome(allocator.assign(&service)), expected, "{name}");
    }
}

#[test]
fn refusals_of_requested_addresses_say_where_the_address_is() {
    let mut allocator = allocator(&[
        mk_pool("main", &["10.0.0.0/24"]),
        mk_pool_with("other", &["10.0.1.0/24"], |s| s.auto_assign = false),
        mk_pool_with("buggy", &["10.0.7.0/24"], |s| s.avoid_buggy_ips = true),
    ]);
    let message = |allocator: &mut Allocator, service: ServiceRequest| {
        allocator.assign(&service).unwrap_err().to_string()
    };
    let outside_named = message(
        &mut allocator,
        mk_service("ns/a").in_pool("main").asking_for(&["10.0.1.7"]),
    );
    assert_eq!(
        outside_named,
        "annotation portico.dev/load-balancer-ips: requested address 10.0.1.7 is in AddressPool \"other\", not in AddressPool \"main\" named by annotation portico.dev/address-pool"
    );
    let nowhere = message(
        &mut allocator,
        mk_service("ns/a").asking_for(&["192.0.2.1"]),
    );
    assert_eq!(
        nowhere,
        "annotation portico.dev/load-balancer-ips: requested address 192.0.2.1 is in no AddressPool"
    );
    let mut from_field = mk_service("ns/a").asking_for(&["192.0.2.1"]);
    from_field.requested_by = RequestedBy::LoadBalancerIp;
    assert_eq!(
        message(&mut allocator, from_field),
        "spec.loadBalancerIP: requested address 192.0.2.1 is in no AddressPool"
    );
    let buggy = message(&mut allocator, mk_service("ns/a").asking_for(&["10.0.7.0"]));
    assert!(
        buggy.contains("avoidBuggyIPs") && buggy.contains("\"buggy\""),
        "{buggy}"
    );
}

#[test]
fn requested_address_held_by_a_non_sharing_service_names_the_holder() {
    let mut allocator = allocator(&[mk_pool("main", &["10.0.0.0/24"])]);
    allocator
        .assign(&mk_service("ns/first").asking_for(&["10.0.0.7"]))
        .unwrap();
    let err = allocator
        .assign(
            &mk_service("ns/second")
                .asking_for(&["10.0.0.7"])
                .ports(&[(443, "TCP")]),
        )
        .unwrap_err();
    assert_eq!(err.label(), "address_in_use");
    assert_eq!(
        err.to_string(),
        "address 10.0.0.7 is held by Service ns/first, and cannot be shared: the holder has no annotation portico.dev/allow-shared-ip"
    );
    assert!(
        allocator
            .addresses_of(&ServiceKey::new("ns", "second"))
            .is_empty()
    );
}

#[test]
fn automatic_allocation_skips_requested_addresses() {
    let mut allocator = allocator(&[mk_pool("main", &["10.0.0.0/30"])]);
    allocator
        .assign(&mk_service("ns/pinned").asking_for(&["10.0.0.0"]))
        .unwrap();
    assert_eq!(
        outcome(allocator.assign(&mk_service("ns/auto"))),
        got(&["10.0.0.1"])
    );
}

#[test]
fn changing_the_requested_address_moves_the_service_and_frees_the_old_one() {
    let mut allocator = allocator(&[mk_pool("main", &["10.0.0.0/24"])]);
    allocator
        .assign(&mk_service("ns/a").asking_for(&["10.0.0.5"]))
        .unwrap();
    let moved = allocator
        .assign(&mk_service("ns/a").asking_for(&["10.0.0.6"]))
        .unwrap();
    assert_eq!(moved.ips(), ips(&["10.0.0.6"]));
    assert_eq!(moved.released(), ips(&["10.0.0.5"]));
    assert!(moved.changed());
    assert_eq!(
        outcome(allocator.assign(&mk_service("ns/b").asking_for(&["10.0.0.5"]))),
        got(&["10.0.0.5"])
    );
}

#[test]
fn failed_request_keeps_the_address_the_service_had() {
    let mut allocator = allocator(&[mk_pool("main", &["10.0.0.0/24"])]);
    allocator.assign(&mk_service("ns/a")).unwrap();
    let err = allocator
        .assign(&mk_service("ns/a").asking_for(&["192.0.2.1"]))
        .unwrap_err();
    assert_eq!(err.label(), "address_not_in_pool");
    assert_eq!(
        allocator.addresses_of(&ServiceKey::new("ns", "a")),
        ips(&["10.0.0.0"])
    );
}
