//! The target pool: created with the instances, the health check and the session affinity;
//! afterwards its health check is swapped (one at a time: a pool holds one) and its instances
//! added and removed in batches. Session affinity is fixed at creation, so a change remakes it.

use google_cloud_compute_v1::model::target_pool::SessionAffinity;
use google_cloud_compute_v1::model::{
    HealthCheckReference, InstanceReference, TargetPool, TargetPoolsAddHealthCheckRequest,
    TargetPoolsAddInstanceRequest, TargetPoolsRemoveHealthCheckRequest,
    TargetPoolsRemoveInstanceRequest,
};

use super::GcpProvider;
use super::compute::{GcpResult, Where, regional};
use super::desired::DesiredLb;
use super::ensure::{last_segment, url_key};

/// Instances per addInstance/removeInstance call (the API's limit, cloud-provider-gcp's batch).
pub const INSTANCE_BATCH: usize = 1000;

/// Which way a pool's instances or health checks change.
#[derive(Clone, Copy, Debug)]
enum Action {
    Add,
    Remove,
}

fn affinity(value: &str) -> SessionAffinity {
    if value == "CLIENT_IP" {
        SessionAffinity::ClientIp
    } else {
        SessionAffinity::None
    }
}

impl GcpProvider {
    pub(super) async fn get_pool(&self, name: &str) -> GcpResult<Option<TargetPool>> {
        let c = &self.compute;
        let get = regional!(c.pools.get().set_target_pool(name));
        c.find("targetPools.get", get).await
    }

    /// Creates the pool or brings its health check, session affinity and instances in line.
    /// Returns the names of the health checks the pool left.
    pub(super) async fn ensure_pool(
        &self,
        want: &DesiredLb,
        changes: &mut Vec<String>,
    ) -> GcpResult<Vec<String>> {
        let c = &self.compute;
        let resource = format!("target pool {}", want.name);
        let hc_url = self.scope.health_check_url(&want.health_check.name);
        let mut have = self.get_pool(&want.name).await?;
        if let Some(pool) = &have
            && pool
                .session_affinity
                .clone()
                .unwrap_or(SessionAffinity::None)
                != affinity(&want.affinity)
        {
            // Session affinity is fixed at creation: the rule and the pool are made again.
            self.delete_rule(&want.name).await?;
            self.delete_pool(&want.name).await?;
            changes.push(format!("deleted {resource} to change its session affinity"));
            have = None;
        }
        let Some(pool) = have else {
            let body = TargetPool::new()
                .set_name(&want.name)
                .set_description(&want.description)
                .set_session_affinity(affinity(&want.affinity))
                .set_health_checks([hc_url.clone()])
                .set_instances(want.instances.clone());
            let insert = regional!(c.pools.insert(), body);
            c.write("targetPools.insert", &resource, Where::Region, insert)
                .await?;
            changes.push(format!(
                "created {resource} with {} instances",
                want.instances.len()
            ));
            return Ok(Vec::new());
        };
        let others: Vec<String> = pool
            .health_checks
            .iter()
            .filter(|url| url_key(url) != url_key(&hc_url))
            .cloned()
            .collect();
        let dropped: Vec<String> = others.iter().map(|u| last_segment(u).to_owned()).collect();
        if !others.is_empty() {
            // A pool holds one health check: the old one leaves before the new one joins.
            self.pool_health_checks(&want.name, Action::Remove, &others)
                .await?;
            changes.push(format!(
                "removed HTTP health check {} from {resource}",
                dropped.join(", ")
            ));
        }
        if !pool
            .health_checks
            .iter()
            .any(|url| url_key(url) == url_key(&hc_url))
        {
            self.pool_health_checks(&want.name, Action::Add, std::slice::from_ref(&hc_url))
                .await?;
            changes.push(format!(
                "added HTTP health check {} to {resource}",
                want.health_check.name
            ));
        }
        self.sync_instances(&want.name, &pool, &want.instances, changes)
            .await?;
        Ok(dropped)
    }

    /// Adds and removes the pool's instances in batches.
    pub(super) async fn sync_instances(
        &self,
        name: &str,
        pool: &TargetPool,
        want: &[String],
        changes: &mut Vec<String>,
    ) -> GcpResult<()> {
        let resource = format!("target pool {name}");
        let have: Vec<&str> = pool.instances.iter().map(|u| url_key(u)).collect();
        let add: Vec<&String> = want
            .iter()
            .filter(|u| !have.contains(&url_key(u)))
            .collect();
        let remove: Vec<&String> = pool
            .instances
            .iter()
            .filter(|u| !want.iter().any(|w| url_key(w) == url_key(u)))
            .collect();
        for (action, urls) in [(Action::Add, add), (Action::Remove, remove)] {
            for batch in urls.chunks(INSTANCE_BATCH) {
                self.pool_instances(name, action, batch).await?;
                let (verb, to) = match action {
                    Action::Add => ("added", "to"),
                    Action::Remove => ("removed", "from"),
                };
                changes.push(format!("{verb} {} instances {to} {resource}", batch.len()));
            }
        }
        Ok(())
    }

    /// One addHealthCheck or removeHealthCheck call on the pool.
    async fn pool_health_checks(
        &self,
        name: &str,
        action: Action,
        urls: &[String],
    ) -> GcpResult<()> {
        let c = &self.compute;
        let resource = format!("target pool {name}");
        let refs = urls
            .iter()
            .map(|u| HealthCheckReference::new().set_health_check(u));
        match action {
            Action::Add => {
                let body = TargetPoolsAddHealthCheckRequest::new().set_health_checks(refs);
                let add = regional!(c.pools.add_health_check().set_target_pool(name), body);
                let op = "targetPools.addHealthCheck";
                c.write(op, &resource, Where::Region, add).await
            }
            Action::Remove => {
                let body = TargetPoolsRemoveHealthCheckRequest::new().set_health_checks(refs);
                let remove = regional!(c.pools.remove_health_check().set_target_pool(name), body);
                let op = "targetPools.removeHealthCheck";
                c.write(op, &resource, Where::Region, remove).await
            }
        }
    }

    /// One addInstance or removeInstance call on the pool.
    async fn pool_instances(&self, name: &str, action: Action, urls: &[&String]) -> GcpResult<()> {
        let c = &self.compute;
        let resource = format!("target pool {name}");
        let refs = urls
            .iter()
            .map(|u| InstanceReference::new().set_instance(*u));
        match action {
            Action::Add => {
                let body = TargetPoolsAddInstanceRequest::new().set_instances(refs);
                let add = regional!(c.pools.add_instance().set_target_pool(name), body);
                c.write("targetPools.addInstance", &resource, Where::Region, add)
                    .await
            }
            Action::Remove => {
                let body = TargetPoolsRemoveInstanceRequest::new().set_instances(refs);
                let remove = regional!(c.pools.remove_instance().set_target_pool(name), body);
                c.write(
                    "targetPools.removeInstance",
                    &resource,
                    Where::Region,
                    remove,
                )
                .await
            }
        }
    }
}
