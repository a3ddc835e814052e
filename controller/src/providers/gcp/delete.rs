//! Delete in the order the API accepts (what refers to a resource goes before it): forwarding
//! rule → target pool → the Service's own health check → firewall rules → address. The shared
//! per-cluster health check goes with the last pool that refers to it: Compute refuses its delete
//! while any pool does (as cloud-provider-gcp relies on). Orphans (Services deleted while the
//! controller was down) are found by the cluster and UID their descriptions carry.

use std::collections::{BTreeSet, HashSet};

use k8s_openapi::api::core::v1::Service;

use super::GcpProvider;
use super::compute::{GcpResult, Where, global, is_in_use, regional};
use super::desired;
use crate::nodes::LbNode;

impl GcpProvider {
    pub(super) async fn delete_rule(&self, name: &str) -> GcpResult<bool> {
        let c = &self.compute;
        let delete = regional!(c.rules.delete().set_forwarding_rule(name));
        let resource = format!("forwarding rule {name}");
        c.delete("forwardingRules.delete", &resource, Where::Region, delete)
            .await
    }

    pub(super) async fn delete_pool(&self, name: &str) -> GcpResult<bool> {
        let c = &self.compute;
        let delete = regional!(c.pools.delete().set_target_pool(name));
        let resource = format!("target pool {name}");
        c.delete("targetPools.delete", &resource, Where::Region, delete)
            .await
    }

    pub(super) async fn delete_health_check(&self, name: &str) -> GcpResult<bool> {
        let c = &self.compute;
        let delete = global!(c.health_checks.delete().set_http_health_check(name));
        let resource = format!("HTTP health check {name}");
        c.delete("httpHealthChecks.delete", &resource, Where::Global, delete)
            .await
    }

    /// Deletes the shared per-cluster check unless a target pool still refers to it (Compute
    /// answers `resourceInUseByAnotherResource`, and the check stays). True when it was deleted.
    pub(super) async fn delete_shared_health_check(&self) -> GcpResult<bool> {
        // No Service is between ensuring the check and attaching its pool to it.
        let _no_pool_joining = self.shared_check.write().await;
        match self
            .delete_health_check(&self.scope.cluster_health_check())
            .await
        {
            Err(error) if is_in_use(&error) => Ok(false),
            result => result,
        }
    }

    async fn delete_firewall(&self, name: &str) -> GcpResult<bool> {
        let c = &self.compute;
        let delete = global!(c.firewalls.delete().set_firewall(name));
        let resource = format!("firewall rule {name}");
        c.delete("firewalls.delete", &resource, Where::Global, delete)
            .await
    }

    async fn delete_address(&self, name: &str) -> GcpResult<bool> {
        let c = &self.compute;
        let delete = regional!(c.addresses.delete().set_address(name));
        let resource = format!("address {name}");
        c.delete("addresses.delete", &resource, Where::Region, delete)
            .await
    }

    /// Everything of the Service with this UID, in dependency order.
    pub(super) async fn delete_uid(&self, uid: &str) -> GcpResult<Vec<String>> {
        let name = desired::lb_name(uid);
        let mut deleted = Vec::new();
        if self.delete_rule(&name).await? {
            deleted.push(format!("deleted forwarding rule {name}"));
        }
        if self.delete_pool(&name).await? {
            deleted.push(format!("deleted target pool {name}"));
        }
        if self.delete_health_check(&name).await? {
            deleted.push(format!("deleted HTTP health check {name}"));
        }
        // Which check the pool had is unknown here (an orphan has no Service): the shared one is
        // tried too, and stays while other pools refer to it.
        if self.delete_shared_health_check().await? {
            let shared = self.scope.cluster_health_check();
            deleted.push(format!("deleted HTTP health check {shared}"));
        }
        for firewall in [
            desired::firewall_name(&name),
            desired::health_firewall_name(&name),
        ] {
            if self.delete_firewall(&firewall).await? {
                deleted.push(format!("deleted firewall rule {firewall}"));
            }
        }
        if self.delete_address(&name).await? {
            deleted.push(format!("deleted address {name}"));
        }
        Ok(deleted)
    }

    pub(super) async fn delete_lb(&self, service: &Service) -> GcpResult<Vec<String>> {
        match kube::ResourceExt::uid(service) {
            Some(uid) => self.delete_uid(&uid).await,
            None => Ok(Vec::new()),
        }
    }

    /// Only the node set changed: the pool's instances follow (a missing pool means a full ensure).
    pub(super) async fn update_hosts_lb(
        &self,
        service: &Service,
        nodes: &[LbNode],
    ) -> GcpResult<Vec<String>> {
        let Some(uid) = kube::ResourceExt::uid(service) else {
            return Ok(Vec::new());
        };
        let name = desired::lb_name(&uid);
        let Some(pool) = self.get_pool(&name).await? else {
            return Ok(self.ensure_lb(service, nodes).await?.changes);
        };
        let (instances, _) = desired::instances(nodes);
        let mut changes = Vec::new();
        self.sync_instances(&name, &pool, &instances, &mut changes)
            .await?;
        Ok(changes)
    }

    /// The UIDs of this cluster's load balancers whose Service is gone (from the descriptions of
    /// the regional addresses, pools and rules), each deleted.
    pub(super) async fn delete_orphans_lb(&self, live: &HashSet<String>) -> GcpResult<Vec<String>> {
        let c = &self.compute;
        // The three regional lists differ only in their client and item type.
        macro_rules! descriptions {
            ($client:ident, $operation:literal) => {
                every_page(|token| async move {
                    let list = regional!(
                        c.$client
                            .list()
                            .set_max_results(PAGE)
                            .set_or_clear_page_token(token.clone())
                    );
                    let list = c.call($operation, list).await?;
                    let items = list.items.into_iter().map(|item| item.description);
                    Ok((items.collect::<Vec<_>>(), list.next_page_token))
                })
                .await?
            };
        }
        let mut descriptions = descriptions!(addresses, "addresses.list");
        descriptions.extend(descriptions!(pools, "targetPools.list"));
        descriptions.extend(descriptions!(rules, "forwardingRules.list"));
        let orphans: BTreeSet<String> = descriptions
            .into_iter()
            .flatten()
            .filter_map(|d| desired::owner(&d))
            .filter(|(cluster, uid)| cluster == &self.scope.cluster && !live.contains(uid))
            .map(|(_, uid)| uid)
            .collect();
        let mut deleted = Vec::new();
        for uid in orphans {
            deleted.extend(self.delete_uid(&uid).await?);
        }
        Ok(deleted)
    }
}

/// Items per list page asked for: Compute's maximum (it may return fewer).
const PAGE: u32 = 500;

/// The items of every page of a list, following `nextPageToken` until the last page (a server
/// that hands back the token it was given ends the walk rather than looping).
async fn every_page<T, F, Fut>(mut page: F) -> GcpResult<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = GcpResult<(Vec<T>, Option<String>)>>,
{
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let (items, next) = page(token.clone()).await?;
        all.extend(items);
        match next.filter(|next| !next.is_empty()) {
            Some(next) if Some(&next) != token.as_ref() => token = Some(next),
            _ => return Ok(all),
        }
    }
}
