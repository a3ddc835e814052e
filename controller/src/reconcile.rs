//! One reconcile per Service, keyed by namespace/name, the same for every provider:
//!
//! ```text
//!   Service ──not Portico's or being deleted──▶ cloud::delete (provider.ensure_deleted, finalizer off)
//!           ──Portico's──────────────────────▶ cloud::apply (finalizer first, provider.ensure,
//!                                               status + condition on a difference, Events)
//! ```
//! Bare metal is the provider `providers::baremetal::BareMetal` (pools and allocator in `Ipam`).
//! It never writes `spec`. Errors the user can fix are Warning Events on the Service; the
//! address a Service already has is never taken away because of them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use portico_api::keys::{CONTROLLER_FIELD_MANAGER, FINALIZER};
use tracing::Instrument;

use crate::catch_up::CatchUp;
use crate::conditions::{self, Readiness};
use crate::ipam::ServiceKey;
use crate::metrics::{ControllerMetrics, ErrorLabels, ResultLabels};
use crate::own_writes::OwnWrites;
use crate::providers::baremetal::Ipam;
use crate::service_filter::is_portico_service;
use crate::status::{current_ingress, status_apply_body};

/// How often every Service is looked at again even without a change (drift repair): the
/// reconcile's own requeue, the only periodic one, so resyncs spread over the period instead of
/// arriving for every Service at once.
pub const RESYNC_PERIOD: Duration = Duration::from_secs(300);
const BACKOFF_MIN: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("API request failed: {0}")]
    Api(#[source] kube::Error),
    #[error("{0}")]
    Provider(#[source] crate::providers::ProviderError),
}

impl ReconcileError {
    pub fn label(&self) -> &'static str {
        match self {
            ReconcileError::Api(e) if is_conflict(e) => "conflict",
            ReconcileError::Api(_) => "api",
            ReconcileError::Provider(e) => e.label(),
        }
    }
}

/// 409: a write with a resourceVersion precondition met a newer object.
fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// Everything a reconcile needs, shared by all of them.
pub struct Context {
    pub client: kube::Client,
    pub default_class: bool,
    /// The pools and the allocator (bare metal); shared with the pool status writer.
    pub ipam: Arc<Ipam>,
    pub recorder: Recorder,
    pub metrics: ControllerMetrics,
    /// Failed attempts in a row, per Service, for the backoff.
    failures: Mutex<HashMap<ServiceKey, u32>>,
    /// What is left of the initial list before this replica is ready.
    pub catch_up: Mutex<CatchUp>,
    /// The states this controller's own writes bring Services to: their watch events start no
    /// reconcile.
    pub own_writes: OwnWrites,
    /// The provider (bare metal's uses `ipam`) and the nodes it sends traffic to.
    pub cloud: crate::cloud::Cloud,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The data behind these locks stays consistent between statements; keep going after a panic.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Context {
    pub fn new(
        client: kube::Client,
        default_class: bool,
        ipam: Arc<Ipam>,
        recorder: Recorder,
        metrics: ControllerMetrics,
        cloud: crate::cloud::Cloud,
    ) -> Self {
        Context {
            client,
            default_class,
            ipam,
            recorder,
            metrics,
            failures: Mutex::default(),
            catch_up: Mutex::default(),
            own_writes: OwnWrites::default(),
            cloud,
        }
    }

    /// Services whose last reconcile failed (waiting on their backoff).
    pub fn failing_services(&self) -> HashSet<ServiceKey> {
        lock(&self.failures).keys().cloned().collect()
    }

    pub(crate) async fn publish(
        &self,
        service: &Service,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self
            .recorder
            .publish(&event, &service.object_ref(&()))
            .await
        {
            tracing::warn!(error = %e, reason, "could not publish an Event");
        }
    }
}

pub fn service_key(service: &Service) -> ServiceKey {
    ServiceKey::new(service.namespace().unwrap_or_default(), service.name_any())
}

/// The reconcile the kube-runtime Controller calls. The span is attached to the future (not
/// entered across its awaits), so the 16 reconciles running at once each log their own Service.
pub async fn reconcile(service: Arc<Service>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let key = service_key(&service);
    let span = tracing::info_span!("reconcile", namespace = %key.namespace, name = %key.name);
    reconcile_service(service, ctx, key).instrument(span).await
}

async fn reconcile_service(
    service: Arc<Service>,
    ctx: Arc<Context>,
    key: ServiceKey,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let result = if !is_portico_service(&service, ctx.default_class)
        || service.meta().deletion_timestamp.is_some()
    {
        crate::cloud::delete(&api, &service, &ctx, &ctx.cloud).await
    } else {
        // The finalizer goes on before anything is allocated, and the reconcile carries on with
        // the patched object rather than waiting for the watch to bring it back.
        crate::cloud::apply(&api, &service, &ctx, &ctx.cloud).await
    };
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    let result_label = if result.is_ok() { "success" } else { "error" };
    ctx.metrics
        .reconciles
        .get_or_create(&ResultLabels {
            result: result_label,
        })
        .inc();
    if result.is_ok() {
        lock(&ctx.failures).remove(&key);
    }
    lock(&ctx.catch_up).reconciled(&key);
    result
}

/// Retries with a per-Service backoff from 5 s to 300 s, as the cloud service controller does.
pub fn error_policy(service: Arc<Service>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    let key = service_key(&service);
    ctx.metrics
        .reconcile_errors
        .get_or_create(&ErrorLabels {
            error: error.label(),
        })
        .inc();
    let attempts = {
        let mut failures = lock(&ctx.failures);
        let attempts = failures.entry(key.clone()).or_insert(0);
        *attempts = attempts.saturating_add(1);
        *attempts
    };
    let delay = BACKOFF_MIN
        .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).min(16)))
        .min(BACKOFF_MAX);
    tracing::warn!(namespace = %key.namespace, name = %key.name, error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

pub(crate) fn has_finalizer(service: &Service) -> bool {
    service.finalizers().iter().any(|f| f == FINALIZER)
}

/// Adds the finalizer unless present; returns the Service as the API server now has it.
pub(crate) async fn ensure_finalizer(
    api: &Api<Service>,
    service: &Service,
    ctx: &Context,
) -> Result<Service, ReconcileError> {
    if has_finalizer(service) {
        return Ok(service.clone());
    }
    let with_finalizer = |service: &Service| {
        let mut finalizers = service.finalizers().to_vec();
        finalizers.push(FINALIZER.to_owned());
        finalizers
    };
    let predict = |service: &Service| {
        let mut predicted = service.clone();
        predicted.metadata.finalizers = Some(with_finalizer(service));
        ctx.own_writes.expect(&predicted);
    };
    predict(service);
    let patched = match patch_finalizers(api, service, &with_finalizer(service)).await {
        Err(ReconcileError::Api(e)) if is_conflict(&e) => {
            // The cached object is older than the server's (the watch has not brought the
            // latest write yet): read it again and try once more rather than back off 5 s.
            ctx.metrics.api_conflicts.inc();
            let fresh = api
                .get(&service.name_any())
                .await
                .map_err(ReconcileError::Api)?;
            if has_finalizer(&fresh) {
                return Ok(fresh);
            }
            predict(&fresh);
            patch_finalizers(api, &fresh, &with_finalizer(&fresh)).await?
        }
        other => other?,
    };
    Ok(patched)
}

pub(crate) async fn remove_finalizer(
    api: &Api<Service>,
    service: &Service,
) -> Result<Service, ReconcileError> {
    let remaining: Vec<String> = service
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    patch_finalizers(api, service, &remaining).await
}

/// Sets the finalizer list; the resourceVersion makes the patch fail (409) rather than drop or
/// duplicate a finalizer someone else changed meanwhile.
async fn patch_finalizers(
    api: &Api<Service>,
    service: &Service,
    finalizers: &[String],
) -> Result<Service, ReconcileError> {
    let patch = serde_json::json!({
        "metadata": { "finalizers": finalizers, "resourceVersion": service.resource_version() }
    });
    api.patch(
        &service.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(ReconcileError::Api)
}

/// Sets the ingress and Portico's condition (none: removed) in one server-side apply.
pub(crate) async fn write_status(
    api: &Api<Service>,
    service: &Service,
    ingress: &[LoadBalancerIngress],
    condition: Option<&Condition>,
) -> Result<Service, ReconcileError> {
    let params = PatchParams::apply(CONTROLLER_FIELD_MANAGER).force();
    api.patch_status(
        &service.name_any(),
        &params,
        &Patch::Apply(status_apply_body(ingress, condition)),
    )
    .await
    .map_err(ReconcileError::Api)
}

/// Writes the ingress and the `portico.dev/LoadBalancerReady` condition when either differs
/// from what the Service has (a resync that changes nothing writes nothing). Returns whether it
/// wrote.
pub(crate) async fn sync_status(
    api: &Api<Service>,
    service: &Service,
    ctx: &Context,
    ingress: &[LoadBalancerIngress],
    readiness: &Readiness,
) -> Result<bool, ReconcileError> {
    if current_ingress(service) == ingress && conditions::is_current(service, readiness) {
        return Ok(false);
    }
    let mut predicted = service.clone();
    predicted
        .status
        .get_or_insert_default()
        .load_balancer
        .get_or_insert_default()
        .ingress = Some(ingress.to_vec());
    ctx.own_writes.expect(&predicted);
    let condition = conditions::condition(service, readiness, Time(Timestamp::now()));
    write_status(api, service, ingress, Some(&condition)).await?;
    Ok(true)
}

/// On a failed reconcile: the condition says why, and the ingress the Service has stays.
pub(crate) async fn report_failure(
    api: &Api<Service>,
    service: &Service,
    ctx: &Context,
    readiness: &Readiness,
) {
    if let Err(e) = sync_status(api, service, ctx, &current_ingress(service), readiness).await {
        tracing::warn!(error = %e, reason = readiness.reason, "could not write the condition");
    }
}
