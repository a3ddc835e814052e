use std::collections::BTreeSet;

use super::*;

fn owned(ip: &str, node: &str, default: bool, named: &[&str]) -> VipPlan {
    VipPlan {
        ip: ip.parse().unwrap(),
        pool: "lab".into(),
        services: vec![ServiceKey::new("default", "web")],
        outcome: Outcome::Owner {
            node: node.into(),
            interfaces: Interfaces {
                default,
                named: named.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>(),
            },
        },
        runner_up: None,
    }
}

fn with(ip: &str, outcome: Outcome) -> VipPlan {
    VipPlan {
        outcome,
        ..owned(ip, "x", true, &[])
    }
}

fn writer<'a>(me: &'a str, reporter: bool) -> Writer<'a> {
    Writer {
        me,
        reporter,
        default_interface: Some("eth0"),
    }
}

fn earlier() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap()
}

#[test]
fn the_owner_of_the_first_announced_vip_writes_else_the_reporter() {
    let v4 = owned("198.19.0.1", "node-b", true, &[]);
    let v6 = owned("2001:db8::1", "node-a", true, &[]);
    let vips = [&v4, &v6];
    assert!(writes(&vips, &writer("node-b", false)));
    assert!(
        !writes(&vips, &writer("node-a", true)),
        "not the reporter's"
    );
    let uncovered = with("198.19.0.2", Outcome::NotCovered);
    assert!(writes(&[&uncovered], &writer("node-a", true)));
    assert!(!writes(&[&uncovered], &writer("node-b", false)));
}

#[test]
fn owned_vips_name_node_and_interface_and_keep_their_time_while_unchanged() {
    let v4 = owned("198.19.0.1", "node-a", true, &["eth1"]);
    let v6 = owned("2001:db8::1", "node-b", true, &[]);
    let first = desired_condition(
        &[&v4, &v6],
        &writer("node-a", false),
        None,
        Some(3),
        earlier(),
    );
    assert_eq!(first.type_, L2_ANNOUNCED);
    assert_eq!(first.status, "True");
    assert_eq!(first.reason, NODE_ANNOUNCING);
    assert_eq!(
        first.message,
        "198.19.0.1 by node node-a on eth0, eth1; \
         2001:db8::1 by node node-b on the interface holding its address"
    );
    assert_eq!(first.observed_generation, Some(3));
    assert_eq!(first.last_transition_time, Time(earlier()));

    let again = desired_condition(
        &[&v4, &v6],
        &writer("node-a", false),
        Some(&first),
        Some(3),
        Timestamp::now(),
    );
    assert_eq!(again, first, "nothing changed: same condition, no write");

    // The VIP moved: the new owner's condition says so, since now.
    let moved = owned("198.19.0.1", "node-c", true, &[]);
    let now = Timestamp::now();
    let after = desired_condition(
        &[&moved, &v6],
        &writer("node-c", false),
        Some(&first),
        Some(3),
        now,
    );
    assert!(
        after
            .message
            .starts_with("198.19.0.1 by node node-c on eth0;"),
        "{}",
        after.message
    );
    assert_eq!(after.last_transition_time, Time(now));
}

#[test]
fn a_vip_no_announcement_covers_is_a_false_condition_naming_the_pool() {
    let uncovered = with("198.19.0.2", Outcome::NotCovered);
    let condition = desired_condition(
        &[&uncovered],
        &writer("node-a", true),
        None,
        None,
        earlier(),
    );
    assert_eq!(condition.status, "False");
    assert_eq!(condition.reason, NOT_ANNOUNCED);
    assert_eq!(
        condition.message,
        "198.19.0.2 not announced: no L2Announcement covers AddressPool lab"
    );
    let nobody = with("198.19.0.3", Outcome::NoEligibleNode);
    let condition = desired_condition(&[&nobody], &writer("node-a", true), None, None, earlier());
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", NO_ELIGIBLE_NODE)
    );
    // Not covered is the one the user must act on: it names the condition when both occur.
    let both = desired_condition(
        &[&nobody, &uncovered],
        &writer("node-a", true),
        None,
        None,
        earlier(),
    );
    assert_eq!(both.reason, NOT_ANNOUNCED);
}
