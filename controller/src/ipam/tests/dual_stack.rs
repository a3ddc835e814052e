//! `spec.ipFamilies` and `spec.ipFamilyPolicy`: one address per family, as many families as
//! the policy asks for and the pools can give.

use portico_api::IpFamily::{V4, V6};

use super::IpFamilyPolicy::{PreferDualStack, RequireDualStack, SingleStack};
use super::*;

const V4_ONLY: &str = "10.0.0.0/24";
const V6_ONLY: &str = "2001:db8::/64";

#[test]
fn family_policies_pick_one_address_per_family() {
    let dual = || vec![mk_pool("dual", &[V4_ONLY, V6_ONLY])];
    let v4_only = || vec![mk_pool("v4", &[V4_ONLY])];
    let split = || vec![mk_pool("a-v4", &[V4_ONLY]), mk_pool("b-v6", &[V6_ONLY])];
    let cases = [
        (
            "single stack takes the first family only",
            dual(),
            &[V6, V4][..],
            SingleStack,
            got(&["2001:db8::"]),
        ),
        (
            "single stack IPv4",
            dual(),
            &[V4][..],
            SingleStack,
            got(&["10.0.0.0"]),
        ),
        (
            "prefer dual stack gets both from a dual pool",
            dual(),
            &[V4, V6][..],
            PreferDualStack,
            got(&["10.0.0.0", "2001:db8::"]),
        ),
        (
            "prefer dual stack keeps ipFamilies order",
            dual(),
            &[V6, V4][..],
            PreferDualStack,
            got(&["2001:db8::", "10.0.0.0"]),
        ),
        (
            "prefer dual stack settles for one family",
            v4_only(),
            &[V4, V6][..],
            PreferDualStack,
            got(&["10.0.0.0"]),
        ),
        (
            "prefer dual stack with one listed family",
            dual(),
            &[V4][..],
            PreferDualStack,
            got(&["10.0.0.0"]),
        ),
        (
            "require dual stack gets both",
            dual(),
            &[V4, V6][..],
            RequireDualStack,
            got(&["10.0.0.0", "2001:db8::"]),
        ),
        (
            "require dual stack fails without both",
            v4_only(),
            &[V4, V6][..],
            RequireDualStack,
            Err("no_dual_stack_pool"),
        ),
        (
            "both families come from one pool",
            split(),
            &[V4, V6][..],
            RequireDualStack,
            Err("no_dual_stack_pool"),
        ),
        (
            "prefer with split pools takes the first family",
            split(),
            &[V6, V4][..],
            PreferDualStack,
            got(&["2001:db8::"]),
        ),
        (
            "single stack IPv6 with no IPv6 pool",
            v4_only(),
            &[V6][..],
            SingleStack,
            Err("pool_exhausted"),
        ),
    ];
    for (name, pools, families, policy, expected) in cases {
        let mut allocator = allocator(&pools);
        let service = mk_service("ns/a").families(families, policy);
        assert_eq!(outcome(allocator.assign(&service)), expected, "{name}");
    }
}

#[test]
fn requested_addresses_must_fit_the_family_policy() {
    let pools = [mk_pool("dual", &[V4_ONLY, V6_ONLY])];
    let cases = [
        (
            "one of each family, dual stack",
            &[V4, V6][..],
            RequireDualStack,
            &["10.0.0.5", "2001:db8::5"][..],
            got(&["10.0.0.5", "2001:db8::5"]),
        ),
        (
            "second family under single stack",
            &[V4, V6][..],
            SingleStack,
            &["10.0.0.5", "2001:db8::5"][..],
            Err("family_not_allowed"),
        ),
        (
            "family missing from ipFamilies",
            &[V4][..],
            PreferDualStack,
            &["2001:db8::5"][..],
            Err("family_not_allowed"),
        ),
        (
            "one address under require dual stack",
            &[V4, V6][..],
            RequireDualStack,
            &["10.0.0.5"][..],
            Err("dual_stack_incomplete"),
        ),
        (
            "one address under prefer dual stack",
            &[V4, V6][..],
            PreferDualStack,
            &["2001:db8::5"][..],
            got(&["2001:db8::5"]),
        ),
    ];
    for (name, families, policy, requested, expected) in cases {
        let mut allocator = allocator(&pools);
        let service = mk_service("ns/a")
            .families(families, policy)
            .asking_for(requested);
        assert_eq!(outcome(allocator.assign(&service)), expected, "{name}");
    }
}

#[test]
fn family_refusal_names_the_field_and_the_allowed_family() {
    let mut allocator = allocator(&[mk_pool("dual", &[V4_ONLY, V6_ONLY])]);
    let service = mk_service("ns/a")
        .families(&[V4, V6], SingleStack)
        .asking_for(&["2001:db8::5"]);
    let message = allocator.assign(&service).unwrap_err().to_string();
    assert_eq!(
        message,
        "requested address 2001:db8::5 is IPv6, but spec.ipFamilies IPv4, IPv6 with ipFamilyPolicy SingleStack allows only IPv4"
    );
}

#[test]
fn prefer_dual_stack_gains_the_second_family_without_renumbering_the_first() {
    let mut allocator = allocator(&[mk_pool("pool", &[V4_ONLY])]);
    let service = mk_service("ns/a").families(&[V4, V6], PreferDualStack);
    assert_eq!(outcome(allocator.assign(&service)), got(&["10.0.0.0"]));
    allocator.set_pools(&[mk_pool("pool", &[V4_ONLY, V6_ONLY])]);
    assert_eq!(
        outcome(allocator.assign(&service)),
        got(&["10.0.0.0", "2001:db8::"])
    );
}

#[test]
fn switching_to_single_stack_drops_the_second_family() {
    let mut allocator = allocator(&[mk_pool("dual", &[V4_ONLY, V6_ONLY])]);
    allocator
        .assign(&mk_service("ns/a").families(&[V4, V6], RequireDualStack))
        .unwrap();
    let single = allocator
        .assign(&mk_service("ns/a").families(&[V4, V6], SingleStack))
        .unwrap();
    assert_eq!(single.ips(), ips(&["10.0.0.0"]));
    assert_eq!(single.released(), ips(&["2001:db8::"]));
    assert_eq!(allocator.pool_stats("dual").unwrap().assigned_ipv6, 0);
}
