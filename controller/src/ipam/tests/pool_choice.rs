//! Which pool a Service's address comes from: annotation, then serviceAllocation and priority,
//! then any autoAssign pool; restricted pools serve only what they select.

use portico_api::ServiceAllocation;

use super::*;

fn restricted(edit: impl FnOnce(&mut ServiceAllocation)) -> Option<ServiceAllocation> {
    let mut allocation = ServiceAllocation::default();
    edit(&mut allocation);
    Some(allocation)
}

#[test]
fn pool_choice_follows_annotation_then_allocation_then_priority_then_name() {
    let pools = [
        mk_pool("a-plain", &["10.0.1.0/24"]),
        mk_pool("b-plain", &["10.0.2.0/24"]),
        mk_pool_with("high", &["10.0.3.0/24"], |s| {
            s.service_allocation = priority(1)
        }),
        mk_pool_with("low", &["10.0.4.0/24"], |s| {
            s.service_allocation = priority(5)
        }),
        mk_pool_with("manual", &["10.0.5.0/24"], |s| s.auto_assign = false),
        mk_pool_with("team-a", &["10.0.6.0/24"], |s| {
            s.service_allocation = restricted(|a| {
                a.priority = Some(10);
                a.namespaces = vec!["team-a".into()];
            })
        }),
        mk_pool_with("gold", &["10.0.7.0/24"], |s| {
            s.service_allocation = restricted(|a| {
                a.priority = Some(0);
                a.service_selectors = vec![selector("tier", "gold")];
            })
        }),
        mk_pool_with("labelled-ns", &["10.0.8.0/24"], |s| {
            s.service_allocation = restricted(|a| {
                a.priority = Some(0);
                a.namespace_selectors = vec![expression("env", "In", &["prod"])];
            })
        }),
        mk_pool_with("zz-tie", &["10.0.9.0/24"], |s| {
            s.service_allocation = priority(1)
        }),
    ];
    let cases = [
        (
            "annotation beats every priority",
            mk_service("ns/a").in_pool("b-plain"),
            got(&["10.0.2.0"]),
        ),
        (
            "autoAssign false pool used when named",
            mk_service("ns/a").in_pool("manual"),
            got(&["10.0.5.0"]),
        ),
        (
            "lowest priority number first, ties by name",
            mk_service("ns/a"),
            got(&["10.0.3.0"]),
        ),
        (
            "named restricted pool serves its own namespace",
            mk_service("team-a/a").in_pool("team-a"),
            got(&["10.0.6.0"]),
        ),
        (
            "service selector picks the matching Service",
            mk_service("ns/a").labelled(&[("tier", "gold")]),
            got(&["10.0.7.0"]),
        ),
        (
            "namespace selector matches the namespace's labels",
            mk_service("ns/a").namespace_labelled(&[("env", "prod")]),
            got(&["10.0.8.0"]),
        ),
        (
            "pool dedicated to the namespace beats an open pool of better priority",
            mk_service("team-a/a"),
            got(&["10.0.6.0"]),
        ),
        (
            "two dedicated pools of one priority go by name",
            mk_service("ns/a")
                .labelled(&[("tier", "gold")])
                .namespace_labelled(&[("env", "prod")]),
            got(&["10.0.7.0"]),
        ),
        (
            "unknown pool named",
            mk_service("ns/a").in_pool("missing"),
            Err("unknown_pool"),
        ),
        (
            "restricted pool named by an outsider",
            mk_service("ns/a").in_pool("team-a"),
            Err("pool_not_allowed"),
        ),
    ];
    for (name, service, expected) in cases {
        let mut allocator = allocator(&pools);
        assert_eq!(outcome(allocator.assign(&service)), expected, "{name}");
    }
}

#[test]
fn pools_without_priority_come_after_prioritised_ones_and_ties_go_by_name() {
    let mut allocator = allocator(&[
        mk_pool("a-none", &["10.0.1.0/31"]),
        mk_pool_with("z-prio", &["10.0.2.0/31"], |s| {
            s.service_allocation = priority(100)
        }),
        mk_pool("b-none", &["10.0.3.0/31"]),
    ]);
    let order: Vec<_> = ["ns/1", "ns/2", "ns/3", "ns/4", "ns/5"]
        .iter()
        .map(|key| outcome(allocator.assign(&mk_service(key))))
        .collect();
    assert_eq!(
        order,
        [
            got(&["10.0.2.0"]),
            got(&["10.0.2.1"]),
            got(&["10.0.1.0"]),
            got(&["10.0.1.1"]),
            got(&["10.0.3.0"]),
        ]
    );
}

#[test]
fn auto_assign_false_pool_is_never_chosen_automatically() {
    let mut allocator = allocator(&[mk_pool_with("manual", &["10.0.5.0/24"], |s| {
        s.auto_assign = false
    })]);
    let err = allocator.assign(&mk_service("ns/a")).unwrap_err();
    assert_eq!(err.label(), "no_pool_for_service");
    assert!(
        err.to_string().contains("portico.dev/address-pool"),
        "{err}"
    );
}

#[test]
fn restricted_pool_serves_only_selected_services() {
    let pools = [mk_pool_with("team-a", &["10.0.6.0/24"], |s| {
        s.service_allocation = restricted(|a| {
            a.namespaces = vec!["team-a".into()];
            a.service_selectors = vec![expression("public", "Exists", &[])];
        })
    })];
    let cases = [
        (
            "namespace and selector match",
            mk_service("team-a/x").labelled(&[("public", "")]),
            got(&["10.0.6.0"]),
        ),
        (
            "other namespace",
            mk_service("team-b/x").labelled(&[("public", "")]),
            Err("no_pool_for_service"),
        ),
        (
            "selector does not match",
            mk_service("team-a/x"),
            Err("no_pool_for_service"),
        ),
    ];
    for (name, service, expected) in cases {
        let mut allocator = allocator(&pools);
        assert_eq!(outcome(allocator.assign(&service)), expected, "{name}");
    }
}

#[test]
fn selector_operators_follow_kubernetes_semantics() {
    let pool_with = |sel| {
        [mk_pool_with("p", &["10.0.0.0/24"], |s| {
            s.service_allocation = restricted(|a| a.service_selectors = vec![sel])
        })]
    };
    let cases = [
        (
            expression("tier", "In", &["gold", "silver"]),
            &[("tier", "silver")][..],
            true,
        ),
        (
            expression("tier", "In", &["gold"]),
            &[("tier", "bronze")][..],
            false,
        ),
        (expression("tier", "NotIn", &["gold"]), &[][..], true),
        (
            expression("tier", "NotIn", &["gold"]),
            &[("tier", "gold")][..],
            false,
        ),
        (expression("tier", "DoesNotExist", &[]), &[][..], true),
        (
            expression("tier", "DoesNotExist", &[]),
            &[("tier", "x")][..],
            false,
        ),
        (
            selector("tier", "gold"),
            &[("tier", "gold"), ("other", "x")][..],
            true,
        ),
    ];
    for (sel, service_labels, served) in cases {
        let mut allocator = allocator(&pool_with(sel.clone()));
        let result = allocator.assign(&mk_service("ns/a").labelled(service_labels));
        assert_eq!(result.is_ok(), served, "{sel:?} on {service_labels:?}");
    }
}

#[test]
fn invalid_pool_is_not_used_and_its_errors_are_reported() {
    let mut allocator = allocator(&[
        mk_pool("broken", &["10.0.0.0/24", "10.0.0.128/25"]),
        mk_pool("good", &["10.0.1.0/24"]),
    ]);
    assert_eq!(
        outcome(allocator.assign(&mk_service("ns/a"))),
        got(&["10.0.1.0"])
    );
    let invalid: Vec<_> = allocator.invalid_pools().collect();
    assert_eq!(invalid.len(), 1);
    assert_eq!(invalid[0].0, "broken");
    assert!(
        invalid[0].1.names_field("spec.addresses[1]"),
        "{}",
        invalid[0].1
    );
    assert_eq!(allocator.stats().keys().collect::<Vec<_>>(), ["good"]);

    let err = allocator
        .assign(&mk_service("ns/b").in_pool("broken"))
        .unwrap_err();
    assert_eq!(err.label(), "invalid_pool");
    assert!(err.to_string().contains("overlaps"), "{err}");
}

#[test]
fn no_pools_at_all_names_the_service() {
    let mut allocator = allocator(&[]);
    let err = allocator.assign(&mk_service("ns/a")).unwrap_err();
    assert_eq!(err.label(), "no_pool_for_service");
    assert!(err.to_string().contains("ns/a"), "{err}");
}
