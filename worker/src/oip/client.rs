//! `OipClient`: the shard pipeline's `Detector` for a remote Open Inference Protocol v2 server
//! (`labeljob serve`, or Triton/KServe serving the same tensors). At start it reads the model
//! metadata and refuses a model whose input is not the job's `UINT8 [N, H, W, 3]`. Each call
//! posts the resized images with the binary tensor extension and parses binary or JSON
//! outputs. 429 (honouring `Retry-After`), 5xx and connection errors are retried with
//! exponential backoff and jitter for a bounded total time; a semaphore bounds the requests in
//! flight. Other 4xx answers fail at once. Nothing in an answer is trusted: its body is read
//! up to `max_response_bytes`, and a malformed answer (shapes that do not match the data, a
//! count beyond its tensor, a negative class, a box that is not finite) is an error of that
//! image ([`DetectError::Malformed`]), not detections.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use labeljob_store::Backoff;
use reqwest::StatusCode;
use tokio::sync::Semaphore;

use crate::detector::{DetectError, Detector};
use crate::model::RawDetection;
use crate::oip::protocol::{self, HEADER_LENGTH, ModelMetadata, ProtocolError};
use crate::oip::tensors;

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Longest time spent retrying one call before giving up.
    pub retry_budget: Duration,
    /// Requests in flight at once.
    pub max_in_flight: usize,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// First backoff delay (doubles per attempt, with jitter).
    pub initial_backoff: Duration,
    /// Largest backoff delay.
    pub max_backoff: Duration,
    /// Largest answer body read from the server.
    pub max_response_bytes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            retry_budget: Duration::from_secs(120),
            max_in_flight: 32,
            request_timeout: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_response_bytes: 64 << 20,
        }
    }
}

/// Why a call to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum OipError {
    /// The endpoint is not an http(s) URL.
    #[error("inference endpoint {0:?} is not an http:// or https:// URL")]
    Endpoint(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The request did not complete (connection refused or reset, timeout).
    #[error("request to {url} failed")]
    Http {
        /// URL.
        url: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{url} answered {status}: {message}")]
    Status {
        /// URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The server's `error` message (or body).
        message: String,
    },
    /// The answer is larger than the client reads.
    #[error("{url}: the answer is larger than {limit} bytes")]
    TooLarge {
        /// URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The answer is not a valid OIP message.
    #[error("{url}: invalid answer")]
    Protocol {
        /// URL.
        url: String,
        /// Cause.
        #[source]
        source: ProtocolError,
    },
    /// The model's input is not what the job sends.
    #[error(
        "model {model:?} at {endpoint} takes input {found}, but this job sends {expected}: serve the job's model or fix spec.inference.modelName"
    )]
    Mismatch {
        /// Server.
        endpoint: String,
        /// Model.
        model: String,
        /// The model's input.
        found: String,
        /// What the job sends.
        expected: String,
    },
    /// Retries ran out.
    #[error("{what}: gave up after {attempts} attempts in {seconds:.1}s")]
    GaveUp {
        /// The call.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        seconds: f64,
        /// The last failure.
        #[source]
        last: Box<OipError>,
    },
}

/// One attempt's outcome for the retry loop.
enum Attempt<T> {
    Done(T),
    Retry(OipError, Option<Duration>),
    Fail(OipError),
}

/// A `Detector` backed by an OIP v2 server.
#[derive(Debug, Clone)]
pub struct OipClient {
    http: reqwest::Client,
    endpoint: String,
    model: String,
    infer_url: String,
    width: u32,
    height: u32,
    slots: Arc<Semaphore>,
    opts: ClientOptions,
}

impl OipClient {
    /// Connect to `endpoint` (e.g. `http://svc:8000`) for `model`, whose input must be
    /// `width`×`height` RGB. Waits (within the retry budget) for the server to answer.
    pub async fn connect(
        endpoint: &str,
        model: &str,
        width: u32,
        height: u32,
        opts: ClientOptions,
    ) -> Result<Self, OipError> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(OipError::Endpoint(endpoint));
        }
        labeljob_store::init_crypto();
        let http = reqwest::Client::builder()
            .timeout(opts.request_timeout)
            .pool_max_idle_per_host(opts.max_in_flight.max(1))
            .build()
            .map_err(OipError::Client)?;
        let infer_url = format!("{endpoint}/v2/models/{model}/infer");
        let client = Self {
            http,
            endpoint,
            model: model.into(),
            infer_url,
            width,
            height,
            slots: Arc::new(Semaphore::new(opts.max_in_flight.max(1))),
            opts,
        };
        let meta = client.metadata().await?;
        client.check(&meta)?;
        tracing::info!(endpoint = %client.endpoint, model = %client.model, "inference server ready");
        Ok(client)
    }

    /// The model name used on the server.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// `GET /v2/models/{model}`, retried while the server is unreachable or not ready.
    pub async fn metadata(&self) -> Result<ModelMetadata, OipError> {
        let url = format!("{}/v2/models/{}", self.endpoint, self.model);
        self.with_retry(&format!("model metadata from {url}"), || async {
            let resp = match self.http.get(&url).send().await {
                Ok(r) => r,
                Err(source) => return Attempt::Retry(OipError::Http { url: url.clone(), source }, None),
            };
            let (status, retry_after) = (resp.status(), retry_after(&resp));
            let body = match body_within(resp, self.opts.max_response_bytes, &url).await {
                Ok(b) => b,
                Err(attempt) => return attempt,
            };
            if !status.is_success() {
                return classify(&url, status, &body, retry_after);
            }
            match serde_json::from_slice(&body) {
                Ok(m) => Attempt::Done(m),
                Err(e) => {
                    Attempt::Fail(OipError::Protocol { url: url.clone(), source: ProtocolError::Json(e) })
                }
            }
        })
        .await
    }

    fn check(&self, meta: &ModelMetadata) -> Result<(), OipError> {
        let (w, h) = (i64::from(self.width), i64::from(self.height));
        let expected = format!("{} UINT8 [N, {h}, {w}, 3]", protocol::INPUT);
        let ok = meta.inputs.len() == 1
            && meta.inputs.first().is_some_and(|i| {
                i.name == protocol::INPUT
                    && i.datatype == "UINT8"
                    && matches!(i.shape.as_slice(), [_, sh, sw, 3] if (*sh == h || *sh == -1) && (*sw == w || *sw == -1))
            });
        let outputs_ok = protocol::OUTPUTS.iter().all(|n| meta.outputs.iter().any(|o| o.name == *n));
        if ok && outputs_ok {
            return Ok(());
        }
        let found = if ok {
            format!(
                "outputs {:?} (needs boxes, classes, scores, counts)",
                meta.outputs.iter().map(|o| &o.name).collect::<Vec<_>>()
            )
        } else {
            meta.inputs
                .iter()
                .map(|i| format!("{} {} {:?}", i.name, i.datatype, i.shape))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(OipError::Mismatch {
            endpoint: self.endpoint.clone(),
            model: self.model.clone(),
            found,
            expected,
        })
    }

    /// Detect on a small batch of `width`×`height`×3 images.
    pub async fn detect_many(&self, images: &[&[u8]]) -> Result<Vec<Vec<RawDetection>>, OipError> {
        let _permit = self.slots.acquire().await.map_err(|_| OipError::Endpoint(self.endpoint.clone()))?;
        let (body, header) = tensors::build_request(images, self.width, self.height);
        let body = bytes::Bytes::from(body);
        let url = &self.infer_url;
        self.with_retry(&format!("inference at {url}"), || async {
            let resp = self
                .http
                .post(url)
                .header(HEADER_LENGTH, header)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body.clone())
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(source) => return Attempt::Retry(OipError::Http { url: url.clone(), source }, None),
            };
            let (status, retry_after) = (resp.status(), retry_after(&resp));
            let header_len =
                resp.headers().get(HEADER_LENGTH).and_then(|v| v.to_str().ok()).map(str::to_string);
            let bytes = match body_within(resp, self.opts.max_response_bytes, url).await {
                Ok(b) => b,
                Err(attempt) => return attempt,
            };
            if !status.is_success() {
                return classify(url, status, &bytes, retry_after);
            }
            match tensors::parse_response(&bytes, header_len.as_deref()) {
                Ok(d) if d.len() == images.len() => Attempt::Done(d),
                Ok(d) => Attempt::Fail(OipError::Protocol {
                    url: url.clone(),
                    source: ProtocolError::Data {
                        field: "outputs.counts".into(),
                        reason: format!("{} images answered for {} sent", d.len(), images.len()),
                    },
                }),
                Err(source) => Attempt::Fail(OipError::Protocol { url: url.clone(), source }),
            }
        })
        .await
    }

    async fn with_retry<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, OipError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let (err, after) = match attempt().await {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(e, after) => (e, after),
            };
            // The shared backoff with jitter, at least what Retry-After asks.
            let backoff = Backoff { initial: self.opts.initial_backoff, max: self.opts.max_backoff };
            let wait = backoff.jittered(attempts).max(after.unwrap_or_default());
            if started.elapsed() + wait > self.opts.retry_budget {
                return Err(OipError::GaveUp {
                    what: what.to_string(),
                    attempts,
                    seconds: started.elapsed().as_secs_f64(),
                    last: Box::new(err),
                });
            }
            tracing::debug!(error = %err, attempt = attempts, wait_ms = wait.as_millis() as u64, "{what}: retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

/// Read an answer's body, at most `limit` bytes (a larger one fails, a broken one is retried).
async fn body_within<T>(mut resp: reqwest::Response, limit: usize, url: &str) -> Result<Vec<u8>, Attempt<T>> {
    let too_large = || Attempt::Fail(OipError::TooLarge { url: url.into(), limit });
    let declared = match resp.content_length().map(usize::try_from) {
        Some(Ok(n)) if n <= limit => n,
        Some(_) => return Err(too_large()),
        None => 0,
    };
    let mut buf = Vec::with_capacity(declared);
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) if buf.len().saturating_add(chunk.len()) > limit => return Err(too_large()),
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            Ok(None) => return Ok(buf),
            Err(source) => return Err(Attempt::Retry(OipError::Http { url: url.into(), source }, None)),
        }
    }
}

/// An error status: 429 and 5xx are retried, other codes fail.
fn classify<T>(url: &str, status: StatusCode, body: &[u8], retry_after: Option<Duration>) -> Attempt<T> {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned());
    let err = OipError::Status { url: url.into(), status: status.as_u16(), message };
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Attempt::Retry(err, retry_after)
    } else {
        Attempt::Fail(err)
    }
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(60.0)))
}

/// A uniform number in [0, 1) from the std hasher's random keys.
#[async_trait]
impl Detector for OipClient {
    async fn detect(&self, image: Vec<u8>) -> Result<Vec<RawDetection>, DetectError> {
        let mut out = self.detect_many(&[&image]).await.map_err(|e| match e {
            OipError::Protocol { .. } => DetectError::Malformed(Box::new(e)),
            e => DetectError::Remote(Box::new(e)),
        })?;
        Ok(out.pop().unwrap_or_default())
    }
}

/// Flags for using a remote server from `labeljob run` and `labeljob shard`.
#[derive(Debug, Clone, clap::Args)]
pub struct EndpointArgs {
    /// Open Inference Protocol v2 server to use instead of in-process inference, e.g.
    /// http://NAME-inference:8000 (default: spec.inference.endpoint, if set).
    #[arg(long, env = "LABELJOB_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Seconds to keep retrying one image on 429, 5xx or connection errors before failing.
    #[arg(long, env = "LABELJOB_ENDPOINT_RETRY_SECONDS", default_value_t = 120)]
    pub endpoint_retry_seconds: u64,
    /// Requests to the server in flight at once.
    #[arg(long, env = "LABELJOB_ENDPOINT_MAX_IN_FLIGHT", default_value_t = 32)]
    pub endpoint_max_in_flight: usize,
}

impl EndpointArgs {
    /// Client options from the flags.
    pub fn options(&self) -> ClientOptions {
        ClientOptions {
            retry_budget: Duration::from_secs(self.endpoint_retry_seconds),
            max_in_flight: self.endpoint_max_in_flight.max(1),
            ..ClientOptions::default()
        }
    }
}
