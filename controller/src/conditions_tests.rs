use k8s_openapi::api::core::v1::ServiceStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;
use crate::ipam::ServiceKey;

fn at(seconds: i64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
}

fn with_condition(condition: Condition) -> Service {
    Service {
        metadata: ObjectMeta {
            generation: Some(3),
            ..Default::default()
        },
        status: Some(ServiceStatus {
            conditions: Some(vec![condition]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn errors_become_reasons_a_person_can_act_on() {
    let subnets = ProviderError::invalid(ann::AWS_SUBNETS, "not set, and no subnet is tagged");
    assert_eq!(
        Readiness::from_provider_error(&subnets).reason,
        WAITING_FOR_SUBNETS
    );
    let bad = ProviderError::invalid(ann::AWS_HEALTHCHECK_INTERVAL, "\"often\" is not");
    let readiness = Readiness::from_provider_error(&bad);
    assert_eq!(readiness.reason, INVALID_CONFIGURATION);
    assert!(readiness.message.contains(ann::AWS_HEALTHCHECK_INTERVAL));
    let throttled = ProviderError::Cloud {
        operation: "CreateLoadBalancer",
        code: "Throttling".into(),
        message: "Rate exceeded".into(),
    };
    assert_eq!(Readiness::from_provider_error(&throttled).reason, THROTTLED);
    let quota = ProviderError::Cloud {
        operation: "CreateLoadBalancer",
        code: "TooManyLoadBalancers".into(),
        message: "quota".into(),
    };
    let readiness = Readiness::from_provider_error(&quota);
    assert_eq!(readiness.reason, CLOUD_ERROR);
    assert!(readiness.message.contains("TooManyLoadBalancers"));
    assert!(!readiness.ready);

    let exhausted = IpamError::PoolExhausted {
        pools: vec!["lab".into()],
        family: portico_api::IpFamily::V4,
    };
    assert_eq!(
        Readiness::from_ipam_error(&exhausted).reason,
        POOL_EXHAUSTED
    );
    let none = IpamError::NoPoolForService {
        service: ServiceKey::new("default", "web"),
    };
    assert_eq!(Readiness::from_ipam_error(&none).reason, NO_ADDRESS_POOL);
    assert_eq!(Readiness::no_eligible_nodes().reason, NO_ELIGIBLE_NODES);
}

#[test]
fn an_equal_condition_needs_no_write_and_keeps_its_transition_time() {
    let ready = Readiness::ready("load balancer ready");
    let written = condition(&Service::default(), &ready, at(100));
    assert_eq!(written.type_, LOAD_BALANCER_READY_CONDITION);
    assert_eq!(written.status, "True");
    let service = with_condition(written);
    assert!(is_current(&service, &ready));
    assert!(!is_current(&service, &Readiness::no_eligible_nodes()));
    assert!(!is_current(&Service::default(), &ready));

    // Same status, another message: the transition time stays.
    let again = condition(&service, &Readiness::ready("other"), at(200));
    assert_eq!(again.last_transition_time, at(100));
    assert_eq!(again.observed_generation, Some(3));
    // Another status: it moves.
    let failed = condition(&service, &Readiness::no_eligible_nodes(), at(300));
    assert_eq!(
        (failed.status.as_str(), failed.last_transition_time),
        ("False", at(300))
    );
}
