//! The Service status Portico owns: `status.loadBalancer.ingress`, one entry per address with
//! `ipMode: VIP` (traffic arrives addressed to the VIP, which the agents' rules expect). Worked out
//! here, compared with what the object has, and written only on a difference.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// The ingress entries for the addresses, in the order given (the Service's family order).
pub fn desired_ingress(addresses: &[IpAddr]) -> Vec<LoadBalancerIngress> {
    addresses
        .iter()
        .map(|ip| LoadBalancerIngress {
            ip: Some(ip.to_string()),
            ip_mode: Some("VIP".into()),
            ..Default::default()
        })
        .collect()
}

/// The ingress entries the Service has now.
pub fn current_ingress(service: &Service) -> Vec<LoadBalancerIngress> {
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default()
}

/// The addresses in the Service's status (entries without a parseable `ip` are skipped).
pub fn current_ips(service: &Service) -> Vec<IpAddr> {
    current_ingress(service)
        .iter()
        .filter_map(|entry| entry.ip.as_deref()?.parse().ok())
        .collect()
}

/// The server-side apply body that sets exactly these entries (none clears them) and Portico's
/// condition (without one, the condition Portico wrote before is removed: it owns the field).
pub fn status_apply_body(
    ingress: &[LoadBalancerIngress],
    condition: Option<&Condition>,
) -> serde_json::Value {
    let mut status = serde_json::json!({ "loadBalancer": if ingress.is_empty() {
        serde_json::json!({})
    } else {
        serde_json::json!({ "ingress": ingress })
    } });
    if let Some(condition) = condition {
        status["conditions"] = serde_json::json!([condition]);
    }
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "status": status,
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{LoadBalancerStatus, ServiceStatus};

    use super::*;

    fn with_ingress(ingress: Vec<LoadBalancerIngress>) -> Service {
        Service {
            status: Some(ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(ingress),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn ingress_round_trips_through_the_status() {
        let ips: Vec<IpAddr> = vec![
            "198.19.0.1".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        ];
        let service = with_ingress(desired_ingress(&ips));
        assert_eq!(current_ips(&service), ips);
        assert_eq!(
            current_ingress(&service),
            desired_ingress(&ips),
            "equal: no write needed"
        );
        assert_eq!(current_ingress(&service)[0].ip_mode.as_deref(), Some("VIP"));
        assert!(current_ips(&Service::default()).is_empty());
    }

    #[test]
    fn the_apply_body_sets_or_clears_the_ingress() {
        let set = status_apply_body(&desired_ingress(&["198.19.0.1".parse().unwrap()]), None);
        assert_eq!(
            set["status"]["loadBalancer"]["ingress"][0]["ip"],
            "198.19.0.1"
        );
        let clear = status_apply_body(&[], None);
        assert_eq!(clear["status"]["loadBalancer"], serde_json::json!({}));
        assert!(clear["status"].get("conditions").is_none());
        let condition = Condition {
            type_: "portico.dev/LoadBalancerReady".into(),
            status: "True".into(),
            reason: "Ready".into(),
            message: String::new(),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
            observed_generation: None,
        };
        let with = status_apply_body(&[], Some(&condition));
        assert_eq!(with["status"]["conditions"][0]["reason"], "Ready");
    }
}
