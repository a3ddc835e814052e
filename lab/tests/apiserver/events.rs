//! Events recorded through events.k8s.io/v1 (kube-runtime's Recorder) are the core/v1 Events
//! `kubectl describe` reads, as in a cluster.

use k8s_openapi::api::core::v1::{Event as CoreEvent, Service};
use k8s_openapi::api::events::v1::Event as EventsV1;
use kube::Resource;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::common::{lab, mk_service};

#[tokio::test]
async fn events_recorded_through_events_k8s_io_are_listed_as_core_events_of_the_object() {
    let lab = lab().await;
    let client = lab.client().await.unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc = services
        .create(
            &PostParams::default(),
            &mk_service("web", "LoadBalancer", &[80]),
        )
        .await
        .unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "portico-controller".into(),
            instance: Some("pod-1".into()),
        },
    );
    let event = Event {
        type_: EventType::Normal,
        reason: "EnsuredLoadBalancer".into(),
        note: Some("Ensured load balancer".into()),
        action: "Ensure".into(),
        secondary: None,
    };
    recorder
        .publish(&event, &svc.object_ref(&()))
        .await
        .unwrap();
    recorder
        .publish(&event, &svc.object_ref(&()))
        .await
        .unwrap();

    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let listed = core
        .list(&ListParams::default().fields("involvedObject.name=web"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let recorded = &listed.items[0];
    assert_eq!(recorded.reason.as_deref(), Some("EnsuredLoadBalancer"));
    assert_eq!(recorded.message.as_deref(), Some("Ensured load balancer"));
    assert_eq!(recorded.involved_object.kind.as_deref(), Some("Service"));
    assert_eq!(
        recorded.reporting_component.as_deref(),
        Some("portico-controller")
    );

    let v1: Api<EventsV1> = Api::namespaced(client, "default");
    let listed = v1
        .list(&ListParams::default().fields("regarding.name=web"))
        .await
        .unwrap();
    assert_eq!(
        listed.items[0].series.as_ref().map(|s| s.count),
        Some(2),
        "the second publish updates the series"
    );
}
