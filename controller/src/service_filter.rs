//! Which Services Portico acts on: type LoadBalancer, and spec.loadBalancerClass `portico.dev/lb`
//! (or unset when the controller is the cluster's default implementation). Any other Service is
//! some other controller's, and Portico must not touch it.

use k8s_openapi::api::core::v1::Service;
use portico_api::keys::LOAD_BALANCER_CLASS;

pub fn is_portico_service(service: &Service, default_class: bool) -> bool {
    let Some(spec) = service.spec.as_ref() else {
        return false;
    };
    if spec.type_.as_deref() != Some("LoadBalancer") {
        return false;
    }
    match spec.load_balancer_class.as_deref() {
        Some(class) => class == LOAD_BALANCER_CLASS,
        None => default_class,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ServiceSpec;

    use super::*;

    fn mk_service(type_: &str, class: Option<&str>) -> Service {
        Service {
            spec: Some(ServiceSpec {
                type_: Some(type_.into()),
                load_balancer_class: class.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn acts_on_its_class_and_on_unset_class_only_as_default() {
        let cases = [
            ("LoadBalancer", Some(LOAD_BALANCER_CLASS), false, true),
            ("LoadBalancer", Some(LOAD_BALANCER_CLASS), true, true),
            ("LoadBalancer", None, false, false),
            ("LoadBalancer", None, true, true),
            ("LoadBalancer", Some("service.k8s.aws/nlb"), true, false),
            ("NodePort", Some(LOAD_BALANCER_CLASS), true, false),
            ("ClusterIP", None, true, false),
        ];
        for (type_, class, default_class, expected) in cases {
            let service = mk_service(type_, class);
            assert_eq!(
                is_portico_service(&service, default_class),
                expected,
                "{type_} {class:?} default={default_class}"
            );
        }
        assert!(!is_portico_service(&Service::default(), true), "no spec");
    }
}
