//! Retries and HTTP: one [`Backoff`] (exponential, capped, with jitter) that every retry loop
//! of the project uses — downloads here, the OIP client's requests, the operator's requeue
//! after an error — and one [`RetryPolicy`] (bounded tries, that backoff, bounded connect,
//! read and request timeouts) used for `http(s)://` downloads by [`HttpClient`] and handed to
//! object_store's own client and retry loop for cloud stores, so that both sides of the input
//! behave alike.
//!
//! Transient: connect errors, timeouts, broken bodies, HTTP 408, 429 and 5xx. Not retried:
//! 404/410 (→ [`StoreError::NotFound`]), every other status, and addresses refused by the
//! [`crate::netguard`] policy (→ [`StoreError::Forbidden`]).
//!
//! Every URL in an error or a log line is redacted ([`redact_uri`]); reqwest's own errors
//! are stripped of their URL, which would carry the secrets verbatim.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;
use tracing::warn;

use crate::netguard::{self, GuardError, NetworkPolicy};
use crate::redact::redact_uri;
use crate::{Result, StoreError, init_crypto};

/// Exponential backoff: `initial × 2^(failures-1)`, capped at `max`; [`Backoff::jittered`] picks
/// a random point in the upper half of that, so that clients retrying together spread out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Wait after the first failure.
    pub initial: Duration,
    /// Upper bound of one wait.
    pub max: Duration,
}

impl Backoff {
    /// The wait after failed attempt number `failures` (1 for the first failure).
    pub fn delay(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(20);
        self.initial.saturating_mul(1 << exponent).min(self.max)
    }

    /// [`Backoff::delay`] with jitter: uniformly in `[delay/2, delay]`.
    pub fn jittered(&self, failures: u32) -> Duration {
        let d = self.delay(failures);
        d / 2 + d.mul_f64(unit_random() / 2.0)
    }
}

/// A number in `[0, 1)` from the process's random hasher keys (no RNG dependency needed for
/// jitter).
fn unit_random() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// How often and how patiently a download is retried.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first (at least 1).
    pub max_tries: u32,
    /// Wait after the first failure; doubles after each further failure.
    pub initial_backoff: Duration,
    /// Upper bound of one wait.
    pub max_backoff: Duration,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// Limit on waiting for the next bytes (of the answer's head or body); a server that
    /// accepts and then says nothing fails the attempt after this.
    pub read_timeout: Duration,
    /// Limit on one whole request, body included.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_tries: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The backoff of this policy.
    pub fn backoff_curve(&self) -> Backoff {
        Backoff { initial: self.initial_backoff, max: self.max_backoff }
    }

    /// The wait after failed attempt number `failures` (1 for the first failure):
    /// `initial_backoff * 2^(failures-1)`, capped at `max_backoff` (its longest: for budgets).
    pub fn backoff(&self, failures: u32) -> Duration {
        self.backoff_curve().delay(failures)
    }

    /// The same policy for object_store's internal retry loop (cloud stores).
    pub(crate) fn object_store_config(&self) -> object_store::RetryConfig {
        // the sum of all waits plus one request timeout per try bounds the whole operation
        let waits: Duration = (1..self.max_tries).map(|n| self.backoff(n)).sum();
        object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: self.initial_backoff,
                max_backoff: self.max_backoff,
                base: 2.0,
            },
            max_retries: self.max_tries.saturating_sub(1) as usize,
            retry_timeout: waits + self.request_timeout * self.max_tries.max(1),
        }
    }
}

/// Whether an HTTP status is worth another try.
pub fn is_transient_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

/// Whether an error of this crate is worth another try.
pub fn is_transient(err: &StoreError) -> bool {
    match err {
        StoreError::HttpStatus { status, .. } => is_transient_status(*status),
        StoreError::Http { source, .. } => {
            source.is_connect() || source.is_timeout() || source.is_body() || source.is_request()
        }
        _ => false,
    }
}

/// An HTTP client with bounded timeouts that retries transient failures and connects only
/// where its [`NetworkPolicy`] allows.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    policy: RetryPolicy,
    network: NetworkPolicy,
}

impl HttpClient {
    /// Build a client; installs the rustls crypto provider if none is installed.
    pub fn new(policy: RetryPolicy, network: NetworkPolicy) -> Result<Self> {
        init_crypto();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(policy.connect_timeout)
            .read_timeout(policy.read_timeout)
            .timeout(policy.request_timeout)
            .redirect(netguard::redirect_policy(network))
            .user_agent(concat!("labeljob/", env!("CARGO_PKG_VERSION")));
        if let Some(resolver) = netguard::resolver(network) {
            builder = builder.dns_resolver(resolver);
        }
        let client = builder.build().map_err(StoreError::HttpClient)?;
        Ok(Self { client, policy, network })
    }

    /// The retry policy in use.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// GET `url` and return the body, at most `max_bytes` of it, retrying transient failures
    /// per the policy. 404 and 410 return [`StoreError::NotFound`] at once; a
    /// `Content-Length` over the limit is [`StoreError::TooLarge`] before the body is read,
    /// and a body without one is cut off once it passes the limit.
    pub async fn get(&self, url: &url::Url, max_bytes: u64) -> Result<Bytes> {
        let tries = self.policy.max_tries.max(1);
        let mut failures = 0;
        loop {
            match self.get_once(url, max_bytes).await {
                Ok(body) => return Ok(body),
                Err(err) if failures + 1 < tries && is_transient(&err) => {
                    failures += 1;
                    let wait = self.policy.backoff_curve().jittered(failures);
                    let url = redact_uri(url.as_str());
                    warn!(url, error = %err, attempt = failures, ?wait, "transient HTTP failure, retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn get_once(&self, url: &url::Url, max_bytes: u64) -> Result<Bytes> {
        let shown = || redact_uri(url.as_str());
        let forbidden = |source| StoreError::Forbidden { url: shown(), source };
        netguard::check_url(url, self.network).map_err(forbidden)?;
        let http_err = |source: reqwest::Error| match guard_error(&source) {
            Some(guard) => StoreError::Forbidden { url: shown(), source: guard },
            None => StoreError::Http { url: shown(), source: source.without_url() },
        };
        let response = self.client.get(url.clone()).send().await.map_err(http_err)?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Err(StoreError::NotFound { uri: shown() });
        }
        if !status.is_success() {
            return Err(StoreError::HttpStatus { url: shown(), status: status.as_u16() });
        }
        let too_large = |size| StoreError::TooLarge { uri: shown(), size, limit: max_bytes };
        let declared = response.content_length();
        if let Some(size) = declared.filter(|size| *size > max_bytes) {
            return Err(too_large(Some(size)));
        }
        // the declared size is within the limit (a lying one is cut off below)
        let mut buf = Vec::with_capacity(declared.and_then(|n| usize::try_from(n).ok()).unwrap_or(0));
        let mut response = response;
        while let Some(chunk) = response.chunk().await.map_err(http_err)? {
            if (buf.len() as u64).saturating_add(chunk.len() as u64) > max_bytes {
                return Err(too_large(None));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(buf))
    }
}

/// The [`GuardError`] in the cause chain of a reqwest error (from the resolver or the
/// redirect policy), taken out as a new value since the chain is borrowed.
fn guard_error(err: &reqwest::Error) -> Option<GuardError> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = cause {
        if let Some(guard) = e.downcast_ref::<GuardError>() {
            return Some(guard.clone());
        }
        cause = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            ..RetryPolicy::default()
        };
        let waits: Vec<u128> = (1..=6).map(|n| p.backoff(n).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 500, 500, 500]);
        // absurd failure counts neither overflow nor exceed the cap
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(500));
        let b = p.backoff_curve();
        let jittered: Vec<Duration> = (0..200).map(|_| b.jittered(3)).collect();
        assert!(
            jittered.iter().all(|d| *d >= Duration::from_millis(200) && *d <= Duration::from_millis(400))
        );
        assert!(jittered.iter().any(|d| *d != jittered[0]), "the waits are spread, not one value");
    }

    #[test]
    fn object_store_config_mirrors_policy() {
        let p = RetryPolicy::default();
        let c = p.object_store_config();
        assert_eq!(c.max_retries, 3);
        assert_eq!(c.backoff.init_backoff, p.initial_backoff);
        assert_eq!(c.backoff.max_backoff, p.max_backoff);
        assert!(c.retry_timeout >= p.request_timeout);
    }

    #[test]
    fn transient_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient_status(s), "{s}");
        }
        for s in [200, 301, 400, 401, 403, 404, 410, 413] {
            assert!(!is_transient_status(s), "{s}");
        }
        assert!(!is_transient(&StoreError::NotFound { uri: "x".into() }));
        assert!(is_transient(&StoreError::HttpStatus { url: "x".into(), status: 503 }));
    }
}
