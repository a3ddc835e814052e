//! Two Services on one address with annotation `portico.dev/allow-shared-ip`: allowed only with
//! the same key, no common port, and the same announcement needs.

use super::*;

#[test]
fn sharing_is_allowed_or_refused_for_each_reason() {
    let holder = || {
        mk_service("ns/holder")
            .sharing("k")
            .ports(&[(80, "TCP")])
            .asking_for(&["10.0.0.9"])
    };
    let newcomer = || {
        mk_service("ns/new")
            .ports(&[(443, "TCP")])
            .asking_for(&["10.0.0.9"])
    };
    let cases = [
        (
            "same key, other port, both Cluster",
            holder(),
            newcomer().sharing("k"),
            Ok(()),
        ),
        (
            "same port number, other protocol",
            holder(),
            newcomer().sharing("k").ports(&[(80, "UDP")]),
            Ok(()),
        ),
        (
            "both Local with the same selector",
            holder().local(&[("app", "web")]),
            newcomer().sharing("k").local(&[("app", "web")]),
            Ok(()),
        ),
        (
            "holder has no key",
            mk_service("ns/holder").asking_for(&["10.0.0.9"]),
            newcomer().sharing("k"),
            Err("the holder has no annotation"),
        ),
        (
            "newcomer has no key",
            holder(),
            newcomer(),
            Err("this Service has no annotation"),
        ),
        (
            "different keys",
            holder(),
            newcomer().sharing("other"),
            Err("\"other\" here but \"k\" on the holder"),
        ),
        (
            "same port and protocol",
            holder(),
            newcomer().sharing("k").ports(&[(80, "TCP")]),
            Err("both Services use port 80/TCP"),
        ),
        (
            "Local beside Cluster",
            holder(),
            newcomer().sharing("k").local(&[("app", "web")]),
            Err("externalTrafficPolicy is Local here but Cluster on the holder"),
        ),
        (
            "both Local, different selectors",
            holder().local(&[("app", "web")]),
            newcomer().sharing("k").local(&[("app", "api")]),
            Err("different spec.selector"),
        ),
    ];
    for (name, first, second, expected) in cases {
        let mut allocator = allocator(&[mk_pool("main", &["10.0.0.0/24"])]);
        allocator.assign(&first).unwrap();
        match (allocator.assign(&second), expected) {
            (Ok(allocation), Ok(())) => assert_eq!(allocation.ips(), ips(&["10.0.0.9"]), "{name}"),
            (Err(err), Err(reason)) => {
                assert_eq!(err.label(), "address_in_use", "{name}");
                let message = err.to_string();
                assert!(
                    message.contains("ns/holder") && message.contains(reason),
                    "{name}: {message}"
                );
            }
            (result, expected) => panic!("{name}: got {result:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn sharing_services_without_requests_land_on_one_address() {
    let mut allocator = allocator(&[mk_pool("main", &["10.0.0.0/24"])]);
    allocator.assign(&mk_service("ns/other")).unwrap();
    let web = allocator
        .assign(&mk_service("ns/web").sharing("front").ports(&[(80, "TCP")]))
        .unwrap();
    let tls = allocator
        .assign(&mk_service("ns/tls").sharing("front").ports(&[(443, "TCP")]))
        .unwrap();
    let clash = allocator
        .assign(
            &mk_service("ns/clash")
                .sharing("front")
                .ports(&[(80, "TCP")]),
        )
        .unwrap();
    assert_eq!(web.ips(), ips(&["10.0.0.1"]));
    assert_eq!(tls.ips(), web.ips(), "compatible sharer joins the address");
    assert_eq!(
        clash.ips(),
        ips(&["10.0.0.2"]),
        "a port clash gets its own address"
    );
    let stats = allocator.pool_stats("main").unwrap();
    assert_eq!(
        (stats.assigned_ipv4, stats.available_ipv4),
        (3, 253),
        "a shared address counts once"
    );
}

#[test]
fn shared_address_stays_used_until_its_last_holder_is_released() {
    let mut allocator = allocator(&[mk_pool("main", &["10.0.0.0/31"])]);
    allocator
        .assign(&mk_service("ns/a").sharing("k").ports(&[(80, "TCP")]))
        .unwrap();
    allocator
        .assign(&mk_service("ns/b").sharing("k").ports(&[(81, "TCP")]))
        .unwrap();
    assert_eq!(
        allocator.release(&ServiceKey::new("ns", "a")),
        ips(&["10.0.0.0"])
    );
    assert_eq!(allocator.pool_stats("main").unwrap().assigned_ipv4, 1);
    let err = allocator
        .assign(&mk_service("ns/c").asking_for(&["10.0.0.0"]))
        .unwrap_err();
    assert!(err.to_string().contains("ns/b"), "{err}");
    allocator.release(&ServiceKey::new("ns", "b"));
    assert_eq!(allocator.pool_stats("main").unwrap().assigned_ipv4, 0);
    assert_eq!(
        outcome(allocator.assign(&mk_service("ns/c").asking_for(&["10.0.0.0"]))),
        got(&["10.0.0.0"])
    );
}

#[test]
fn service_whose_ports_now_clash_moves_off_the_shared_address() {
    let mut allocator = allocator(&[mk_pool("main", &["10.0.0.0/24"])]);
    allocator
        .assign(&mk_service("ns/a").sharing("k").ports(&[(80, "TCP")]))
        .unwrap();
    allocator
        .assign(&mk_service("ns/b").sharing("k").ports(&[(81, "TCP")]))
        .unwrap();
    let moved = allocator
        .assign(&mk_service("ns/b").sharing("k").ports(&[(80, "TCP")]))
        .unwrap();
    assert_eq!(moved.ips(), ips(&["10.0.0.1"]));
    assert_eq!(moved.released(), ips(&["10.0.0.0"]));
    assert_eq!(
        allocator.addresses_of(&ServiceKey::new("ns", "a")),
        ips(&["10.0.0.0"])
    );
}
