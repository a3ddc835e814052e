//! The difference between the desired NLB and what AWS has, as lists of calls to make (no AWS
//! calls here). Empty plans mean a resync made reads only.

use std::collections::{BTreeMap, BTreeSet};

use super::desired::{DesiredTargetGroup, HealthCheck};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedTargetGroup {
    pub arn: String,
    pub name: String,
    pub protocol: String,
    pub health: HealthCheck,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedListener {
    pub arn: String,
    pub port: i32,
    pub protocol: String,
    pub target_group_arn: Option<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct TargetGroupPlan<'a> {
    pub create: Vec<&'a DesiredTargetGroup>,
    /// ARN and the health check to set.
    pub modify_health: Vec<(String, &'a HealthCheck)>,
    /// ARNs of target groups no port wants (deleted after their listeners).
    pub delete: Vec<String>,
}

pub fn plan_target_groups<'a>(
    desired: &'a [DesiredTargetGroup],
    observed: &[ObservedTargetGroup],
) -> TargetGroupPlan<'a> {
    let mut plan = TargetGroupPlan::default();
    for want in desired {
        match observed.iter().find(|o| o.name == want.name) {
            None => plan.create.push(want),
            Some(have) if have.health != want.health => {
                plan.modify_health.push((have.arn.clone(), &want.health))
            }
            Some(_) => {}
        }
    }
    plan.delete = observed
        .iter()
        .filter(|o| !desired.iter().any(|d| d.name == o.name))
        .map(|o| o.arn.clone())
        .collect();
    plan
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListenerPlan {
    /// Port, protocol, target group ARN.
    pub create: Vec<(i32, String, String)>,
    /// Listener ARN, target group ARN.
    pub modify: Vec<(String, String)>,
    pub delete: Vec<String>,
}

/// `target_groups`: the ARN of each desired target group, by name (after creation).
pub fn plan_listeners(
    desired: &[DesiredTargetGroup],
    observed: &[ObservedListener],
    target_groups: &BTreeMap<String, String>,
) -> ListenerPlan {
    let mut plan = ListenerPlan::default();
    for want in desired {
        let Some(arn) = target_groups.get(&want.name) else {
            continue;
        };
        match observed.iter().find(|o| o.port == want.port) {
            Some(have) if have.protocol != want.protocol => {
                // A listener's protocol can be modified, but TCP_UDP needs a fresh listener on
                // some APIs; replacing is always accepted.
                plan.delete.push(have.arn.clone());
                plan.create
                    .push((want.port, want.protocol.clone(), arn.clone()));
            }
            Some(have) if have.target_group_arn.as_ref() != Some(arn) => {
                plan.modify.push((have.arn.clone(), arn.clone()))
            }
            Some(_) => {}
            None => plan
                .create
                .push((want.port, want.protocol.clone(), arn.clone())),
        }
    }
    plan.delete.extend(
        observed
            .iter()
            .filter(|o| !desired.iter().any(|d| d.port == o.port))
            .map(|o| o.arn.clone()),
    );
    plan
}

/// Instance targets: (instance ID, port).
pub type Targets = BTreeSet<(String, i32)>;

/// What to register and deregister so a target group holds exactly `wanted`.
pub fn plan_targets(wanted: &Targets, current: &Targets) -> (Targets, Targets) {
    (
        wanted.difference(current).cloned().collect(),
        current.difference(wanted).cloned().collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(port: &str) -> HealthCheck {
        HealthCheck {
            protocol: "HTTP".into(),
            port: port.into(),
            path: Some("/healthz".into()),
            interval: 10,
            timeout: 6,
            healthy: 2,
            unhealthy: 2,
        }
    }

    fn tg(name: &str, port: i32, health_port: &str) -> DesiredTargetGroup {
        DesiredTargetGroup {
            name: name.into(),
            protocol: "TCP".into(),
            port,
            node_port: 30000 + port,
            health: health(health_port),
        }
    }

    fn observed_tg(name: &str, health_port: &str) -> ObservedTargetGroup {
        ObservedTargetGroup {
            arn: format!("arn:{name}"),
            name: name.into(),
            protocol: "TCP".into(),
            health: health(health_port),
        }
    }

    #[test]
    fn nothing_drifted_plans_nothing() {
        let desired = vec![tg("a", 80, "31000")];
        let observed = vec![observed_tg("a", "31000")];
        assert_eq!(
            plan_target_groups(&desired, &observed),
            TargetGroupPlan::default()
        );
        let listeners = vec![ObservedListener {
            arn: "l80".into(),
            port: 80,
            protocol: "TCP".into(),
            target_group_arn: Some("arn:a".into()),
        }];
        let arns = BTreeMap::from([("a".to_string(), "arn:a".to_string())]);
        assert_eq!(
            plan_listeners(&desired, &listeners, &arns),
            ListenerPlan::default()
        );
    }

    #[test]
    fn a_moved_health_check_a_new_port_and_a_removed_port() {
        let desired = vec![tg("a", 80, "10256"), tg("b", 443, "10256")];
        let observed = vec![observed_tg("a", "31000"), observed_tg("gone", "31000")];
        let plan = plan_target_groups(&desired, &observed);
        assert_eq!(plan.create, vec![&desired[1]]);
        assert_eq!(
            plan.modify_health,
            vec![("arn:a".into(), &desired[0].health)]
        );
        assert_eq!(plan.delete, vec!["arn:gone".to_string()]);

        let listeners = vec![
            ObservedListener {
                arn: "l80".into(),
                port: 80,
                protocol: "TCP".into(),
                target_group_arn: Some("arn:old".into()),
            },
            ObservedListener {
                arn: "l8080".into(),
                port: 8080,
                protocol: "TCP".into(),
                target_group_arn: Some("arn:gone".into()),
            },
        ];
        let arns = BTreeMap::from([
            ("a".to_string(), "arn:a".to_string()),
            ("b".to_string(), "arn:b".to_string()),
        ]);
        let plan = plan_listeners(&desired, &listeners, &arns);
        assert_eq!(plan.modify, vec![("l80".into(), "arn:a".into())]);
        assert_eq!(plan.create, vec![(443, "TCP".into(), "arn:b".into())]);
        assert_eq!(plan.delete, vec!["l8080".to_string()]);
    }

    #[test]
    fn targets_follow_the_node_set() {
        let t = |id: &str| (id.to_string(), 30080);
        let wanted = Targets::from([t("i-1"), t("i-2")]);
        let current = Targets::from([t("i-2"), t("i-3")]);
        assert_eq!(
            plan_targets(&wanted, &current),
            (Targets::from([t("i-1")]), Targets::from([t("i-3")]))
        );
        assert_eq!(plan_targets(&wanted, &wanted), Default::default());
    }
}
