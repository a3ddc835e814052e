//! Twenty-one inputs a user can get wrong. Each gives a Warning Event on the Service whose message
//! names the field or annotation (and quotes the bad value where there is one), and none of
//! them costs a Service that already has an address its address.

use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use portico_api::keys::reason::ALLOCATION_FAILED;
use portico_api::keys::service::{ADDRESS_POOL, ALLOW_SHARED_IP, LOAD_BALANCER_IPS};
use portico_tests::lab_cluster::{LabCluster, ingress_ips, mk_lb_service};

fn with_spec(
    mut service: Service,
    f: impl FnOnce(&mut k8s_openapi::api::core::v1::ServiceSpec),
) -> Service {
    f(service.spec.as_mut().unwrap());
    service
}

fn local(service: Service) -> Service {
    with_spec(service, |spec| {
        spec.external_traffic_policy = Some("Local".into())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_warning_events_naming_the_field_and_nobody_loses_an_address() {
    let cluster = LabCluster::start().await;
    let _controller = cluster.spawn_controller("controller", &[]);
    cluster.create_pool("main", &["198.19.1.0/28"], true).await;
    cluster
        .create_pool("manual", &["198.19.2.0/28"], false)
        .await;
    cluster.create_pool("tiny", &["198.19.3.1/32"], false).await;
    let restricted = portico_api::AddressPoolSpec {
        addresses: vec!["198.19.4.0/28".into()],
        auto_assign: false,
        avoid_buggy_ips: false,
        service_allocation: Some(portico_api::ServiceAllocation {
            namespaces: vec!["team-a".into()],
            ..Default::default()
        }),
    };
    cluster.create_pool_spec("restricted", restricted).await;

    // Services that hold addresses before anything goes wrong.
    let holders = [
        (
            "holder",
            mk_lb_service("holder", 80, &[(LOAD_BALANCER_IPS, "198.19.1.5")]),
        ),
        (
            "sharer",
            mk_lb_service(
                "sharer",
                80,
                &[(LOAD_BALANCER_IPS, "198.19.1.6"), (ALLOW_SHARED_IP, "k")],
            ),
        ),
        (
            "tiny-holder",
            mk_lb_service("tiny-holder", 80, &[(ADDRESS_POOL, "tiny")]),
        ),
        ("edited", mk_lb_service("edited", 80, &[])),
    ];
    let mut held = Vec::new();
    for (name, service) in &holders {
        cluster.create_service("default", service).await;
        held.push((
            name.to_string(),
            cluster.wait_for_ingress("default", name).await,
        ));
    }

    // (Service, what the Event must say)
    let cases: Vec<(Service, Vec<&str>)> = vec![
        (
            mk_lb_service("bad-ip", 80, &[(LOAD_BALANCER_IPS, "10.0.0.x")]),
            vec![LOAD_BALANCER_IPS, "\"10.0.0.x\"", "not an IP address"],
        ),
        (
            mk_lb_service("bad-octet", 80, &[(LOAD_BALANCER_IPS, "198.19.1.300")]),
            vec![LOAD_BALANCER_IPS, "\"198.19.1.300\""],
        ),
        (
            mk_lb_service(
                "empty-entry",
                80,
                &[(LOAD_BALANCER_IPS, "198.19.1.7,,198.19.1.8")],
            ),
            vec![LOAD_BALANCER_IPS, "empty entry"],
        ),
        (
            mk_lb_service(
                "two-v4",
                80,
                &[(LOAD_BALANCER_IPS, "198.19.1.7,198.19.1.8")],
            ),
            vec![LOAD_BALANCER_IPS, "two IPv4 addresses"],
        ),
        (
            mk_lb_service("no-pool-ip", 80, &[(LOAD_BALANCER_IPS, "203.0.113.7")]),
            vec![LOAD_BALANCER_IPS, "203.0.113.7", "in no AddressPool"],
        ),
        (
            with_spec(mk_lb_service("lbip-no-pool", 80, &[]), |s| {
                s.load_balancer_ip = Some("203.0.113.8".into())
            }),
            vec!["spec.loadBalancerIP", "203.0.113.8", "in no AddressPool"],
        ),
        (
            mk_lb_service("taken", 80, &[(LOAD_BALANCER_IPS, "198.19.1.5")]),
            vec!["198.19.1.5", "default/holder", ALLOW_SHARED_IP],
        ),
        (
            mk_lb_service(
                "other-key",
                81,
                &[
                    (LOAD_BALANCER_IPS, "198.19.1.6"),
                    (ALLOW_SHARED_IP, "other"),
                ],
            ),
            vec!["198.19.1.6", "\"other\" here but \"k\" on the holder"],
        ),
        (
            mk_lb_service(
                "port-clash",
                80,
                &[(LOAD_BALANCER_IPS, "198.19.1.6"), (ALLOW_SHARED_IP, "k")],
            ),
            vec!["198.19.1.6", "both Services use port 80/TCP"],
        ),
        (
            local(mk_lb_service(
                "policy-differs",
                81,
                &[(LOAD_BALANCER_IPS, "198.19.1.6"), (ALLOW_SHARED_IP, "k")],
            )),
            vec!["externalTrafficPolicy is Local here but Cluster on the holder"],
        ),
        (
            mk_lb_service("unknown-pool", 80, &[(ADDRESS_POOL, "nope")]),
            vec![ADDRESS_POOL, "no AddressPool named \"nope\""],
        ),
        (
            mk_lb_service("empty-pool", 80, &[(ADDRESS_POOL, "")]),
            vec![ADDRESS_POOL, "\"\""],
        ),
        (
            mk_lb_service("empty-key", 80, &[(ALLOW_SHARED_IP, "")]),
            vec![ALLOW_SHARED_IP, "\"\""],
        ),
        (
            mk_lb_service("exhausted", 80, &[(ADDRESS_POOL, "tiny")]),
            vec!["\"tiny\"", "no free IPv4 address"],
        ),
        (
            mk_lb_service("not-allowed", 80, &[(ADDRESS_POOL, "restricted")]),
            vec!["\"restricted\"", "spec.serviceAllocation"],
        ),
        (
            mk_lb_service(
                "wrong-pool",
                80,
                &[(ADDRESS_POOL, "main"), (LOAD_BALANCER_IPS, "198.19.2.3")],
            ),
            vec!["198.19.2.3", "\"manual\""],
        ),
        (
            mk_lb_service("v6-in-v4", 80, &[(LOAD_BALANCER_IPS, "2001:db8::5")]),
            vec!["2001:db8::5", "spec.ipFamilies"],
        ),
        (
            with_spec(
                mk_lb_service("lbip-conflict", 80, &[(LOAD_BALANCER_IPS, "198.19.1.9")]),
                |s| s.load_balancer_ip = Some("198.19.1.10".into()),
            ),
            vec!["spec.loadBalancerIP", "198.19.1.10", LOAD_BALANCER_IPS],
        ),
        (
            with_spec(mk_lb_service("lbip-taken", 80, &[]), |s| {
                s.load_balancer_ip = Some("198.19.1.5".into())
            }),
            vec!["198.19.1.5", "default/holder"],
        ),
        (
            mk_lb_service(
                "spaces",
                80,
                &[(LOAD_BALANCER_IPS, "198.19.1.7, 198.19.1.8")],
            ),
            vec![LOAD_BALANCER_IPS],
        ),
    ];
    assert_eq!(cases.len(), 20, "plus the edit below makes 21");
    for (service, _) in &cases {
        cluster.create_service("default", service).await;
    }
    // The twenty-first: a Service that has an address is edited into a malformed one.
    cluster
        .services("default")
        .patch(
            "edited",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({ "metadata": { "annotations": { LOAD_BALANCER_IPS: "not-an-ip" } } })),
        )
        .await
        .unwrap();

    for (service, words) in &cases {
        let name = service.metadata.name.as_deref().unwrap();
        cluster
            .wait_for_warning("default", name, ALLOCATION_FAILED, words)
            .await;
        let now = ingress_ips(&cluster.services("default").get(name).await.unwrap());
        assert!(now.is_empty(), "{name} must not get an address: {now:?}");
    }
    cluster
        .wait_for_warning(
            "default",
            "edited",
            ALLOCATION_FAILED,
            &[LOAD_BALANCER_IPS, "\"not-an-ip\""],
        )
        .await;

    for (name, ips) in &held {
        let now = ingress_ips(&cluster.services("default").get(name).await.unwrap());
        assert_eq!(&now, ips, "{name} kept its address through every bad input");
    }
}
