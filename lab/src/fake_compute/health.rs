//! `targetPools.getHealth`: the health of one pool member per forwarding rule that serves the
//! pool, as Google answers it (`compute#targetPoolInstanceHealth`). The fake probes nothing: the
//! lab cloud measures health for real and reports it here (`PUT /lab/health/{pool}` with
//! `{"<instance URL>": "HEALTHY" | "UNHEALTHY"}`), so the API and the packets tell one story.
//! A member nobody has reported on is `UNHEALTHY`, as a new member is on GCP until it has passed
//! its health check `healthyThreshold` times.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::state::{Answer, State, error};

impl State {
    /// Replaces what the lab cloud measured for `pool`'s members.
    pub fn report_health(&mut self, pool: &str, body: Value) -> Answer {
        let Some(members) = body.as_object() else {
            return error(
                400,
                "invalid",
                "the health report is an object of instance URL to HEALTHY or UNHEALTHY",
            );
        };
        let mut health = BTreeMap::new();
        for (instance, state) in members {
            match state.as_str() {
                Some(state @ ("HEALTHY" | "UNHEALTHY")) => {
                    health.insert(instance.clone(), state.to_owned());
                }
                _ => {
                    return error(
                        400,
                        "invalid",
                        &format!("health of {instance}: {state} is not HEALTHY or UNHEALTHY"),
                    );
                }
            }
        }
        self.health.insert(pool.to_owned(), health);
        (200, json!({}))
    }

    /// POST targetPools/{pool}/getHealth with an `InstanceReference` body.
    pub fn pool_health(&self, pool: &str, body: Value) -> Answer {
        let (status, pool_value) = self.get("targetPools", pool);
        if status != 200 {
            return Self::not_found("targetPools", pool);
        }
        let Some(instance) = body["instance"].as_str() else {
            return error(
                400,
                "required",
                "Required field 'resource.instance' not specified",
            );
        };
        let member = pool_value["instances"]
            .as_array()
            .is_some_and(|urls| urls.iter().any(|u| u.as_str() == Some(instance)));
        if !member {
            return error(
                400,
                "invalid",
                &format!("Instance '{instance}' is not a member of target pool '{pool}'"),
            );
        }
        let state = self
            .health
            .get(pool)
            .and_then(|members| members.get(instance))
            .map_or("UNHEALTHY", String::as_str);
        let statuses: Vec<Value> = self
            .resources
            .iter()
            .filter(|((collection, _), rule)| {
                collection == "forwardingRules"
                    && rule["target"]
                        .as_str()
                        .is_some_and(|t| t.ends_with(&format!("/targetPools/{pool}")))
            })
            .map(|(_, rule)| {
                json!({
                    "healthState": state,
                    "instance": instance,
                    "ipAddress": rule["IPAddress"],
                    "forwardingRule": rule["selfLink"],
                    "forwardingRuleIp": rule["IPAddress"],
                })
            })
            .collect();
        (
            200,
            json!({"kind": "compute#targetPoolInstanceHealth", "healthStatus": statuses}),
        )
    }
}
