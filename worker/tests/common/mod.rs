//! Helpers shared by the `serve` integration tests: the real SSD model (needs libonnxruntime:
//! ORT_DYLIB_PATH or .cache/ort/lib, from scripts/fetch-ort.sh; the tests fail, not skip,
//! without it), a server bound on 127.0.0.1 with chosen settings, and polling with deadlines.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use labeljob_api::v1alpha1::{Device, InputSize, ModelFormat, ModelSpec};
use labeljob_worker::model::signed_weights::WeightSigning;
use labeljob_worker::model::{EngineOptions, Filter, ModelConfig};
use labeljob_worker::serve::{Limits, ServeError, Server, ServerSettings};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const NAME: &str = "ssd-mobilenet-v2-coco";
pub const SIDE: u32 = 300;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn ort_lib() -> PathBuf {
    let lib = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/ort/lib/libonnxruntime.so"));
    assert!(lib.is_file(), "{} is missing: run scripts/fetch-ort.sh or set ORT_DYLIB_PATH", lib.display());
    labeljob_worker::model::session::init_ort(Some(&lib)).expect("ONNX Runtime loads");
    lib
}

pub fn model() -> ModelConfig {
    ort_lib();
    let spec = ModelSpec {
        uri: Some(repo().join("models/ssd-mobilenet-v2-coco.onnx").display().to_string()),
        format: Some(ModelFormat::SsdTflite),
        input_size: Some(InputSize { width: SIDE, height: SIDE }),
        ..Default::default()
    };
    ModelConfig::resolve(&spec, None).expect("model resolves")
}

pub fn engine_options(queue_capacity: usize) -> EngineOptions {
    EngineOptions {
        sessions: 1,
        threads_per_session: 2,
        max_batch: 8,
        max_delay: Duration::from_millis(2),
        queue_capacity,
        device: Device::Cpu,
        filter: Filter::basic(0.05, 0.5, 300),
        weights: WeightSigning::Auto,
    }
}

/// A photo resized to the model input.
pub fn photo(name: &str) -> Vec<u8> {
    let img = image::open(repo().join("tests/fixtures/photos").join(name)).expect("fixture photo");
    img.resize_exact(SIDE, SIDE, image::imageops::FilterType::Triangle).to_rgb8().into_raw()
}

pub struct Running {
    pub addr: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<Result<(), ServeError>>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), self.task).await.expect("server stops").expect("join")
    }
}

pub async fn start(settings: ServerSettings) -> Running {
    let server = Server::bind("127.0.0.1:0", settings).await.expect("bind");
    let addr = server.local_addr();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    Running { addr, stop: Some(tx), task }
}

pub fn settings(queue_capacity: usize, max_body_bytes: usize) -> ServerSettings {
    with_limits(queue_capacity, Limits { max_body_bytes, ..Limits::default() })
}

/// Settings with the given limits.
pub fn with_limits(queue_capacity: usize, limits: Limits) -> ServerSettings {
    ServerSettings {
        model: model(),
        served_name: NAME.into(),
        engine: engine_options(queue_capacity),
        limits,
    }
}

pub fn http() -> reqwest::Client {
    labeljob_store::init_crypto();
    reqwest::Client::new()
}

pub async fn wait_ready(c: &reqwest::Client, s: &Running) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = c.get(s.url("/v2/health/ready")).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "server not ready within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
