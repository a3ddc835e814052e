//! The bare-metal provider through the seam: the Events and the condition bare metal had before
//! it became a provider.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use kube::api::ObjectMeta;
use kube::runtime::reflector;
use portico_api::keys::reason;
use portico_api::{AddressPool, AddressPoolSpec};

use super::{BareMetal, Ipam};
use crate::conditions::{POOL_EXHAUSTED, Readiness};
use crate::providers::{LoadBalancerProvider, ProviderError};
use crate::reconcile::lock;

fn mk_service(name: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            ports: Some(vec![ServicePort {
                port: 80,
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn bare_metal_with_pool(addresses: &[&str]) -> BareMetal {
    let (pools, _) = reflector::store();
    let (namespaces, _) = reflector::store();
    let ipam = std::sync::Arc::new(Ipam::new(pools, namespaces));
    let pool = AddressPool::new(
        "lab",
        AddressPoolSpec {
            addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
            auto_assign: true,
            avoid_buggy_ips: false,
            service_allocation: None,
        },
    );
    lock(&ipam.allocator).set_pools(&[pool]);
    BareMetal::new(ipam)
}

#[tokio::test]
async fn ensure_assigns_once_with_ip_allocated_and_ensure_deleted_releases() {
    let provider = bare_metal_with_pool(&["198.19.0.10/32"]);
    let service = mk_service("web");
    let ensured = provider.ensure(&service, &[]).await.expect("assigned");
    let ips: Vec<_> = ensured
        .status
        .ingress
        .iter()
        .filter_map(|i| i.ip.clone())
        .collect();
    assert_eq!(ips, ["198.19.0.10"]);
    let events: Vec<_> = ensured
        .events
        .iter()
        .map(|e| (e.reason, e.note.clone()))
        .collect();
    assert_eq!(
        events,
        [(
            reason::IP_ALLOCATED,
            "Assigned IP [\"198.19.0.10\"] from pool lab".to_string()
        )]
    );
    assert_eq!(
        ensured.ready_message.as_deref(),
        Some("address 198.19.0.10 assigned; the agents announce it")
    );
    assert!(!provider.uses_nodes() && !provider.lifecycle_events());

    let again = provider.ensure(&service, &[]).await.expect("kept");
    assert!(again.events.is_empty(), "a resync announces nothing");
    assert!(provider.get(&service).await.expect("get").is_some());

    let released = provider.ensure_deleted(&service).await.expect("released");
    assert_eq!(released, ["198.19.0.10"]);
    assert_eq!(
        provider.deleted_note(&released, false).as_deref(),
        Some("Released IP [\"198.19.0.10\"]")
    );
    assert_eq!(provider.deleted_note(&[], false), None);
    assert!(provider.get(&service).await.expect("get").is_none());
}

#[tokio::test]
async fn an_exhausted_pool_is_an_allocation_error_with_the_ipam_label_and_condition() {
    let provider = bare_metal_with_pool(&["198.19.0.10/32"]);
    provider
        .ensure(&mk_service("first"), &[])
        .await
        .expect("first fits");
    let error = provider
        .ensure(&mk_service("second"), &[])
        .await
        .expect_err("the pool is full");
    let ProviderError::Allocation(ipam) = &error else {
        panic!("not an allocation error: {error}");
    };
    assert_eq!(error.label(), ipam.label());
    assert_eq!(error.failure_event().0, reason::ALLOCATION_FAILED);
    assert_eq!(error.failure_event().1, ipam.to_string());
    assert_eq!(
        Readiness::from_provider_error(&error).reason,
        POOL_EXHAUSTED
    );
}
