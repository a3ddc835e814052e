use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::*;

fn mk_pool(addresses: &[&str]) -> AddressPoolSpec {
    AddressPoolSpec {
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
        auto_assign: true,
        avoid_buggy_ips: false,
        service_allocation: None,
    }
}

fn mk_allocation(f: impl FnOnce(&mut ServiceAllocation)) -> AddressPoolSpec {
    let mut allocation = ServiceAllocation::default();
    f(&mut allocation);
    AddressPoolSpec {
        service_allocation: Some(allocation),
        ..mk_pool(&["198.19.0.0/24"])
    }
}

fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelector {
    LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }]),
        match_labels: None,
    }
}

#[test]
fn valid_pools_are_accepted() {
    let valid = [
        mk_pool(&["192.168.10.0/24"]),
        mk_pool(&["192.168.10.10-192.168.10.20"]),
        mk_pool(&["fc00:f853:ccd:e799::/124"]),
        mk_pool(&["2001:db8::10-2001:db8::ff"]),
        mk_pool(&[
            "198.18.0.200-198.18.0.250",
            "198.19.0.0/24",
            "2001:db8::/120",
        ]),
        mk_pool(&["10.0.0.7/32", "10.0.0.8-10.0.0.8"]),
        mk_allocation(|a| {
            a.priority = Some(10);
            a.namespaces = vec!["team-a".into(), "kube-system".into()];
            a.namespace_selectors = vec![expression("portico.dev/tier", "In", &["gold"])];
            a.service_selectors = vec![expression("app", "Exists", &[])];
        }),
    ];
    for spec in valid {
        assert_eq!(spec.validate(), Ok(()), "{:?}", spec.addresses);
    }
}

/// Each malformed pool is rejected, with an error on the named field whose message contains
/// the given words.
#[test]
fn malformed_pools_are_rejected_naming_the_field() {
    let cases: Vec<(AddressPoolSpec, &str, &str)> = vec![
        (mk_pool(&[]), "spec.addresses", "at least one"),
        (
            mk_pool(&["192.168.10.0/33"]),
            "spec.addresses[0]",
            "from 0 to 32",
        ),
        (
            mk_pool(&["192.168.10.5/24"]),
            "spec.addresses[0]",
            "did you mean 192.168.10.0/24",
        ),
        (
            mk_pool(&["192.168.300.0/24"]),
            "spec.addresses[0]",
            "not an IP address",
        ),
        (
            mk_pool(&["10.0.0.1", "10.1.0.0/16"]),
            "spec.addresses[0]",
            "10.0.0.1/32",
        ),
        (
            mk_pool(&["10.0.0.0/24", "10.0.0.20-10.0.0.9"]),
            "spec.addresses[1]",
            "starts after it ends",
        ),
        (
            mk_pool(&["10.0.0.1-2001:db8::9"]),
            "spec.addresses[0]",
            "mixes IPv4 and IPv6",
        ),
        (
            mk_pool(&["10.0.0.0/24", "10.0.0.128/25"]),
            "spec.addresses[1]",
            "overlaps spec.addresses[0]",
        ),
        (
            mk_pool(&["2001:db8::/64", "2001:db8::5-2001:db8::9"]),
            "spec.addresses[1]",
            "overlaps",
        ),
        (
            mk_pool(&["10.0.0.1 -10.0.0.9"]),
            "spec.addresses[0]",
            "white space",
        ),
        (
            mk_pool(&["2001:db8::/129"]),
            "spec.addresses[0]",
            "from 0 to 128",
        ),
        (
            mk_pool(&["10.0.0.0/24", ""]),
            "spec.addresses[1]",
            "must not be empty",
        ),
        (
            mk_pool(&["pool-a"]),
            "spec.addresses[0]",
            "not an IP address",
        ),
        (
            mk_allocation(|a| a.namespaces = vec!["Team_A".into()]),
            "spec.serviceAllocation.namespaces[0]",
            "not a valid namespace name",
        ),
        (
            mk_allocation(|a| a.service_selectors = vec![expression("app", "In", &[])]),
            "spec.serviceAllocation.serviceSelectors[0].matchExpressions[0].values",
            "must be non-empty",
        ),
        (
            mk_allocation(|a| a.namespace_selectors = vec![expression("app", "Equals", &["x"])]),
            "spec.serviceAllocation.namespaceSelectors[0].matchExpressions[0].operator",
            "not one of In, NotIn, Exists, DoesNotExist",
        ),
        (
            mk_allocation(|a| a.service_selectors = vec![expression("bad key!", "Exists", &[])]),
            "spec.serviceAllocation.serviceSelectors[0].matchExpressions[0].key",
            "label key",
        ),
    ];
    assert!(cases.len() >= 10);
    for (spec, field, words) in cases {
        let errors = spec
            .validate()
            .expect_err(&format!("{spec:?} must be rejected"));
        let error = errors
            .0
            .iter()
            .find(|e| e.field == field)
            .unwrap_or_else(|| panic!("no error on {field} for {:?}: {errors}", spec.addresses));
        assert!(
            error.message.contains(words),
            "{field}: {:?} lacks {words:?}",
            error.message
        );
    }
}

#[test]
fn every_error_is_reported_not_only_the_first() {
    let errors = mk_pool(&["10.0.0.9-10.0.0.1", "bad", "10.1.0.1/8"])
        .validate()
        .unwrap_err();
    for field in [
        "spec.addresses[0]",
        "spec.addresses[1]",
        "spec.addresses[2]",
    ] {
        assert!(errors.names_field(field), "{field} missing from {errors}");
    }
}

#[test]
fn defaults_apply_when_fields_are_omitted() {
    let spec: AddressPoolSpec = serde_json::from_value(serde_json::json!({
        "addresses": ["198.19.0.0/24"]
    }))
    .unwrap();
    assert!(spec.auto_assign);
    assert!(!spec.avoid_buggy_ips);
    let round_trip = serde_json::to_value(&spec).unwrap();
    assert_eq!(
        round_trip["avoidBuggyIPs"], false,
        "field keeps MetalLB's spelling"
    );
}

/// The CEL rules in the generated CRD, evaluated with the Kubernetes CEL libraries: the API
/// server itself rejects what the schema can express.
mod schema_rules {
    use kube::CustomResourceExt;
    use kube_cel::Validator;

    use super::*;

    fn spec_schema() -> serde_json::Value {
        let crd = serde_json::to_value(AddressPool::crd()).unwrap();
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
    }

    fn cel_errors(addresses: &[&str]) -> Vec<String> {
        let object = serde_json::json!({ "addresses": addresses });
        match Validator::new().validate(&spec_schema(), &object, None) {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .into_vec()
                .into_iter()
                .map(|e| e.to_string())
                .collect(),
        }
    }

    #[test]
    fn cel_accepts_valid_entries() {
        for ok in [
            "192.168.10.0/24",
            "192.168.10.10-192.168.10.20",
            "2001:db8::/120",
            "2001:db8::1-2001:db8::9",
        ] {
            assert_eq!(cel_errors(&[ok]), Vec::<String>::new(), "{ok}");
        }
    }

    #[test]
    fn cel_rejects_what_it_can_express() {
        for (bad, words) in [
            ("192.168.10.5/24", "host bits"),
            ("192.168.10.0/40", "must be a CIDR"),
            ("10.0.0.1-2001:db8::1", "must be a CIDR"),
            ("10.0.0.1-10.0.0", "must be a CIDR"),
        ] {
            let errors = cel_errors(&[bad]);
            assert!(
                errors.iter().any(|e| e.contains(words)),
                "{bad}: {errors:?}"
            );
        }
    }
}
