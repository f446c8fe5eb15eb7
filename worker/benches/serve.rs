//! Server throughput and latency against raw ONNX Runtime, in one process on this machine:
//! raw `ModelSession::detect` in a loop (the ceiling), then `labeljob serve` on 127.0.0.1
//! driven by the OIP client (binary tensors) with 1 and 8 concurrent clients, then an
//! open-loop load at half the 8-client peak for p50/p99 latency. Prints a table.
//!
//! `ORT_DYLIB_PATH=... cargo bench -p labeljob-worker --bench serve`
//! (`LABELJOB_BENCH_SECONDS` sets each phase's length, default 6).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use labeljob_api::v1alpha1::{Device, InputSize, ModelFormat, ModelSpec};
use labeljob_worker::model::session::{ModelSession, init_ort};
use labeljob_worker::model::{EngineOptions, Filter, ModelConfig};
use labeljob_worker::oip_client::{ClientOptions, OipClient};
use labeljob_worker::serve::{Server, ServerSettings};

const NAME: &str = "ssd-mobilenet-v2-coco";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn filter() -> Filter {
    Filter::basic(0.05, 0.5, 300)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Closed loop: `clients` tasks each sending one image after another for `secs`.
async fn closed_loop(client: &OipClient, image: &Arc<Vec<u8>>, clients: usize, secs: f64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, image, done, stop) = (client.clone(), image.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if client.detect_many(&[&image]).await.is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Open loop: one request every 1/rate seconds for `secs`; latencies in ms, sorted.
async fn open_loop(client: &OipClient, image: &Arc<Vec<u8>>, rate: f64, secs: f64) -> (Vec<f64>, f64) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::new();
    while started.elapsed().as_secs_f64() < secs {
        tick.tick().await;
        let (client, image) = (client.clone(), image.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            client.detect_many(&[&image]).await.ok().map(|_| t.elapsed().as_secs_f64() * 1e3)
        }));
    }
    let sent = tasks.len() as f64 / started.elapsed().as_secs_f64();
    let mut lat = Vec::new();
    for t in tasks {
        if let Ok(Some(ms)) = t.await {
            lat.push(ms);
        }
    }
    lat.sort_by(f64::total_cmp);
    (lat, sent)
}

fn main() {
    let secs: f64 = std::env::var("LABELJOB_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(6.0);
    let lib = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/ort/lib/libonnxruntime.so"));
    if let Err(e) = init_ort(Some(&lib)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    let spec = ModelSpec {
        uri: Some(repo().join("models/ssd-mobilenet-v2-coco.onnx").display().to_string()),
        format: Some(ModelFormat::SsdTflite),
        input_size: Some(InputSize { width: 300, height: 300 }),
        ..Default::default()
    };
    let model = ModelConfig::resolve(&spec, None).expect("model");
    let photo = image::open(repo().join("tests/fixtures/photos/dog.jpg")).expect("photo");
    let image =
        Arc::new(photo.resize_exact(300, 300, image::imageops::FilterType::Triangle).to_rgb8().into_raw());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);

    // Raw ORT: one session with every core, images back to back.
    let mut session = ModelSession::load(&model, cores, Device::Cpu).expect("session");
    for _ in 0..10 {
        session.detect(&[&image], &filter()).expect("warm-up");
    }
    let (started, mut n) = (Instant::now(), 0u64);
    while started.elapsed().as_secs_f64() < secs {
        session.detect(&[&image], &filter()).expect("detect");
        n += 1;
    }
    let raw = n as f64 / started.elapsed().as_secs_f64();
    drop(session);

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let settings = ServerSettings {
            model,
            served_name: NAME.into(),
            engine: EngineOptions {
                sessions: 1,
                threads_per_session: cores,
                max_batch: 8,
                max_delay: Duration::from_millis(2),
                queue_capacity: 256,
                device: Device::Cpu,
                filter: filter(),
            },
            limits: labeljob_worker::serve::Limits::default(),
        };
        let server = Server::bind("127.0.0.1:0", settings).await.expect("bind");
        let endpoint = format!("http://{}", server.local_addr());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stop_rx.await;
        }));
        let client =
            OipClient::connect(&endpoint, NAME, 300, 300, ClientOptions::default()).await.expect("connect");
        for _ in 0..10 {
            client.detect_many(&[&image]).await.expect("warm-up");
        }
        let one = closed_loop(&client, &image, 1, secs).await;
        let eight = closed_loop(&client, &image, 8, secs).await;
        let (lat, sent) = open_loop(&client, &image, eight / 2.0, secs).await;
        let _ = stop_tx.send(());
        let _ = task.await;

        println!(
            "labeljob serve vs raw ONNX Runtime (SSD-MobileNet-v2 300x300, {cores} cores, {secs} s per row)"
        );
        println!("| {:<34} | {:>9} | {:>10} |", "load", "img/s", "vs raw ORT");
        println!("|{:-<36}|{:->11}|{:->12}|", "", "", "");
        println!("| {:<34} | {:>9.1} | {:>10.3} |", "raw ORT (1 session, in process)", raw, 1.0);
        println!("| {:<34} | {:>9.1} | {:>10.3} |", "serve, 1 client", one, one / raw);
        println!("| {:<34} | {:>9.1} | {:>10.3} |", "serve, 8 clients", eight, eight / raw);
        println!();
        println!(
            "open loop at {:.1} req/s (half the 8-client peak): {} answered, p50 {:.1} ms, p99 {:.1} ms",
            sent,
            lat.len(),
            percentile(&lat, 0.50),
            percentile(&lat, 0.99)
        );
        let target = if eight / raw >= 0.95 { "met" } else { "NOT met" };
        println!("target >= 0.95 of raw ORT at 8 clients: {target} ({:.3})", eight / raw);
    });
}
