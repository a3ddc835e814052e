//! What the GCP lab cloud reads from the Compute API, as plain structs: forwarding rules (IP,
//! protocol, ports, target pool), target pools (instance URLs, the one legacy HTTP health
//! check) and the checks' settings. Pure: JSON lists in, a `Snapshot` out.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::Value;

use crate::cloud::checker::CheckSpec;

/// A forwarding rule the lab cloud serves: its address, routed to the pool's members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardingRule {
    pub name: String,
    pub ip: Ipv4Addr,
    /// `TCP` or `UDP`.
    pub protocol: String,
    /// `low-high`.
    pub port_range: String,
    /// The target pool's name.
    pub pool: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    /// Instance URLs, as the pool lists them.
    pub instances: Vec<String>,
    /// The pool's health check; `None` when it has none (then every instance is healthy).
    pub check: Option<CheckSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub rules: Vec<ForwardingRule>,
    pub pools: BTreeMap<String, Pool>,
}

/// The last path segment of a resource URL (`.../instances/node-0` → `node-0`).
pub fn url_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

fn seconds(value: &Value, default: u64) -> Duration {
    Duration::from_secs(value.as_u64().filter(|s| *s > 0).unwrap_or(default))
}

/// An `httpHealthChecks` resource as the checker's spec; a field the API leaves out takes
/// GCP's default (port 80, `/`, 5 s, 5 s, 2, 2).
pub fn check_spec(check: &Value) -> CheckSpec {
    let default = CheckSpec::gcp_default();
    let count = |value: &Value, default: u32| {
        value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    CheckSpec {
        port: check["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(default.port),
        path: check["requestPath"]
            .as_str()
            .filter(|p| !p.is_empty())
            .unwrap_or(&default.path)
            .to_owned(),
        interval: seconds(&check["checkIntervalSec"], default.interval.as_secs()),
        timeout: seconds(&check["timeoutSec"], default.timeout.as_secs()),
        healthy_threshold: count(&check["healthyThreshold"], default.healthy_threshold),
        unhealthy_threshold: count(&check["unhealthyThreshold"], default.unhealthy_threshold),
    }
}

/// The three lists' `items` into one snapshot. Forwarding rules that do not point at a target
/// pool or carry no IPv4 address are left out (the lab cloud serves target pools only).
pub fn snapshot(rules: &[Value], pools: &[Value], checks: &[Value]) -> Snapshot {
    let checks: BTreeMap<&str, &Value> = checks
        .iter()
        .filter_map(|check| Some((check["name"].as_str()?, check)))
        .collect();
    let pools = pools
        .iter()
        .filter_map(|pool| {
            let name = pool["name"].as_str()?.to_owned();
            let instances = pool["instances"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|url| url.as_str().map(String::from))
                .collect();
            // A pool holds at most one health check; one that names a missing check has none.
            let check = pool["healthChecks"]
                .as_array()
                .and_then(|urls| urls.first())
                .and_then(Value::as_str)
                .and_then(|url| checks.get(url_name(url)))
                .map(|check| check_spec(check));
            Some((
                name.clone(),
                Pool {
                    name,
                    instances,
                    check,
                },
            ))
        })
        .collect();
    let rules = rules
        .iter()
        .filter_map(|rule| {
            let target = rule["target"].as_str()?;
            if !target.contains("/targetPools/") {
                return None;
            }
            Some(ForwardingRule {
                name: rule["name"].as_str()?.to_owned(),
                ip: rule["IPAddress"].as_str()?.parse().ok()?,
                protocol: rule["IPProtocol"].as_str().unwrap_or("TCP").to_owned(),
                port_range: rule["portRange"].as_str().unwrap_or("1-65535").to_owned(),
                pool: url_name(target).to_owned(),
            })
        })
        .collect();
    Snapshot { rules, pools }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BASE: &str = "https://www.googleapis.com/compute/v1/projects/p";

    #[test]
    fn a_snapshot_joins_rules_pools_and_checks() {
        let rules = [
            json!({"name": "lb", "IPAddress": "198.51.100.1", "IPProtocol": "TCP", "portRange": "80-80",
                   "target": format!("{BASE}/regions/r/targetPools/lb")}),
            // Not a target pool, and no address: both left out.
            json!({"name": "bs", "IPAddress": "198.51.100.2", "backendService": "x"}),
            json!({"name": "noip", "target": format!("{BASE}/regions/r/targetPools/lb")}),
        ];
        let pools = [
            json!({"name": "lb", "instances": [format!("{BASE}/zones/z/instances/node-0")],
                   "healthChecks": [format!("{BASE}/global/httpHealthChecks/k8s-lab-node")]}),
            json!({"name": "bare"}),
        ];
        let checks = [
            json!({"name": "k8s-lab-node", "port": 10256, "requestPath": "/healthz",
                             "checkIntervalSec": 8, "timeoutSec": 1, "healthyThreshold": 1,
                             "unhealthyThreshold": 3}),
        ];
        let snapshot = snapshot(&rules, &pools, &checks);
        assert_eq!(
            snapshot.rules,
            [ForwardingRule {
                name: "lb".into(),
                ip: Ipv4Addr::new(198, 51, 100, 1),
                protocol: "TCP".into(),
                port_range: "80-80".into(),
                pool: "lb".into(),
            }]
        );
        let pool = &snapshot.pools["lb"];
        assert_eq!(url_name(&pool.instances[0]), "node-0");
        assert_eq!(
            pool.check,
            Some(CheckSpec {
                port: 10256,
                path: "/healthz".into(),
                interval: Duration::from_secs(8),
                timeout: Duration::from_secs(1),
                healthy_threshold: 1,
                unhealthy_threshold: 3,
            })
        );
        assert_eq!(snapshot.pools["bare"].check, None);
        assert!(snapshot.pools["bare"].instances.is_empty());
    }

    #[test]
    fn fields_the_api_leaves_out_take_gcps_defaults() {
        assert_eq!(check_spec(&json!({"name": "hc"})), CheckSpec::gcp_default());
        assert_eq!(
            check_spec(&json!({"port": 99999, "checkIntervalSec": 0})),
            CheckSpec::gcp_default()
        );
    }
}
