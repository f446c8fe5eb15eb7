//! `labeljob serve`: an Open Inference Protocol v2 REST server for one detection model. It
//! listens at once (live), loads the model on the engine's own threads and runs one warm-up
//! inference (then ready), and serves `/v2/...` and `/metrics` until SIGTERM or ctrl-c, when
//! it stops accepting and drains the requests in flight. A model that cannot load (bad file,
//! no ONNX Runtime, no CUDA) stops the server with an error, so the process exits non-zero.
//! What a client can make it hold, and for how long, is bounded: see `limits` and `conn`.

pub mod conn;
pub mod error;
pub mod http;
pub mod limits;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use labeljob_api::resolve::{DEFAULT_MAX_BATCH_DELAY_MS, DEFAULT_MAX_BATCH_SIZE};
use labeljob_api::v1alpha1::{Device, InputSize, ModelFormat, ModelSpec};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use error::{ApiError, ServeError};
pub use http::AppState;
pub use limits::Limits;

use crate::model::config::builtin_names;
use crate::model::signed_weights::WeightSigning;
use crate::model::{Engine, EngineOptions, Filter, ModelConfig};

/// Name a model file is served under when `--model-name` is not given (and the name shards
/// call when `inference.modelName` is not set).
pub use labeljob_api::resolve::DEFAULT_FILE_MODEL_NAME;

/// Arguments of `labeljob serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// A builtin model name, or the path of an ONNX model file (then also give --format and
    /// --input-size).
    #[arg(long, env = "LABELJOB_SERVE_MODEL", default_value = labeljob_api::DEFAULT_BUILTIN_MODEL)]
    pub model: String,
    /// Name the model is served under (default: the builtin name, or `model` for a file).
    #[arg(long, env = "LABELJOB_SERVE_MODEL_NAME")]
    pub model_name: Option<String>,
    /// Output format of a model file: ssd-tflite, yolov8 or detections-xyxy.
    #[arg(long, env = "LABELJOB_SERVE_FORMAT", value_parser = parse_format)]
    pub format: Option<ModelFormat>,
    /// Input size of a model file, WIDTHxHEIGHT (e.g. 640x640).
    #[arg(long, env = "LABELJOB_SERVE_INPUT_SIZE", value_parser = parse_size)]
    pub input_size: Option<InputSize>,
    /// Address to listen on.
    #[arg(long, env = "LABELJOB_SERVE_HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Port to listen on.
    #[arg(long, env = "LABELJOB_SERVE_PORT", default_value_t = 8000)]
    pub port: u16,
    /// Largest batch of images per model run (models with a fixed batch of 1 run item by item).
    #[arg(long, env = "LABELJOB_SERVE_MAX_BATCH_SIZE", default_value_t = DEFAULT_MAX_BATCH_SIZE as usize)]
    pub max_batch_size: usize,
    /// Longest an image waits for others to fill a batch, in milliseconds.
    #[arg(long, env = "LABELJOB_SERVE_MAX_BATCH_DELAY_MS", default_value_t = u64::from(DEFAULT_MAX_BATCH_DELAY_MS))]
    pub max_batch_delay_ms: u64,
    /// Model sessions, each on its own thread (default: as `labeljob run` sizes them, one per
    /// core on CPU, at most 4, and 1 on CUDA: on CPU a small detector serves more images from
    /// single-threaded sessions side by side than from one session with every core).
    #[arg(long, env = "LABELJOB_SERVE_SESSIONS")]
    pub sessions: Option<usize>,
    /// Intra-op threads per session (default: the cores divided by the sessions).
    #[arg(long, env = "LABELJOB_SERVE_THREADS")]
    pub threads: Option<usize>,
    /// Images queued or running before requests get 429 Too Many Requests.
    #[arg(long, env = "LABELJOB_SERVE_QUEUE_CAPACITY", default_value_t = 256)]
    pub queue_capacity: usize,
    /// Largest request body in bytes: 413 above, from Content-Length before the body is read.
    #[arg(long, env = "LABELJOB_SERVE_MAX_BODY_BYTES", default_value_t = 32 << 20)]
    pub max_body_bytes: usize,
    /// Request memory held at once, in bytes: an infer request reserves twice its body (at
    /// least 64 KiB) before reading it, and gets 429 when the rest of this cannot cover it.
    /// At least twice --max-body-bytes.
    #[arg(long, env = "LABELJOB_SERVE_MAX_BUFFERED_BYTES", default_value_t = 512 << 20)]
    pub max_buffered_bytes: usize,
    /// Seconds a connection may take to send a request's headers, from accepting it or from
    /// answering its previous request; then it is closed (idle and stalled connections).
    #[arg(long, env = "LABELJOB_SERVE_HEADER_TIMEOUT_SECONDS", default_value_t = 15.0)]
    pub header_timeout_seconds: f64,
    /// Seconds a request body may take to arrive (408 Request Timeout after).
    #[arg(long, env = "LABELJOB_SERVE_BODY_TIMEOUT_SECONDS", default_value_t = 60.0)]
    pub body_timeout_seconds: f64,
    /// Open connections at most: a new one beyond this closes the longest-idle one, so health
    /// probes still get in. Keep it below the process's file-descriptor limit.
    #[arg(long, env = "LABELJOB_SERVE_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Execution device: cpu or cuda.
    #[arg(long, env = "LABELJOB_SERVE_DEVICE", default_value = "cpu", value_parser = parse_device)]
    pub device: Device,
    /// On CPU: `auto` loads the model's uint8 conv weights as int8 where the CPU's int8 kernels
    /// are exact for it (AVX512-VNNI; outputs unchanged, inference faster); `off` loads the
    /// model file as it is.
    #[arg(long, env = "LABELJOB_SERVE_INT8_WEIGHTS", value_enum, default_value_t)]
    pub int8_weights: WeightSigning,
    /// Lowest score returned: a floor; clients apply their job's own threshold.
    #[arg(long, env = "LABELJOB_SERVE_SCORE_THRESHOLD", default_value_t = 0.05)]
    pub score_threshold: f32,
    /// IoU threshold of the non-maximum suppression (models without NMS inside).
    #[arg(long, env = "LABELJOB_SERVE_IOU_THRESHOLD", default_value_t = 0.5)]
    pub iou_threshold: f32,
    /// Most detections returned per image.
    #[arg(long, env = "LABELJOB_SERVE_MAX_DETECTIONS", default_value_t = 300)]
    pub max_detections: usize,
}

fn parse_format(s: &str) -> Result<ModelFormat, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| format!("{s:?} is not a model format (ssd-tflite, yolov8, detections-xyxy)"))
}

fn parse_size(s: &str) -> Result<InputSize, String> {
    let bad = || format!("{s:?} is not WIDTHxHEIGHT");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let size = InputSize {
        width: w.trim().parse().map_err(|_| bad())?,
        height: h.trim().parse().map_err(|_| bad())?,
    };
    // the same range a LabelJob's model.inputSize has: the engine allocates width × height × 3
    size.check()?;
    Ok(size)
}

fn parse_device(s: &str) -> Result<Device, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| format!("{s:?} is not a device (cpu, cuda)"))
}

impl ServeArgs {
    /// Resolve the model and the engine settings.
    pub fn settings(&self) -> Result<ServerSettings, ServeError> {
        let builtin = builtin_names().contains(&self.model.as_str());
        let spec = if builtin {
            ModelSpec { builtin: Some(self.model.clone()), ..Default::default() }
        } else {
            if self.format.is_none() || self.input_size.is_none() {
                return Err(ServeError::ModelSettings(self.model.clone()));
            }
            ModelSpec {
                uri: Some(self.model.clone()),
                format: self.format,
                input_size: self.input_size,
                ..Default::default()
            }
        };
        let model = ModelConfig::resolve(&spec, None)?;
        let name = self.model_name.clone().unwrap_or_else(|| {
            if builtin { model.name.clone() } else { DEFAULT_FILE_MODEL_NAME.to_string() }
        });
        let (sessions, threads) =
            crate::stages::engine_size(self.device, crate::stages::cores(), self.sessions, self.threads);
        let engine = EngineOptions {
            sessions,
            threads_per_session: threads,
            max_batch: self.max_batch_size.max(1),
            max_delay: Duration::from_millis(self.max_batch_delay_ms),
            queue_capacity: self.queue_capacity.max(1),
            device: self.device,
            filter: Filter::basic(self.score_threshold, self.iou_threshold, self.max_detections.max(1)),
            weights: self.int8_weights,
        };
        let limits = Limits {
            max_body_bytes: self.max_body_bytes,
            max_buffered_bytes: self.max_buffered_bytes,
            header_timeout: seconds(self.header_timeout_seconds, "--header-timeout-seconds")?,
            body_timeout: seconds(self.body_timeout_seconds, "--body-timeout-seconds")?,
            max_connections: self.max_connections,
        };
        limits.check().map_err(ServeError::Limits)?;
        Ok(ServerSettings { model, served_name: name, engine, limits })
    }
}

fn seconds(s: f64, flag: &str) -> Result<Duration, ServeError> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| ServeError::Limits(format!("{flag} {s} is not a positive number of seconds")))
}

/// Everything the server needs.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// The model.
    pub model: ModelConfig,
    /// The name it is served under.
    pub served_name: String,
    /// Engine settings (batching, queue, device, decoding floor).
    pub engine: EngineOptions,
    /// Request and connection limits.
    pub limits: Limits,
}

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    settings: ServerSettings,
}

impl Server {
    /// Open the listening socket (`host:port`; port 0 picks a free one).
    pub async fn bind(addr: &str, settings: ServerSettings) -> Result<Self, ServeError> {
        let bind_err = |source| ServeError::Bind { addr: addr.to_string(), source };
        let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        Ok(Self { listener, addr, settings })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve until `shutdown` completes (then drain the requests in flight) or the model fails
    /// to load (then return that error).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let Self { listener, addr, settings } = self;
        let ServerSettings { model, served_name, engine: opts, limits } = settings;
        limits.check().map_err(ServeError::Limits)?;
        let conn_opts = conn::ConnOptions {
            header_timeout: limits.header_timeout,
            max_connections: limits.max_connections,
        };
        let state = Arc::new(AppState::new(&served_name, &model, opts.queue_capacity, limits));
        let (failed_tx, failed_rx) = oneshot::channel::<ServeError>();
        let loader = {
            let state = state.clone();
            tokio::spawn(async move {
                if let Err(e) = load(state, model, opts).await {
                    let _ = failed_tx.send(e);
                }
            })
        };
        // The loader's failure ends the server like a signal does, and is returned.
        let failure = Arc::new(std::sync::Mutex::new(None::<ServeError>));
        let signal = {
            let failure = failure.clone();
            async move {
                tokio::select! {
                    () = shutdown => {}
                    Ok(e) = failed_rx => {
                        if let Ok(mut slot) = failure.lock() {
                            *slot = Some(e);
                        }
                    }
                }
            }
        };
        tracing::info!(%addr, model = %served_name, "serving the Open Inference Protocol v2");
        let metrics = state.conn_metrics();
        conn::serve(listener, http::router(state), conn_opts, metrics, signal).await;
        loader.abort();
        let failed = failure.lock().ok().and_then(|mut f| f.take());
        match failed {
            Some(e) => Err(e),
            None => {
                tracing::info!("stopped after draining in-flight requests");
                Ok(())
            }
        }
    }
}

/// Load the model on blocking threads, warm it up, then mark the server ready.
async fn load(state: Arc<AppState>, model: ModelConfig, opts: EngineOptions) -> Result<(), ServeError> {
    let started = std::time::Instant::now();
    let (w, h) = (model.width as usize, model.height as usize);
    let engine = tokio::task::spawn_blocking(move || Engine::start(model, opts))
        .await
        .map_err(ServeError::Loader)?
        .map_err(ServeError::Session)?;
    engine.detect(vec![0u8; w * h * 3]).await.map_err(ServeError::Warmup)?;
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        max_batch = engine.max_batch,
        "model loaded and warmed up: ready"
    );
    state.set_ready(engine);
    Ok(())
}

/// Resolves on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c: shutting down"),
        () = term => tracing::info!("SIGTERM: shutting down"),
    }
}

/// `labeljob serve`: resolve, bind, serve until a signal.
pub async fn run(args: ServeArgs) -> Result<(), ServeError> {
    let settings = args.settings()?;
    let server = Server::bind(&format!("{}:{}", args.host, args.port), settings).await?;
    server.run(shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_sizes_parse_within_the_model_range() {
        assert_eq!(parse_size("640x480"), Ok(InputSize { width: 640, height: 480 }));
        assert_eq!(parse_size(" 8192 X 1 "), Ok(InputSize { width: 8192, height: 1 }));
        // the engine would allocate width × height × 3 bytes for its warm-up run
        assert_eq!(parse_size("100000x100000"), Err("100000x100000 is outside 1–8192".into()));
        assert_eq!(parse_size("0x300"), Err("0x300 is outside 1–8192".into()));
        assert_eq!(parse_size("300"), Err("\"300\" is not WIDTHxHEIGHT".into()));
    }
}
