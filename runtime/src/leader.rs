//! Lease-based leader election, with client-go's `leaderelection` semantics, so Portico's
//! controller and any client-go component agree on who leads:
//!
//! ```text
//!   candidate ──get Lease──▶ absent?            create it, holding it        ─▶ leader
//!                          ▶ held by another and renewed within leaseDuration ─▶ wait retryPeriod
//!                          ▶ ours, or expired   replace (resourceVersion precondition) ─▶ leader
//!   leader ──every retryPeriod──▶ renew; no successful renew within renewDeadline ─▶ lost
//! ```
//! Expiry is judged by the local clock from when this candidate last saw the record change
//! (client-go's `observedTime`), never by comparing timestamps written by another machine, so
//! clock skew between candidates cannot make two of them lead.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::{oneshot, watch};

/// client-go's defaults for controllers (kube-controller-manager uses the same).
#[derive(Clone, Debug)]
pub struct LeaderElectionConfig {
    /// How long a lease holds without renewal before others may take it.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up leading.
    pub renew_deadline: Duration,
    /// How often candidates retry and the leader renews.
    pub retry_period: Duration,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        LeaderElectionConfig {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leader election request for Lease {namespace}/{name} failed: {source}")]
    Api {
        namespace: String,
        name: String,
        source: kube::Error,
    },
}

impl LeaderError {
    pub fn label(&self) -> &'static str {
        match self {
            LeaderError::Api { .. } => "api",
        }
    }
}

/// The last record this candidate saw, and when it first saw it (local monotonic clock).
struct Observed {
    spec: LeaseSpec,
    at: Instant,
}

pub struct LeaderElector {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    config: LeaderElectionConfig,
    observed: Option<Observed>,
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 409)
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 404)
}

impl LeaderElector {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        config: LeaderElectionConfig,
    ) -> Self {
        LeaderElector {
            api: Api::namespaced(client, namespace),
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            config,
            observed: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn error(&self, source: kube::Error) -> LeaderError {
        LeaderError::Api {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }

    fn our_record(&self, previous: Option<&LeaseSpec>) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        let ours = previous.is_some_and(|p| p.holder_identity.as_deref() == Some(&self.identity));
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.config.lease_duration.as_secs().max(1) as i32),
            acquire_time: if ours {
                previous.and_then(|p| p.acquire_time.clone())
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(if ours || previous.is_none() {
                transitions
            } else {
                transitions + 1
            }),
            ..Default::default()
        }
    }

    fn observe(&mut self, spec: &LeaseSpec) {
        if self.observed.as_ref().is_none_or(|o| o.spec != *spec) {
            self.observed = Some(Observed {
                spec: spec.clone(),
                at: Instant::now(),
            });
        }
    }

    /// One attempt; true when this candidate holds the lease afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, LeaderError> {
        let current = match self.api.get(&self.name).await {
            Ok(lease) => lease,
            Err(e) if is_not_found(&e) => {
                let spec = self.our_record(None);
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(spec.clone()),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => {
                        self.observe(&spec);
                        Ok(true)
                    }
                    // Another candidate created it first.
                    Err(e) if is_conflict(&e) => Ok(false),
                    Err(e) => Err(self.error(e)),
                };
            }
            Err(e) => return Err(self.error(e)),
        };
        let spec = current.spec.clone().unwrap_or_default();
        self.observe(&spec);
        let holder = spec.holder_identity.as_deref().unwrap_or_default();
        let lease_duration = spec
            .lease_duration_seconds
            .map(|s| Duration::from_secs(s.max(0) as u64))
            .unwrap_or(self.config.lease_duration);
        let observed_at = self
            .observed
            .as_ref()
            .map(|o| o.at)
            .unwrap_or_else(Instant::now);
        if !holder.is_empty() && holder != self.identity && observed_at.elapsed() < lease_duration {
            return Ok(false);
        }
        let ours = self.our_record(Some(&spec));
        let mut replacement = current;
        replacement.spec = Some(ours.clone());
        // `replace` sends the resourceVersion we read: a concurrent change makes it a 409.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &replacement)
            .await
        {
            Ok(_) => {
                self.observe(&ours);
                Ok(true)
            }
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Retries every `retry_period` until this candidate leads.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election attempt failed"),
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Renews every `retry_period`; returns once no renewal succeeded within `renew_deadline`.
    pub async fn renew_until_lost(&mut self) {
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewed = Instant::now(),
                Ok(false) => return,
                Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
            }
            if last_renewed.elapsed() >= self.config.renew_deadline {
                return;
            }
        }
    }

    /// Gives the lease up so the next candidate need not wait for it to expire (client-go's
    /// `ReleaseOnCancel`): holder cleared, duration one second.
    pub async fn release(&mut self) -> Result<(), LeaderError> {
        let mut lease = self.api.get(&self.name).await.map_err(|e| self.error(e))?;
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(&self.identity) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map_err(|e| self.error(e))?;
        self.observed = None;
        Ok(())
    }

    /// Campaigns in the background until the handle is stopped; `leading()` says whether this
    /// candidate leads. A leader that loses the lease campaigns again.
    pub fn spawn(mut self) -> LeaderHandle {
        let (tx, rx) = watch::channel(false);
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let campaign = async {
                loop {
                    self.acquire().await;
                    tracing::info!(identity = %self.identity, lease = %self.name, "became leader");
                    let _ = tx.send(true);
                    self.renew_until_lost().await;
                    tracing::warn!(identity = %self.identity, lease = %self.name, "lost leadership");
                    let _ = tx.send(false);
                }
            };
            tokio::select! {
                () = campaign => {}
                _ = &mut stop_rx => {}
            }
            if *tx.borrow() {
                let _ = tx.send(false);
                if let Err(e) = self.release().await {
                    tracing::warn!(error = %e, "cannot release the lease; others wait for it to expire");
                }
            }
        });
        LeaderHandle {
            leading: rx,
            stop: Some(stop_tx),
            task,
        }
    }
}

/// A campaign running in the background.
pub struct LeaderHandle {
    leading: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaderHandle {
    /// Whether this candidate leads now; `changed().await` on it waits for the next change.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Stops campaigning and, if leading, gives the lease up at once (client-go's
    /// `ReleaseOnCancel`), so the next leader need not wait for it to expire.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for LeaderHandle {
    fn drop(&mut self) {
        // Dropped without `stop`: end the campaign; the lease then expires on its own.
        if self.stop.is_some() {
            self.task.abort();
        }
    }
}
