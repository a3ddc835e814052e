//! Every AWS call goes through [`Calls::call`]: it counts the attempt by operation, kind and
//! result, and retries throttling (`Throttling`, `RequestLimitExceeded`, HTTP 429) and transient
//! failures with full-jitter exponential backoff. The SDK's own retries are off, so each throttled
//! answer is seen and counted here, for ELBv2 and EC2 alike.
//!
//! ```text
//!   call(op, attempt) ─▶ attempt() ─ok──────────────▶ count ok ─▶ value
//!                                  ─throttled/5xx─▶ count ─▶ sleep rand(0..=min(cap, base·2ⁿ)) ─▶ again
//!                                  ─other error──▶ count error ─▶ ProviderError::Cloud (names the code)
//! ```

use std::future::Future;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::CloudCallLabels;
use crate::providers::{ProviderError, is_throttling};

/// Attempts per call (the first and the retries) before throttling fails the reconcile, which
/// then backs off per Service.
pub const MAX_ATTEMPTS: u32 = 5;

/// The backoff before retry `n` (from 0) is a random duration up to `min(cap, base · 2ⁿ)`
/// ("full jitter", as the AWS SDKs' standard retry mode), so throttled reconciles spread out.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The longest wait before retry `retry` (0 for the first retry).
    pub fn ceiling(&self, retry: u32) -> Duration {
        self.base
            .saturating_mul(2u32.saturating_pow(retry.min(16)))
            .min(self.cap)
    }

    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry).as_millis() as u64;
        Duration::from_millis(fastrand::u64(0..=ceiling))
    }
}

/// Error codes worth another attempt although they are not throttling.
fn is_transient(code: &str) -> bool {
    matches!(
        code,
        "DispatchFailure"
            | "Timeout"
            | "InternalFailure"
            | "InternalError"
            | "ServiceUnavailable"
            | "500"
            | "502"
            | "503"
            | "504"
    )
}

/// Reads are the operations whose name starts with `Describe`.
pub fn kind(operation: &str) -> &'static str {
    if operation.starts_with("Describe") {
        "read"
    } else {
        "write"
    }
}

#[derive(Clone)]
pub struct Calls {
    counter: Family<CloudCallLabels, Counter>,
    backoff: Backoff,
}

impl Calls {
    pub fn new(counter: Family<CloudCallLabels, Counter>) -> Self {
        Self::with_backoff(counter, Backoff::default())
    }

    pub fn with_backoff(counter: Family<CloudCallLabels, Counter>, backoff: Backoff) -> Self {
        Calls { counter, backoff }
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

    /// Runs one call with retries. `attempt` makes one request and maps its error with
    /// [`sdk_error`] (or returns a `ProviderError::Cloud` itself).
    pub async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        mut attempt: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut retry = 0;
        loop {
            let error = match attempt().await {
                Ok(value) => {
                    self.count(operation, "ok");
                    return Ok(value);
                }
                Err(error) => error,
            };
            let code = match &error {
                ProviderError::Cloud { code, .. } => code.as_str(),
                ProviderError::Invalid { .. } | ProviderError::Allocation(_) => "",
            };
            let throttled = is_throttling(code);
            self.count(operation, if throttled { "throttled" } else { "error" });
            if !(throttled || is_transient(code)) || retry + 1 >= MAX_ATTEMPTS {
                return Err(error);
            }
            let delay = self.backoff.delay(retry);
            tracing::debug!(operation, code, ?delay, "retrying an AWS call");
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }
}

/// An SDK error as a `ProviderError` naming the operation and AWS's error code (or what failed
/// before AWS answered: `DispatchFailure`, `Timeout`, the HTTP status).
pub fn sdk_error<E, R>(operation: &'static str, error: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = match &error {
        SdkError::DispatchFailure(_) => Some("DispatchFailure".to_string()),
        SdkError::TimeoutError(_) => Some("Timeout".to_string()),
        _ => error.code().map(String::from),
    };
    let message = error
        .message()
        .map(String::from)
        .unwrap_or_else(|| DisplayErrorContext(&error).to_string());
    ProviderError::Cloud {
        operation,
        code: code.unwrap_or_else(|| "Unknown".into()),
        message,
    }
}

/// Whether an error is AWS's answer `code` (a "not found" that a read expects).
pub fn is_code(error: &ProviderError, wanted: &str) -> bool {
    matches!(error, ProviderError::Cloud { code, .. } if code == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap_and_jitters_below_it() {
        let backoff = Backoff::default();
        assert_eq!(backoff.ceiling(0), Duration::from_millis(100));
        assert_eq!(backoff.ceiling(3), Duration::from_millis(800));
        assert_eq!(backoff.ceiling(30), Duration::from_secs(5));
        let delays: std::collections::BTreeSet<Duration> =
            (0..50).map(|_| backoff.delay(4)).collect();
        assert!(delays.iter().all(|d| *d <= backoff.ceiling(4)));
        assert!(delays.len() > 1, "jittered: {delays:?}");
    }

    /// No waiting in unit tests (tokio's paused clock needs its test-util feature, which would
    /// rebuild tokio and everything above it for the test build).
    fn no_wait() -> Backoff {
        Backoff {
            base: Duration::ZERO,
            cap: Duration::ZERO,
        }
    }

    #[tokio::test]
    async fn throttling_is_retried_and_counted_and_other_errors_are_not_retried() {
        let counter: Family<CloudCallLabels, Counter> = Family::default();
        let calls = Calls::with_backoff(counter.clone(), no_wait());
        let mut answers = vec![
            Ok(7),
            Err("Throttling"),
            Err("RequestLimitExceeded"),
            Err("429"),
        ];
        let value = calls
            .call("DescribeListeners", || {
                let answer = answers.pop().unwrap();
                async move {
                    answer.map_err(|code| ProviderError::Cloud {
                        operation: "DescribeListeners",
                        code: code.into(),
                        message: String::new(),
                    })
                }
            })
            .await
            .unwrap();
        assert_eq!(value, 7);
        let get = |result| {
            counter
                .get_or_create(&CloudCallLabels {
                    operation: "DescribeListeners",
                    kind: "read",
                    result,
                })
                .get()
        };
        assert_eq!((get("throttled"), get("ok")), (3, 1));

        let mut attempts = 0;
        let result: Result<(), _> = calls
            .call("CreateListener", || {
                attempts += 1;
                async {
                    Err(ProviderError::Cloud {
                        operation: "CreateListener",
                        code: "TooManyListeners".into(),
                        message: String::new(),
                    })
                }
            })
            .await;
        assert!(is_code(&result.unwrap_err(), "TooManyListeners"));
        assert_eq!(attempts, 1);
    }

    #[tokio::test]
    async fn throttling_that_lasts_fails_after_the_last_attempt_naming_the_code() {
        let calls = Calls::with_backoff(Family::default(), no_wait());
        let mut attempts = 0;
        let result: Result<(), _> = calls
            .call("RegisterTargets", || {
                attempts += 1;
                async {
                    Err(ProviderError::Cloud {
                        operation: "RegisterTargets",
                        code: "Throttling".into(),
                        message: "Rate exceeded".into(),
                    })
                }
            })
            .await;
        assert_eq!(attempts, MAX_ATTEMPTS);
        let error = result.unwrap_err();
        assert_eq!(error.label(), "throttled");
        assert!(error.to_string().contains("Throttling"), "{error}");
    }
}
