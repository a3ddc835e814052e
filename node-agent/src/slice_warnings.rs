//! Tells the operator about EndpointSlice data the dataplane leaves out: one warning per
//! problem per slice version (a sync that sees the same `resourceVersion` again says nothing),
//! and a counter by reason. The judgement is `dataplane::slice_problems`; this is the I/O.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::dataplane::slice_problems::SliceProblem;
use crate::metrics::ProblemLabels;
use crate::view::SliceView;

/// The versions already reported of the slices that have problems, by namespace/name.
#[derive(Debug, Default)]
pub struct SliceWarnings {
    reported: HashMap<String, String>,
}

impl SliceWarnings {
    /// Reports the problems of every slice not seen at this version yet, and forgets slices that
    /// are gone. Returns what it reported, as (`namespace/name`, problem). The problems were
    /// judged when the slice arrived (`SliceView::problems`): a sync only compares versions.
    pub fn observe(
        &mut self,
        slices: &[Arc<SliceView>],
        counter: &Family<ProblemLabels, Counter>,
    ) -> Vec<(String, SliceProblem)> {
        let mut reported = Vec::new();
        let mut seen = HashMap::new();
        for slice in slices {
            let Some(problems) = slice.problems.as_deref() else {
                continue;
            };
            let key = format!("{}/{}", slice.namespace, slice.name);
            if self.reported.get(&key) != Some(&problems.version) {
                for problem in &problems.problems {
                    tracing::warn!(
                        slice = %key,
                        field = %problem.field,
                        reason = problem.reason.label(),
                        "EndpointSlice {key}: {}: {}",
                        problem.field,
                        problem.message
                    );
                    counter
                        .get_or_create(&ProblemLabels {
                            reason: problem.reason.label(),
                        })
                        .inc();
                    reported.push((key.clone(), problem.clone()));
                }
            }
            seen.insert(key, problems.version.clone());
        }
        self.reported = seen;
        reported
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
    use kube::api::ObjectMeta;

    use super::*;
    use crate::dataplane::build::SERVICE_NAME_LABEL;

    fn mk_slice(name: &str, version: &str, node: Option<&str>) -> Arc<SliceView> {
        Arc::new(SliceView::from(&EndpointSlice {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                resource_version: Some(version.into()),
                labels: Some(BTreeMap::from([(
                    SERVICE_NAME_LABEL.to_owned(),
                    "echo".to_owned(),
                )])),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: vec![Endpoint {
                addresses: vec!["10.244.0.5".into()],
                node_name: node.map(Into::into),
                ..Default::default()
            }],
            ports: Some(vec![EndpointPort {
                port: Some(8080),
                ..Default::default()
            }]),
        }))
    }

    /// The counter's samples as the admin server's /metrics shows them.
    fn exposition(registry: &prometheus_client::registry::Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    }

    #[test]
    fn each_slice_version_is_reported_once_and_counted_by_reason() {
        let (registry, metrics) = crate::metrics::registry("node-0");
        let mut warnings = SliceWarnings::default();
        let counter = &metrics.endpoint_slice_problems;
        let slices = vec![
            mk_slice("echo-a", "10", None),
            mk_slice("echo-b", "11", Some("node-0")),
        ];
        let first = warnings.observe(&slices, counter);
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(first[0].0, "default/echo-a");
        assert_eq!(first[0].1.field, "endpoints[0].nodeName");
        assert!(warnings.observe(&slices, counter).is_empty(), "said once");

        // A new version of the slice is judged again.
        let changed = vec![mk_slice("echo-a", "12", None), slices[1].clone()];
        assert_eq!(warnings.observe(&changed, counter).len(), 1);
        let text = exposition(&registry);
        assert!(
            text.contains(
                "portico_agent_endpoint_slice_problems_total{reason=\"missing_node_name\"} 2"
            ),
            "{text}"
        );

        // A slice that went and came back is reported again.
        warnings.observe(&changed[1..], counter);
        assert_eq!(warnings.observe(&changed, counter).len(), 1);
    }
}
