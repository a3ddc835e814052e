//! On start: the load balancers this cluster's Portico made for Services that no longer exist
//! (deleted while the controller was down, or their finalizer removed by hand) are deleted.
//! Found by name prefix, then by tags: the cluster tag `owned` and a Service UID not in the
//! cluster.

use std::collections::HashSet;

use super::AwsProvider;
use super::calls::sdk_error;
use crate::providers::ProviderError;
use portico_api::keys::aws_tag;

/// DescribeTags takes at most 20 ARNs.
const TAGS_PER_CALL: usize = 20;

impl AwsProvider {
    pub(super) async fn delete_orphans_lb(
        &self,
        live_uids: &HashSet<String>,
    ) -> Result<Vec<String>, ProviderError> {
        let mut candidates: Vec<(String, String)> = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            const OP: &str = "DescribeLoadBalancers";
            let page = self
                .calls
                .call(OP, || async {
                    self.elb
                        .describe_load_balancers()
                        .set_marker(marker.clone())
                        .send()
                        .await
                        .map_err(|e| sdk_error(OP, e))
                })
                .await?;
            candidates.extend(page.load_balancers().iter().filter_map(|lb| {
                let name = lb.load_balancer_name()?;
                let arn = lb.load_balancer_arn()?;
                name.starts_with("portico-")
                    .then(|| (arn.to_string(), name.to_string()))
            }));
            marker = page.next_marker().map(String::from);
            if marker.is_none() {
                break;
            }
        }
        let cluster_tag = format!("{}{}", aws_tag::CLUSTER_PREFIX, self.cluster);
        let mut deleted = Vec::new();
        for chunk in candidates.chunks(TAGS_PER_CALL) {
            const OP: &str = "DescribeTags";
            let arns: Vec<String> = chunk.iter().map(|(arn, _)| arn.clone()).collect();
            let tags = self
                .calls
                .call(OP, || async {
                    self.elb
                        .describe_tags()
                        .set_resource_arns(Some(arns.clone()))
                        .send()
                        .await
                        .map_err(|e| sdk_error(OP, e))
                })
                .await?;
            for description in tags.tag_descriptions() {
                let tag = |key: &str| {
                    description
                        .tags()
                        .iter()
                        .find(|t| t.key() == Some(key))
                        .and_then(|t| t.value())
                };
                let Some(uid) = tag(aws_tag::SERVICE_UID) else {
                    continue;
                };
                if tag(&cluster_tag) != Some("owned") || live_uids.contains(uid) {
                    continue;
                }
                let arn = description.resource_arn().unwrap_or_default();
                let name = chunk
                    .iter()
                    .find(|(a, _)| a == arn)
                    .map(|(_, n)| n.as_str())
                    .unwrap_or(arn);
                tracing::info!(
                    load_balancer = name,
                    service = tag(aws_tag::SERVICE_NAME),
                    "deleting the load balancer of a Service that no longer exists"
                );
                deleted.extend(self.delete_by_arn(arn, name).await?);
            }
        }
        Ok(deleted)
    }
}
