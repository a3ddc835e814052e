//! The Compute Engine calls the provider makes, each through [`Compute::call`]: counted by
//! operation, kind and result; 429 / `rateLimitExceeded` and 5xx retried with the AWS provider's
//! full-jitter backoff (the client's own retries are off, so each throttled answer is seen).
//! Every mutation returns an Operation: [`Compute::write`] polls it (regionOperations.get or
//! globalOperations.get) until DONE and turns an operation error into a `ProviderError::Cloud`
//! naming the resource and the error code.

use std::future::Future;
use std::time::Duration;

use google_cloud_compute_v1::client::{
    Addresses, Firewalls, ForwardingRules, HttpHealthChecks, TargetPools,
};
use google_cloud_compute_v1::model::Operation;
use google_cloud_compute_v1::model::operation::Status;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::CloudCallLabels;
use crate::providers::aws::calls::{Backoff, MAX_ATTEMPTS};
use crate::providers::{ProviderError, is_throttling};

pub type GcpResult<T> = Result<T, ProviderError>;

/// The request closure a [`Compute`] call takes for a global resource (firewall rules, health
/// checks), with the project set: `global!(c.firewalls.get().set_firewall(name))` stands for
/// `|| c.firewalls.get().set_project(&c.project).set_firewall(name).send()`. Every request starts
/// and ends alike; only the client, the method and the last setters differ. A body given after a
/// comma is cloned into each attempt (a throttled call is sent again).
macro_rules! global {
    ($c:ident . $client:ident . $method:ident () $(. $set:ident ($($arg:expr),*))*
        $(, $body:expr)?) => {
        || {
            $c.$client
                .$method()
                .set_project(&$c.project)
                $(.$set($($arg),*))*
                $(.set_body($body.clone()))?
                .send()
        }
    };
}

/// [`global!`] for a regional resource (addresses, target pools, forwarding rules): the region
/// is set too.
macro_rules! regional {
    ($c:ident . $client:ident . $method:ident () $($rest:tt)*) => {
        $crate::providers::gcp::compute::global!(
            $c.$client.$method().set_region(&$c.region) $($rest)*
        )
    };
}

pub(super) use {global, regional};

/// Where a resource's Operation is polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Where {
    Region,
    Global,
}

pub struct Compute {
    pub project: String,
    pub region: String,
    pub addresses: Addresses,
    pub firewalls: Firewalls,
    pub health_checks: HttpHealthChecks,
    pub pools: TargetPools,
    pub rules: ForwardingRules,
    counter: Family<CloudCallLabels, Counter>,
    backoff: Backoff,
}

/// Reads are gets, lists and operation polls.
pub fn kind(operation: &str) -> &'static str {
    if operation.ends_with(".get") || operation.ends_with(".list") {
        "read"
    } else {
        "write"
    }
}

fn is_transient(code: &str) -> bool {
    matches!(
        code,
        "500" | "502" | "503" | "504" | "backendError" | "internalError" | "unavailable"
    )
}

/// A client error as the provider reports it: the Google error's `errors[0].reason` (e.g.
/// `notFound`, `resourceInUseByAnotherResource`, `rateLimitExceeded`), else the HTTP status.
pub fn cloud_error(
    operation: &'static str,
    error: google_cloud_compute_v1::Error,
) -> ProviderError {
    let reason = error
        .http_payload()
        .and_then(|body| serde_json::from_slice::<serde_json::Value>(body).ok())
        .and_then(|v| v["error"]["errors"][0]["reason"].as_str().map(String::from));
    let status = error.http_status_code();
    let code = match (reason, status) {
        (_, Some(429)) => "rateLimitExceeded".to_owned(),
        (Some(reason), _) => reason,
        (None, Some(status)) => status.to_string(),
        (None, None) if error.is_connect() || error.is_io() || error.is_timeout() => {
            "unavailable".to_owned()
        }
        (None, None) => "unknown".to_owned(),
    };
    let message = error
        .status()
        .map(|s| s.message.clone())
        .unwrap_or_else(|| error.to_string());
    ProviderError::Cloud {
        operation,
        code,
        message,
    }
}

pub fn is_not_found(error: &ProviderError) -> bool {
    matches!(error, ProviderError::Cloud { code, .. } if code == "notFound" || code == "404")
}

/// Compute refused to delete what another resource refers to (a health check a target pool
/// uses): a 400 whose message says it "is already being used by" the other, read as
/// cloud-provider-gcp's `isInUsedByError` reads it (the client keeps no `errors[].reason` once
/// the body parses as a status).
pub fn is_in_use(error: &ProviderError) -> bool {
    matches!(error, ProviderError::Cloud { code, message, .. }
        if code == "resourceInUseByAnotherResource"
            || (code == "400" && message.contains("being used by")))
}

impl Compute {
    pub async fn new(
        project: String,
        region: String,
        endpoint: Option<&str>,
        counter: Family<CloudCallLabels, Counter>,
    ) -> Result<Self, google_cloud_gax::client_builder::Error> {
        // rustls on ring, as kube's client: the Google crates are built without a provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        macro_rules! client {
            ($ty:ty) => {{
                let mut builder =
                    <$ty>::builder().with_retry_policy(google_cloud_gax::retry_policy::NeverRetry);
                if let Some(url) = endpoint {
                    builder = builder.with_endpoint(url);
                    // A plain-HTTP endpoint (a fake Compute server on loopback) can carry no
                    // token; a real one keeps the default credentials (ADC, Workload Identity).
                    if url.starts_with("http://") {
                        builder = builder.with_credentials(
                            google_cloud_auth::credentials::anonymous::Builder::new().build(),
                        );
                    }
                }
                builder.build().await?
            }};
        }
        Ok(Compute {
            addresses: client!(Addresses),
            firewalls: client!(Firewalls),
            health_checks: client!(HttpHealthChecks),
            pools: client!(TargetPools),
            rules: client!(ForwardingRules),
            project,
            region,
            counter,
            backoff: Backoff::default(),
        })
    }

    fn count(&self, operation: &'static str, result: &'static str) {
        self.counter
            .get_or_create(&CloudCallLabels {
                operation,
                kind: kind(operation),
                result,
            })
            .inc();
    }

    /// One call with retries on throttling and transient errors.
    pub async fn call<T, F, Fut>(&self, operation: &'static str, mut attempt: F) -> GcpResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, google_cloud_compute_v1::Error>>,
    {
        let mut retry = 0;
        loop {
            let error = match attempt().await {
                Ok(value) => {
                    self.count(operation, "ok");
                    return Ok(value);
                }
                Err(error) => cloud_error(operation, error),
            };
            let code = match &error {
                ProviderError::Cloud { code, .. } => code.clone(),
                ProviderError::Invalid { .. } | ProviderError::Allocation(_) => String::new(),
            };
            let throttled = is_throttling(&code);
            self.count(operation, if throttled { "throttled" } else { "error" });
            if !(throttled || is_transient(&code)) || retry + 1 >= MAX_ATTEMPTS {
                return Err(error);
            }
            let delay = self.backoff.delay(retry);
            tracing::debug!(operation, code, ?delay, "retrying a Compute call");
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }

    /// A get that answers None on 404.
    pub async fn find<T, F, Fut>(&self, operation: &'static str, attempt: F) -> GcpResult<Option<T>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, google_cloud_compute_v1::Error>>,
    {
        match self.call(operation, attempt).await {
            Ok(value) => Ok(Some(value)),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// A mutation: sends it, then polls its Operation until DONE. `resource` names what it
    /// changes, for the error.
    pub async fn write<F, Fut>(
        &self,
        operation: &'static str,
        resource: &str,
        place: Where,
        attempt: F,
    ) -> GcpResult<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Operation, google_cloud_compute_v1::Error>>,
    {
        let mut op = self.call(operation, attempt).await?;
        let mut wait = Duration::from_millis(50);
        while op.status != Some(Status::Done) {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
            let name = op.name.clone().unwrap_or_default();
            op = match place {
                Where::Region => {
                    self.call("regionOperations.get", || {
                        self.pools
                            .get_operation()
                            .set_project(&self.project)
                            .set_region(&self.region)
                            .set_operation(&name)
                            .send()
                    })
                    .await?
                }
                Where::Global => {
                    self.call("globalOperations.get", || {
                        self.firewalls
                            .get_operation()
                            .set_project(&self.project)
                            .set_operation(&name)
                            .send()
                    })
                    .await?
                }
            };
        }
        if let Some(error) = op.error.as_ref().and_then(|e| e.errors.first()) {
            return Err(ProviderError::Cloud {
                operation,
                code: error.code.clone().unwrap_or_else(|| "unknown".into()),
                message: format!("{resource}: {}", error.message.clone().unwrap_or_default()),
            });
        }
        Ok(())
    }

    /// Brings a global resource in line with the desired one: nothing where `found` says it
    /// matches, an update where it differs, an insert where it is missing (`found` is None).
    /// What it did goes into `changes`.
    pub async fn put_global<U, UFut, I, IFut>(
        &self,
        resource: &str,
        found: Option<bool>,
        (update, insert): ((&'static str, U), (&'static str, I)),
        changes: &mut Vec<String>,
    ) -> GcpResult<()>
    where
        U: FnMut() -> UFut,
        UFut: Future<Output = Result<Operation, google_cloud_compute_v1::Error>>,
        I: FnMut() -> IFut,
        IFut: Future<Output = Result<Operation, google_cloud_compute_v1::Error>>,
    {
        match found {
            Some(true) => return Ok(()),
            Some(false) => {
                self.write(update.0, resource, Where::Global, update.1)
                    .await?
            }
            None => {
                self.write(insert.0, resource, Where::Global, insert.1)
                    .await?
            }
        }
        let verb = if found.is_some() {
            "updated"
        } else {
            "created"
        };
        changes.push(format!("{verb} {resource}"));
        Ok(())
    }

    /// A delete that is done when the resource is already gone.
    pub async fn delete<F, Fut>(
        &self,
        operation: &'static str,
        resource: &str,
        place: Where,
        attempt: F,
    ) -> GcpResult<bool>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Operation, google_cloud_compute_v1::Error>>,
    {
        match self.write(operation, resource, place, attempt).await {
            Ok(()) => Ok(true),
            Err(error) if is_not_found(&error) => Ok(false),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud(code: &str, message: &str) -> ProviderError {
        ProviderError::Cloud {
            operation: "httpHealthChecks.delete",
            code: code.into(),
            message: message.into(),
        }
    }

    #[test]
    fn a_delete_refused_for_a_resource_in_use_is_told_apart_from_other_errors() {
        let in_use = "The resource 'projects/p/global/httpHealthChecks/k8s-lab-node' is already \
                      being used by 'projects/p/regions/r/targetPools/a1'";
        assert!(is_in_use(&cloud("400", in_use)));
        assert!(is_in_use(&cloud("resourceInUseByAnotherResource", "")));
        assert!(!is_in_use(&cloud(
            "400",
            "Invalid value for field 'resource.port'"
        )));
        assert!(!is_in_use(&cloud("404", in_use)));
        assert!(!is_in_use(&cloud(
            "403",
            "Required 'compute.httpHealthChecks.delete'"
        )));
    }
}
