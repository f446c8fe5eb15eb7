//! The inference engine: OS threads that each own a `ModelSession` (never the async runtime),
//! fed by a bounded queue. Async callers submit one resized image and await its detections
//! over a oneshot channel; a thread takes whatever is queued, up to the batch size, waiting at
//! most the batch delay for more (dynamic batching). A full queue either waits (pipelines) or
//! fails fast with `Overloaded` (the HTTP server answers 429).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use labeljob_api::v1alpha1::Device;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::mpsc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::config::ModelConfig;
use super::decode::{Filter, RawDetection};
use super::session::{ModelSession, SessionError};
use super::signed_weights::WeightSigning;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Sessions (inference threads).
    pub sessions: usize,
    /// Intra-op threads per session.
    pub threads_per_session: usize,
    /// Largest batch (capped by what the model accepts).
    pub max_batch: usize,
    /// Longest wait for a batch to fill.
    pub max_delay: Duration,
    /// Images queued or running before `try_detect` refuses.
    pub queue_capacity: usize,
    /// Execution device.
    pub device: Device,
    /// Decoding filter applied inside the engine.
    pub filter: Filter,
    /// Whether a CPU session re-signs the model's uint8 weights ([`super::signed_weights`]).
    pub weights: WeightSigning,
}

/// Inference errors as callers see them.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The queue is full (HTTP 429).
    #[error("inference queue is full ({0} images)")]
    Overloaded(usize),
    /// The image has the wrong size for the model.
    #[error("image has {got} bytes, the model takes {width}x{height}x3 = {want}")]
    BadInput {
        /// Bytes received.
        got: usize,
        /// Bytes expected.
        want: usize,
        /// Model width.
        width: u32,
        /// Model height.
        height: u32,
    },
    /// The model failed on this batch.
    #[error("inference failed: {0}")]
    Model(#[source] Arc<SessionError>),
    /// The model's output for this image is malformed (the other images of its batch are
    /// answered).
    #[error(transparent)]
    BadOutput(#[from] super::decode::BadOutput),
    /// The image could not be decoded or resized (its [`PrepareFn`] told the caller why).
    #[error("the image could not be prepared for the model")]
    Unprepared,
    /// The engine has stopped.
    #[error("inference engine stopped")]
    Stopped,
}

/// Metrics of the engine (registered by the binary that serves them).
#[derive(Debug, Clone)]
pub struct EngineMetrics {
    /// Images waiting or running.
    pub queue_depth: Gauge,
    /// Images per model run.
    pub batch_size: Histogram,
    /// Seconds an image waited before its batch ran.
    pub queue_wait: Histogram,
    /// Seconds per model run.
    pub inference: Histogram,
}

impl Default for EngineMetrics {
    fn default() -> Self {
        Self {
            queue_depth: Gauge::default(),
            batch_size: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
            queue_wait: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            inference: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
        }
    }
}

impl EngineMetrics {
    /// Register under `registry` (the caller picks the prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "queue_depth",
            "Images queued or running in the inference engine",
            self.queue_depth.clone(),
        );
        registry.register("batch_size", "Images per model run", self.batch_size.clone());
        registry.register(
            "queue_wait_seconds",
            "Time an image waited for its batch",
            self.queue_wait.clone(),
        );
        registry.register("inference_duration_seconds", "Time per model run", self.inference.clone());
    }
}

/// Work an inference thread does for one image right before its model run: decode and resize,
/// giving the model-input pixels, or `None` when the image cannot be prepared (the closure
/// tells its caller why itself; a closure that panics is answered `Unprepared` too). Run on the thread that owns the session, a decode neither
/// waits for a hand-off nor preempts a model run, as a one-thread-per-core script does.
pub type PrepareFn = Box<dyn FnOnce() -> Option<Vec<u8>> + Send>;

/// What a queued image is: model-input pixels, or the work that makes them.
enum Input {
    Pixels(Vec<u8>),
    Prepare(PrepareFn),
}

struct Job {
    image: Input,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Vec<RawDetection>, InferError>>,
    /// The caller's span: the inference thread logs under it.
    span: tracing::Span,
    _permit: OwnedSemaphorePermit,
}

/// Handle to the engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    tx: mpsc::Sender<Job>,
    slots: Arc<Semaphore>,
    capacity: usize,
    input_len: usize,
    config: Arc<ModelConfig>,
    /// The engine's metrics.
    pub metrics: EngineMetrics,
    /// Effective largest batch.
    pub max_batch: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("model", &self.config.name).field("capacity", &self.capacity).finish()
    }
}

impl Engine {
    /// Load the model in `opts.sessions` threads and start them. Returns once every session
    /// is loaded (errors such as a bad model or a missing ORT library surface here). The
    /// sessions load side by side: each load is mostly one core's work (graph optimisation,
    /// weight prepacking, the warm-up run), so two cores load two in the time of one.
    pub fn start(config: ModelConfig, opts: EngineOptions) -> Result<Self, SessionError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let metrics = EngineMetrics::default();
        let loaded: Vec<Result<ModelSession, SessionError>> = std::thread::scope(|scope| {
            let loads: Vec<_> = (0..opts.sessions.max(1))
                .map(|i| {
                    std::thread::Builder::new()
                        .name(format!("load-{i}"))
                        .spawn_scoped(scope, || load_warm(&config, &opts))
                        .map_err(|e| SessionError::Thread(format!("cannot start a loading thread: {e}")))
                })
                .collect();
            loads
                .into_iter()
                .map(|load| {
                    load?
                        .join()
                        .unwrap_or_else(|_| Err(SessionError::Thread("loading the model panicked".into())))
                })
                .collect()
        });
        let mut model_batch = usize::MAX;
        for (i, session) in loaded.into_iter().enumerate() {
            let session = session?;
            model_batch = model_batch.min(session.max_batch);
            let (rx, opts, metrics) = (rx.clone(), opts.clone(), metrics.clone());
            std::thread::Builder::new()
                .name(format!("inference-{i}"))
                .spawn(move || run_thread(session, rx, opts, metrics))
                .map_err(|e| SessionError::Thread(format!("cannot start inference thread: {e}")))?;
        }
        let max_batch = opts.max_batch.max(1).min(model_batch);
        let input_len = config.width as usize * config.height as usize * 3;
        Ok(Self {
            tx,
            slots: Arc::new(Semaphore::new(opts.queue_capacity.max(1))),
            capacity: opts.queue_capacity.max(1),
            input_len,
            config: Arc::new(config),
            metrics,
            max_batch,
        })
    }

    /// The model this engine runs.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Detect on one resized RGB image, waiting for queue space.
    pub async fn detect(&self, image: Vec<u8>) -> Result<Vec<RawDetection>, InferError> {
        let permit = self.slots.clone().acquire_owned().await.map_err(|_| InferError::Stopped)?;
        self.submit(image, permit)?.await.map_err(|_| InferError::Stopped)?
    }

    /// Decode and resize one image on an inference thread, right before its model run
    /// ([`PrepareFn`]), waiting for queue space. `Err(Unprepared)` when `prepare` gave nothing.
    pub async fn prepare_and_detect(&self, prepare: PrepareFn) -> Result<Vec<RawDetection>, InferError> {
        let permit = self.slots.clone().acquire_owned().await.map_err(|_| InferError::Stopped)?;
        self.enqueue(Input::Prepare(prepare), permit)?.await.map_err(|_| InferError::Stopped)?
    }

    /// Detect on several images, failing at once with `Overloaded` when the queue cannot take
    /// them all (the server's 429).
    pub async fn try_detect_many(&self, images: Vec<Vec<u8>>) -> Result<Vec<Vec<RawDetection>>, InferError> {
        let n = images.len() as u32;
        let mut permit = self
            .slots
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| InferError::Overloaded(self.capacity))?;
        let mut waits = Vec::with_capacity(images.len());
        for image in images {
            let one = permit.split(1).ok_or(InferError::Stopped)?;
            waits.push(self.submit(image, one)?);
        }
        let mut out = Vec::with_capacity(waits.len());
        for w in waits {
            out.push(w.await.map_err(|_| InferError::Stopped)??);
        }
        Ok(out)
    }

    fn submit(
        &self,
        image: Vec<u8>,
        permit: OwnedSemaphorePermit,
    ) -> Result<oneshot::Receiver<Result<Vec<RawDetection>, InferError>>, InferError> {
        if image.len() != self.input_len {
            return Err(InferError::BadInput {
                got: image.len(),
                want: self.input_len,
                width: self.config.width,
                height: self.config.height,
            });
        }
        self.enqueue(Input::Pixels(image), permit)
    }

    fn enqueue(
        &self,
        image: Input,
        permit: OwnedSemaphorePermit,
    ) -> Result<oneshot::Receiver<Result<Vec<RawDetection>, InferError>>, InferError> {
        let (reply, rx) = oneshot::channel();
        self.metrics.queue_depth.inc();
        self.tx
            .send(Job {
                image,
                enqueued: Instant::now(),
                reply,
                span: tracing::Span::current(),
                _permit: permit,
            })
            .map_err(|_| InferError::Stopped)?;
        Ok(rx)
    }
}

/// One session, loaded and run once. A session's first run sizes its memory arena (and, on a
/// GPU, compiles kernels): done now, the first images (and requests, once ready) do not wait
/// for it.
fn load_warm(config: &ModelConfig, opts: &EngineOptions) -> Result<ModelSession, SessionError> {
    let mut session = ModelSession::load(config, opts.threads_per_session, opts.device, opts.weights)?;
    let (w, h) = session.input_size();
    if let Err(e) = session.detect(&[&vec![0; w as usize * h as usize * 3]], &opts.filter) {
        tracing::debug!(error = %e, "warm-up run failed; the first image runs cold");
    }
    Ok(session)
}

fn run_thread(
    mut session: ModelSession,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    opts: EngineOptions,
    metrics: EngineMetrics,
) {
    let max_batch = opts.max_batch.max(1).min(session.max_batch);
    let (width, height) = session.input_size();
    loop {
        let batch = {
            let Ok(rx) = rx.lock() else { return };
            // Block for the first image; then take what else arrives until the batch is full or
            // the batch delay has passed (no delay at all when the model takes one at a time).
            let Ok(first) = rx.recv() else { return };
            let mut batch = vec![first];
            let deadline = Instant::now() + opts.max_delay;
            while batch.len() < max_batch {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(mpsc::TryRecvError::Empty) if !left.is_zero() => match rx.recv_timeout(left) {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    },
                    Err(_) => break,
                }
            }
            batch
        };
        // Callers that gave up are dropped before running.
        let batch: Vec<Job> = batch
            .into_iter()
            .filter(|j| {
                let open = !j.reply.is_closed();
                if !open {
                    metrics.queue_depth.dec();
                }
                open
            })
            .collect();
        if batch.is_empty() {
            continue;
        }
        let now = Instant::now();
        for j in &batch {
            metrics.queue_wait.observe(now.duration_since(j.enqueued).as_secs_f64());
        }
        metrics.batch_size.observe(batch.len() as f64);
        let (batch, pixels) = prepare_batch(batch, (width, height), &metrics);
        if batch.is_empty() {
            continue;
        }
        let images: Vec<&[u8]> = pixels.iter().map(Vec::as_slice).collect();
        let started = Instant::now();
        let result = session.detect(&images, &opts.filter);
        metrics.inference.observe(started.elapsed().as_secs_f64());
        drop(images);
        // The next image prepared on this thread is resized into one of these buffers.
        pixels.into_iter().for_each(crate::imaging::recycle_input);
        match result {
            Ok(dets) => {
                for (job, d) in batch.into_iter().zip(dets) {
                    metrics.queue_depth.dec();
                    match &d {
                        Ok(d) => tracing::trace!(parent: &job.span, detections = d.len(), "inferred"),
                        Err(e) => {
                            tracing::warn!(parent: &job.span, error = %e, "malformed model output for one image")
                        }
                    }
                    let _ = job.reply.send(d.map_err(InferError::BadOutput));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "inference failed");
                let e = Arc::new(e);
                for job in batch {
                    metrics.queue_depth.dec();
                    tracing::debug!(parent: &job.span, error = %e, "inference failed");
                    let _ = job.reply.send(Err(InferError::Model(e.clone())));
                }
            }
        }
    }
}

/// Run the [`PrepareFn`]s of a batch on this thread and answer the images that gave nothing (or
/// pixels of the wrong size); the rest go to the model, with their pixels.
fn prepare_batch(
    batch: Vec<Job>,
    (width, height): (u32, u32),
    metrics: &EngineMetrics,
) -> (Vec<Job>, Vec<Vec<u8>>) {
    let want = width as usize * height as usize * 3;
    let mut kept = Vec::with_capacity(batch.len());
    let mut pixels = Vec::with_capacity(batch.len());
    for mut job in batch {
        let image = match std::mem::replace(&mut job.image, Input::Pixels(Vec::new())) {
            Input::Pixels(p) => Ok(p),
            // A panicking decode fails its image, never the inference thread.
            Input::Prepare(f) => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                Ok(Some(p)) if p.len() == want => Ok(p),
                Ok(Some(p)) => Err(InferError::BadInput { got: p.len(), want, width, height }),
                Ok(None) | Err(_) => Err(InferError::Unprepared),
            },
        };
        match image {
            Ok(p) => {
                pixels.push(p);
                kept.push(job);
            }
            Err(e) => {
                metrics.queue_depth.dec();
                let _ = job.reply.send(Err(e));
            }
        }
    }
    (kept, pixels)
}
