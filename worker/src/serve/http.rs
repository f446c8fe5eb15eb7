//! The HTTP surface of `labeljob serve`: the axum router, its shared state, the Open Inference
//! Protocol v2 handlers (health, server and model metadata, model readiness, infer with JSON
//! or binary tensors) and `/metrics` (one prometheus-client registry, prefix
//! `labeljob_server`: requests by status code, request latency, images, and the engine's queue
//! depth, batch sizes, queue wait and inference time, open and evicted connections). Handlers
//! only parse and copy bytes; inference runs on the engine's threads. An infer request is
//! checked in the order that costs least: model name, readiness, `Content-Length` (413), the
//! request-memory budget (429), then the body is read under its deadline (408) and parsed.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::conn::ConnMetrics;
use super::error::ApiError;
use super::limits::{self, Budget, Limits};
use crate::model::{Engine, ModelConfig};
use crate::oip::protocol::{self, HEADER_LENGTH, ProtocolError};
use crate::oip::tensors;

/// Label of the request counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: u16,
}

/// Server-side metrics (the engine's are added when it starts).
#[derive(Debug, Clone)]
struct ServerMetrics {
    requests: Family<CodeLabel, Counter>,
    duration: Histogram,
    images: Counter,
}

/// State shared by the handlers.
#[derive(Debug)]
pub struct AppState {
    served_name: String,
    width: u32,
    height: u32,
    capacity: usize,
    limits: Limits,
    budget: Budget,
    engine: OnceLock<Engine>,
    registry: Mutex<Registry>,
    metrics: ServerMetrics,
    conn_metrics: ConnMetrics,
}

impl AppState {
    /// State for `model` served as `served_name`; not ready until [`AppState::set_ready`].
    pub fn new(served_name: &str, model: &ModelConfig, capacity: usize, limits: Limits) -> Self {
        let mut registry = Registry::with_prefix("labeljob_server");
        let metrics = ServerMetrics {
            requests: Family::default(),
            duration: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            images: Counter::default(),
        };
        registry.register("requests", "HTTP requests by status code", metrics.requests.clone());
        registry.register("request_duration_seconds", "HTTP request latency", metrics.duration.clone());
        registry.register("images", "Images inferred", metrics.images.clone());
        let conn_metrics = ConnMetrics::default();
        conn_metrics.register(&mut registry);
        Self {
            served_name: served_name.into(),
            width: model.width,
            height: model.height,
            capacity,
            budget: Budget::new(limits.max_buffered_bytes),
            limits,
            engine: OnceLock::new(),
            registry: Mutex::new(registry),
            metrics,
            conn_metrics,
        }
    }

    /// The connection metrics, for the accept loop.
    pub fn conn_metrics(&self) -> ConnMetrics {
        self.conn_metrics.clone()
    }

    /// The model is loaded and warmed up: register its metrics and start answering.
    pub fn set_ready(&self, engine: Engine) {
        if let Ok(mut r) = self.registry.lock() {
            engine.metrics.register(&mut r);
        }
        let _ = self.engine.set(engine);
    }

    /// Whether the model is ready.
    pub fn is_ready(&self) -> bool {
        self.engine.get().is_some()
    }

    fn check_model(&self, name: &str, version: Option<&str>) -> Result<(), ApiError> {
        if name != self.served_name {
            return Err(ApiError::ModelNotFound { name: name.into(), served: self.served_name.clone() });
        }
        match version {
            Some(v) if v != "1" => Err(ApiError::VersionNotFound { name: name.into(), version: v.into() }),
            _ => Ok(()),
        }
    }

    fn engine(&self) -> Result<&Engine, ApiError> {
        self.engine.get().ok_or_else(|| ApiError::NotReady(self.served_name.clone()))
    }
}

/// The router: `/v2/...` and `/metrics`, with request metrics.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(|| async { StatusCode::OK }))
        .route("/v2/health/ready", get(server_ready))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/versions/{version}", get(model_metadata_v))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/versions/{version}/ready", get(model_ready_v))
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer_v))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({ "error": "not found" })))
        })
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

async fn track(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let resp = next.run(req).await;
    s.metrics.requests.get_or_create(&CodeLabel { code: resp.status().as_u16() }).inc();
    s.metrics.duration.observe(started.elapsed().as_secs_f64());
    resp
}

async fn server_metadata() -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "name": "labeljob",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
    }))
}

async fn server_ready(State(s): State<Arc<AppState>>) -> StatusCode {
    if s.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

fn metadata(s: &AppState, name: &str, version: Option<&str>) -> Result<Response, ApiError> {
    s.check_model(name, version)?;
    Ok(axum::Json(protocol::model_metadata(&s.served_name, s.width, s.height)).into_response())
}

async fn model_metadata(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    metadata(&s, &name, None)
}

async fn model_metadata_v(
    State(s): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    metadata(&s, &name, Some(&version))
}

fn ready(s: &AppState, name: &str, version: Option<&str>) -> Result<StatusCode, ApiError> {
    s.check_model(name, version)?;
    s.engine()?;
    Ok(StatusCode::OK)
}

async fn model_ready(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    ready(&s, &name, None)
}

async fn model_ready_v(
    State(s): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    ready(&s, &name, Some(&version))
}

async fn infer(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    run_infer(&s, &name, None, request).await
}

async fn infer_v(
    State(s): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    run_infer(&s, &name, Some(&version), request).await
}

async fn run_infer(
    s: &AppState,
    name: &str,
    version: Option<&str>,
    request: Request,
) -> Result<Response, ApiError> {
    s.check_model(name, version)?;
    let engine = s.engine()?;
    let (parts, body) = request.into_parts();
    let max = s.limits.max_body_bytes;
    let declared = match limits::content_length(&parts.headers, max) {
        Ok(d) => d,
        Err(e) => {
            // Refused unread; let a client that is still sending read the answer.
            limits::linger(body, s.limits.body_timeout);
            return Err(e);
        }
    };
    // Held until the answer is sent: the body and the images made from it.
    let _reserved = s.budget.try_reserve(declared.unwrap_or(max))?;
    let body = limits::read_body(body, declared, max, s.limits.body_timeout).await?;
    let header = header_length(&parts.headers, body.len())?;
    // Large JSON tensors take a while to parse: off the async workers.
    let (w, h, cap) = (s.width, s.height, s.capacity);
    let json_heavy = header.is_none() && body.len() > JSON_INLINE_LIMIT;
    let parse_body = move || parse(&body, header.as_deref(), w, h, cap);
    let (req, outputs, images) = if json_heavy {
        tokio::task::spawn_blocking(parse_body).await.map_err(ApiError::Join)??
    } else {
        parse_body()?
    };
    let n = images.len() as u64;
    let dets = engine.try_detect_many(images).await?;
    s.metrics.images.inc_by(n);
    let tensors = tensors::DetectionTensors::pack(&dets);
    let (json, binary) = tensors::encode_response(&s.served_name, req.id, &tensors, &outputs);
    if binary.is_empty() {
        return Ok(
            ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], json).into_response()
        );
    }
    let json_len = json.len();
    let mut bytes = json;
    bytes.extend_from_slice(&binary);
    let mut resp = Response::new(Body::from(bytes));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(HEADER_LENGTH, HeaderValue::from(json_len));
    Ok(resp)
}

/// JSON bodies above this are parsed on the blocking pool.
const JSON_INLINE_LIMIT: usize = 64 << 10;

type Parsed = (protocol::InferRequest, Vec<(&'static str, bool)>, Vec<Vec<u8>>);

/// The `Inference-Header-Content-Length` header, if sent.
fn header_length(headers: &HeaderMap, body: usize) -> Result<Option<String>, ProtocolError> {
    headers
        .get(HEADER_LENGTH)
        .map(|v| {
            v.to_str().map(str::to_string).map_err(|_| ProtocolError::HeaderLength {
                value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
                body,
            })
        })
        .transpose()
}

fn parse(
    body: &[u8],
    header: Option<&str>,
    width: u32,
    height: u32,
    max_images: usize,
) -> Result<Parsed, ProtocolError> {
    let (json, binary) = protocol::split_body(body, header)?;
    let req = protocol::parse_request(json)?;
    let outputs = protocol::requested_outputs(&req)?;
    let images = protocol::parse_images(&req, binary, width, height, max_images)?;
    Ok((req, outputs, images))
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    let mut text = String::new();
    let encoded = match s.registry.lock() {
        Ok(r) => prometheus_client::encoding::text::encode(&mut text, &r).is_ok(),
        Err(_) => false,
    };
    if !encoded {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
