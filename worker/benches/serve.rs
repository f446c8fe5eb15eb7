//! Server throughput and latency against raw ONNX Runtime, in one process on this machine:
//! raw `ModelSession::detect` in a loop (the ceiling) and `labeljob serve` on 127.0.0.1
//! driven by the OIP client (binary tensors) with 8 concurrent clients, side by side in
//! alternating rounds (the ratio is the median of the per-round ratios: this machine's speed
//! drifts); one client; then an open-loop load at half the 8-client peak for p50/p99 latency.
//! Prints a table.
//!
//! Then batching: a small detector with a dynamic batch dimension, generated with random
//! weights by `tests/bench/make_batch_model.py` (no download), served with `--max-batch-size`
//! 1, 4 and 16 under 16 concurrent one-image clients: img/s and the mean batch the server ran,
//! beside raw ORT on that model at batch 1 and 16.
//!
//! `ORT_DYLIB_PATH=... cargo bench -p labeljob-worker --bench serve`
//! (`LABELJOB_BENCH_SECONDS` sets each phase's length, default 3; `LABELJOB_BENCH_ROUNDS` the
//! rounds of raw ORT beside 8 clients, default 9).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use labeljob_api::v1alpha1::{Device, InputDtype, InputSize, Layout, ModelFormat, ModelSpec};
use labeljob_worker::model::session::{ModelSession, init_ort};
use labeljob_worker::model::signed_weights::WeightSigning;
use labeljob_worker::model::{EngineOptions, Filter, ModelConfig};
use labeljob_worker::oip::client::{ClientOptions, OipClient};
use labeljob_worker::serve::{Server, ServerSettings};

mod common;
use common::{median, percentile};

const NAME: &str = "ssd-mobilenet-v2-coco";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn filter() -> Filter {
    Filter::basic(0.05, 0.5, 300)
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
                    match client.detect_many(&[&image]).await {
                        Ok(_) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => eprintln!("bench request failed: {}", labeljob_api::error_chain(&e)),
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

/// The status code of GET `path` on `addr` (None when it cannot be read).
fn http_status(addr: std::net::SocketAddr, path: &str) -> Option<u16> {
    let mut c = std::net::TcpStream::connect(addr).ok()?;
    c.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).ok()?;
    let mut head = [0u8; 12];
    c.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Means of the server's batch size, model run time (ms) and queue wait (ms), from /metrics.
fn server_means(addr: std::net::SocketAddr) -> (f64, f64, f64) {
    let mut text = String::new();
    if let Ok(mut c) = std::net::TcpStream::connect(addr) {
        let _ = c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
        let _ = c.read_to_string(&mut text);
    }
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let mean = |h: &str| {
        let (sum, count) =
            (value(&format!("labeljob_server_{h}_sum ")), value(&format!("labeljob_server_{h}_count ")));
        if count > 0.0 { sum / count } else { 0.0 }
    };
    (mean("batch_size"), mean("inference_duration_seconds") * 1e3, mean("queue_wait_seconds") * 1e3)
}

/// The batching rows: the dynamic-batch model served at max batch 1, 4 and 16.
async fn batching(secs: f64, cores: usize, image: &Arc<Vec<u8>>) {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("batch.onnx");
    let py = repo().join(".venv/bin/python");
    let status = std::process::Command::new(&py)
        .arg(repo().join("tests/bench/make_batch_model.py"))
        .arg(&path)
        .status()
        .expect("run make_batch_model.py (make test-deps)");
    assert!(status.success(), "make_batch_model.py failed");
    let spec = ModelSpec {
        uri: Some(path.display().to_string()),
        format: Some(ModelFormat::DetectionsXyxy),
        input_size: Some(InputSize { width: 300, height: 300 }),
        dtype: Some(InputDtype::Uint8),
        layout: Some(Layout::Nhwc),
        ..Default::default()
    };
    let model = ModelConfig::resolve(&spec, None).expect("batch model");
    let mut raw = Vec::new();
    let mut session = ModelSession::load(&model, cores, Device::Cpu, WeightSigning::Auto).expect("session");
    for batch in [1usize, 16] {
        let images: Vec<&[u8]> = (0..batch).map(|_| image.as_slice()).collect();
        session.detect(&images, &filter()).expect("warm-up");
        let (started, mut n) = (Instant::now(), 0usize);
        while started.elapsed().as_secs_f64() < secs / 2.0 {
            session.detect(&images, &filter()).expect("detect");
            n += batch;
        }
        raw.push((batch, n as f64 / started.elapsed().as_secs_f64()));
    }
    drop(session);
    println!("\nbatching: dynamic-batch model (3 convolutions, random weights), 16 one-image clients");
    println!(
        "| {:<34} | {:>9} | {:>10} | {:>12} | {:>13} |",
        "load", "img/s", "mean batch", "ms per run", "ms queue wait"
    );
    println!("|{:-<36}|{:->11}|{:->12}|{:->14}|{:->15}|", "", "", "", "", "");
    for (batch, ips) in &raw {
        let run_ms = *batch as f64 * 1e3 / ips;
        println!(
            "| {:<34} | {:>9.1} | {:>10} | {run_ms:>12.1} | {:>13} |",
            format!("raw ORT, batch {batch}"),
            ips,
            batch,
            ""
        );
    }
    for max_batch in [1usize, 4, 16] {
        let running = start(model.clone(), "batch", (1, cores), max_batch).await;
        let addr = running.addr;
        let client =
            OipClient::connect(&format!("http://{addr}"), "batch", 300, 300, ClientOptions::default())
                .await
                .expect("connect");
        // The server answers 503 until the model is loaded: measure once it is ready.
        while http_status(addr, "/v2/health/ready") != Some(200) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for _ in 0..10 {
            client.detect_many(&[image]).await.expect("warm-up");
        }
        let ips = closed_loop(&client, image, 16, secs / 2.0).await;
        let (mean, run_ms, wait_ms) = server_means(addr);
        running.stop().await;
        println!(
            "| {:<34} | {ips:>9.1} | {mean:>10.1} | {run_ms:>12.1} | {wait_ms:>13.1} |",
            format!("serve, --max-batch-size {max_batch}")
        );
    }
}

/// A `labeljob serve` running in this process on 127.0.0.1.
struct Running {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), labeljob_worker::serve::ServeError>>,
}

impl Running {
    /// Shut the server down and wait for it.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Serve `model` as `name` with `(sessions, threads)` and `max_batch` on a free port.
async fn start(
    model: ModelConfig,
    name: &str,
    (sessions, threads): (usize, usize),
    max_batch: usize,
) -> Running {
    let settings = ServerSettings {
        model,
        served_name: name.into(),
        engine: EngineOptions {
            sessions,
            threads_per_session: threads,
            max_batch,
            max_delay: Duration::from_millis(2),
            queue_capacity: 256,
            device: Device::Cpu,
            filter: filter(),
            weights: WeightSigning::Auto,
        },
        limits: labeljob_worker::serve::Limits::default(),
    };
    let server = Server::bind("127.0.0.1:0", settings).await.expect("bind");
    let addr = server.local_addr();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stop_rx.await;
    }));
    Running { addr, stop, task }
}

fn main() {
    let secs: f64 = std::env::var("LABELJOB_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0);
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
    let rounds =
        std::env::var("LABELJOB_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(9usize).max(1);

    // Raw ORT with the sessions `labeljob serve` starts by default (as `labeljob run`: one
    // single-threaded session per core on CPU), each on its own thread, images back to back;
    // and one session with every core (serve's sizing before, for comparison).
    let (sessions, threads) = labeljob_worker::stages::engine_size(Device::Cpu, cores, None, None);
    let raw_one = raw_ort(&mut load_raw(&model, &image, 1, cores), &image, secs);
    let mut raw_sessions = load_raw(&model, &image, sessions, threads);

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let running = runtime.block_on(start(model.clone(), NAME, (sessions, threads), 8));
    let endpoint = format!("http://{}", running.addr);
    let client = runtime.block_on(async {
        let client =
            OipClient::connect(&endpoint, NAME, 300, 300, ClientOptions::default()).await.expect("connect");
        for _ in 0..10 {
            client.detect_many(&[&image]).await.expect("warm-up");
        }
        client
    });
    let one = runtime.block_on(closed_loop(&client, &image, 1, secs));
    // Raw ORT and serve with 8 clients side by side in each round, every other round in
    // reverse order, so a drift of this machine's speed favours neither; the server stays up
    // (its sessions idle) while raw ORT runs.
    let mut measured = Vec::new();
    for r in 0..rounds {
        let serve_eight = || runtime.block_on(closed_loop(&client, &image, 8, secs));
        let (raw, eight) = if r % 2 == 0 {
            let raw = raw_ort(&mut raw_sessions, &image, secs);
            (raw, serve_eight())
        } else {
            let eight = serve_eight();
            (raw_ort(&mut raw_sessions, &image, secs), eight)
        };
        eprintln!(
            "serve, round {}: raw ORT {raw:.1}, 8 clients {eight:.1} img/s ({:.3})",
            r + 1,
            eight / raw
        );
        measured.push((raw, eight));
    }
    let raw = median(measured.iter().map(|m| m.0).collect());
    let eight = median(measured.iter().map(|m| m.1).collect());
    let eight_to_raw = median(measured.iter().map(|m| m.1 / m.0).collect());
    let (lat, sent) = runtime.block_on(open_loop(&client, &image, eight / 2.0, secs));
    runtime.block_on(running.stop());

    println!(
        "labeljob serve ({sessions} sessions × {threads} thread, its default here) vs raw ONNX Runtime \
         (SSD-MobileNet-v2 300x300, {cores} cores, {secs} s per row; raw ORT and 8 clients: median of \
         {rounds} rounds, their ratio the median of the per-round ratios)"
    );
    println!("| {:<34} | {:>9} | {:>10} |", "load", "img/s", "vs raw ORT");
    println!("|{:-<36}|{:->11}|{:->12}|", "", "", "");
    let sized = format!("raw ORT ({sessions} × {threads} thread, in process)");
    println!("| {:<34} | {:>9.1} | {:>10.3} |", sized, raw, 1.0);
    let one_session = format!("raw ORT (1 × {cores} threads)");
    println!("| {:<34} | {:>9.1} | {:>10.3} |", one_session, raw_one, raw_one / raw);
    println!("| {:<34} | {:>9.1} | {:>10.3} |", "serve, 1 client", one, one / raw);
    println!("| {:<34} | {:>9.1} | {:>10.3} |", "serve, 8 clients", eight, eight_to_raw);
    println!();
    println!(
        "open loop at {:.1} req/s (half the 8-client peak): {} answered, p50 {:.1} ms, p99 {:.1} ms",
        sent,
        lat.len(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99)
    );
    let target = if eight_to_raw >= 0.95 { "met" } else { "NOT met" };
    println!("target >= 0.95 of raw ORT at 8 clients: {target} ({eight_to_raw:.3})");
    let p99 = percentile(&lat, 0.99) / (1e3 / one);
    println!("p99 at half load ÷ single-request latency: {p99:.2} (target ≤ 3)");
    runtime.block_on(batching(secs, cores, &image));
}

/// `sessions` sessions of `threads` intra-op threads each, loaded and run a few times.
fn load_raw(model: &ModelConfig, image: &[u8], sessions: usize, threads: usize) -> Vec<ModelSession> {
    (0..sessions)
        .map(|_| {
            let mut session =
                ModelSession::load(model, threads, Device::Cpu, WeightSigning::Auto).expect("session");
            for _ in 0..10 {
                session.detect(&[image], &filter()).expect("warm-up");
            }
            session
        })
        .collect()
}

/// Images per second of `sessions`, each on its own thread running `image` back to back for
/// `secs` seconds: the sum of each thread's images over its own elapsed time.
fn raw_ort(sessions: &mut [ModelSession], image: &[u8], secs: f64) -> f64 {
    std::thread::scope(|scope| {
        let threads: Vec<_> = sessions
            .iter_mut()
            .map(|session| {
                scope.spawn(move || {
                    let (t, mut n) = (Instant::now(), 0u64);
                    while t.elapsed().as_secs_f64() < secs {
                        session.detect(&[image], &filter()).expect("detect");
                        n += 1;
                    }
                    n as f64 / t.elapsed().as_secs_f64()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("raw ORT thread")).sum()
    })
}
