//! `make bench`: LabelJob side by side with raw ONNX Runtime and two Python peers, in one run,
//! on two corpora the bench generates from the fixture photos (`tests/bench/make_corpus.py`):
//! ≥ 1,000 distinct photos ≤ 1 MP and ≥ 200 distinct 12 MP JPEGs. Rows per corpus:
//!
//! - raw ONNX Runtime on pre-decoded tensors, with the sessions `labeljob run` starts by default
//!   ([`stages::engine_size`]: one single-threaded session per core here), each on its own
//!   thread over its share: the best this machine does on tensors alone;
//! - LabelJob's decode + resize on one core (the decode cost per image);
//! - `labeljob run` in process, and `labeljob run --endpoint` against `labeljob serve` on the
//!   same machine (the cluster's data path);
//! - the Python peers (`tests/bench/peer.py`): OpenCV decode + resize + onnxruntime, one
//!   single-threaded session per core; and the same with OpenCV's DCT-scaled
//!   `IMREAD_REDUCED_COLOR_*` decode.
//!
//! Ratios are to raw ORT and to the better peer; the CPU ceiling is
//! `ORT cost ÷ (ORT cost + decode cost)` per image (decode and inference share the cores).
//! `LABELJOB_BENCH_SMALL` / `LABELJOB_BENCH_LARGE` change the corpus sizes.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use labeljob_api::v1alpha1::{Device, ModelSpec};
use labeljob_worker::imaging::{DecodeLimits, Resizer, decode};
use labeljob_worker::model::ModelConfig;
use labeljob_worker::model::decode::Filter;
use labeljob_worker::model::session::ModelSession;
use labeljob_worker::stages;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    let py = repo().join(".venv/bin/python");
    assert!(py.is_file(), "{} is missing: run `make test-deps`", py.display());
    py
}

/// The corpus `kind` of `count` images (generated once, kept under target/bench-corpus).
fn corpus(kind: &str, count: usize) -> (PathBuf, Vec<PathBuf>) {
    let dir = repo().join("target/bench-corpus").join(format!("{kind}-{count}"));
    let status = Command::new(python())
        .arg(repo().join("tests/bench/make_corpus.py"))
        .arg(&dir)
        .arg(kind)
        .arg(count.to_string())
        .status()
        .expect("run make_corpus.py");
    assert!(status.success(), "make_corpus.py {kind} {count} failed");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    (dir, files)
}

fn bin(name: &str) -> PathBuf {
    repo().join("target/release").join(name)
}

/// `labeljob run` on `input` (optionally against `endpoint`): img/s from report.json.
fn labeljob_run(input: &Path, work: &Path, endpoint: Option<&str>) -> f64 {
    let out = work.join(if endpoint.is_some() { "out-endpoint" } else { "out" });
    let _ = std::fs::remove_dir_all(&out);
    let job = work.join("job.yaml");
    std::fs::write(
        &job,
        format!(
            "apiVersion: labeljob.dev/v1alpha1\nkind: LabelJob\nmetadata: {{name: bench}}\nspec:\n  input: {{uri: 'file://{}', dedup: {{mode: none}}}}\n  model: {{builtin: ssd-mobilenet-v2-coco}}\n  output: {{uri: 'file://{}'}}\n  workers: {{shards: 4, concurrency: 16}}\n",
            input.display(),
            out.display()
        ),
    )
    .expect("job");
    let mut cmd = Command::new(bin("labeljob"));
    cmd.arg("run").arg(&job).arg("--no-progress");
    if let Some(e) = endpoint {
        cmd.arg("--endpoint").arg(e);
    }
    let res = cmd.output().expect("run labeljob");
    assert!(res.status.success(), "labeljob run failed: {}", String::from_utf8_lossy(&res.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report.json")).expect("json");
    report["imagesPerSecond"].as_f64().expect("imagesPerSecond")
}

/// `labeljob serve` on a free 127.0.0.1 port, once ready; killed by the caller.
fn serve() -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let child = Command::new(bin("labeljob"))
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("labeljob serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = std::net::TcpStream::connect(("127.0.0.1", port)).ok().and_then(|mut c| {
            c.write_all(b"GET /v2/health/ready HTTP/1.0\r\n\r\n").ok()?;
            let mut head = [0u8; 12];
            c.read_exact(&mut head).ok()?;
            Some(head.ends_with(b"200"))
        });
        if ready == Some(true) {
            break;
        }
        assert!(Instant::now() < deadline, "labeljob serve not ready in 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, format!("http://127.0.0.1:{port}"))
}

/// The Python peer on `dir`: its JSON line.
fn peer(dir: &Path, reduced: bool) -> serde_json::Value {
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("tests/bench/peer.py"))
        .arg(repo().join("models/ssd-mobilenet-v2-coco.onnx"))
        .arg(dir);
    if reduced {
        cmd.arg("--reduced");
    }
    let out = cmd.output().expect("run peer.py");
    assert!(out.status.success(), "peer.py failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("peer json")
}

/// One corpus's rows: LabelJob's decode cost, run, run --endpoint, and the two peers.
struct Rows {
    name: String,
    images: usize,
    decode_ms: f64,
    run: f64,
    endpoint: f64,
    peers: [serde_json::Value; 2],
}

fn measure(name: &str, kind: &str, count: usize, cfg: &ModelConfig) -> (Rows, Vec<Vec<u8>>) {
    let (dir, files) = corpus(kind, count);
    let limits = DecodeLimits::default();
    let mut resizer = Resizer::new();
    let t = Instant::now();
    let mut tensors = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let bytes = std::fs::read(f).expect("read");
        let img = decode(&bytes, Some((cfg.width, cfg.height)), &limits).expect("decode");
        let (pixels, _) = resizer.resize(&img, cfg.width, cfg.height, cfg.resize).expect("resize");
        if i < 200 {
            tensors.push(pixels);
        }
    }
    let decode_ms = t.elapsed().as_secs_f64() * 1e3 / files.len() as f64;
    let work = tempfile::tempdir().expect("tmp");
    let run = labeljob_run(&dir, work.path(), None);
    let (mut server, url) = serve();
    let endpoint = labeljob_run(&dir, work.path(), Some(&url));
    let _ = server.kill();
    let _ = server.wait();
    let peers = [peer(&dir, false), peer(&dir, true)];
    (Rows { name: name.into(), images: files.len(), decode_ms, run, endpoint, peers }, tensors)
}

fn main() {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let spec = ModelSpec { builtin: Some(labeljob_api::DEFAULT_BUILTIN_MODEL.into()), ..Default::default() };
    let cfg = ModelConfig::resolve(&spec, None).expect("builtin model (set LABELJOB_MODELS_DIR)");
    let size =
        |var: &str, default: usize| std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (small, tensors) = measure("photos ≤ 1 MP", "small", size("LABELJOB_BENCH_SMALL", 1000), &cfg);
    let (large, _) = measure("12 MP JPEGs", "large", size("LABELJOB_BENCH_LARGE", 200), &cfg);

    // Raw ORT on pre-decoded tensors: the default engine size, and one session on all cores.
    let filter = Filter::basic(0.3, 0.5, 100);
    let (sessions, threads) = stages::engine_size(Device::Cpu, cores, None, None);
    let ort_ips = raw_ort(&cfg, &tensors, &filter, sessions, threads, 1000);
    let one_session_ips = raw_ort(&cfg, &tensors, &filter, 1, cores, 1000);
    let ort_ms = cores as f64 * 1e3 / ort_ips;

    println!(
        "\n### Throughput, {cores} cores, one run (img/s; ratios to raw ORT and to the better Python peer)\n"
    );
    println!(
        "raw ONNX Runtime on pre-decoded 300×300 tensors: {ort_ips:.1} img/s ({sessions} sessions × {threads} thread(s), as `labeljob run`; {ort_ms:.1} core-ms per image); 1 session × {cores} threads: {one_session_ips:.1}\n"
    );
    println!("| corpus | pipeline | img/s | ÷ raw ORT | ÷ better peer |");
    println!("|---|---|---:|---:|---:|");
    for r in [&small, &large] {
        let p = |i: usize| r.peers[i]["imagesPerSecond"].as_f64().unwrap_or(0.0);
        let best = p(0).max(p(1));
        let row = |what: &str, ips: f64| {
            println!(
                "| {} ({} images) | {what} | {ips:.1} | {:.3} | {:.3} |",
                r.name,
                r.images,
                ips / ort_ips,
                ips / best
            )
        };
        row("`labeljob run` (in process)", r.run);
        row("`labeljob run --endpoint` (serve on this machine)", r.endpoint);
        row("Python: OpenCV decode + onnxruntime", p(0));
        row("Python: OpenCV reduced decode + onnxruntime", p(1));
        let ceiling = ort_ms / (ort_ms + r.decode_ms);
        println!(
            "| {} | CPU ceiling: inference {ort_ms:.1} + LabelJob decode/resize {:.1} core-ms per image | {:.1} | {ceiling:.3} | |",
            r.name,
            r.decode_ms,
            ort_ips * ceiling
        );
    }
    println!("\nPer-image cost split of the peers (core-ms: decode, resize, inference, other):");
    for r in [&small, &large] {
        for (i, what) in ["OpenCV", "OpenCV reduced"].iter().enumerate() {
            let v = &r.peers[i];
            let ms = |k: &str| v[k].as_f64().unwrap_or(0.0);
            println!(
                "- {} / {what}: {:.1}, {:.1}, {:.1}, {:.1}",
                r.name,
                ms("decodeMs"),
                ms("resizeMs"),
                ms("inferenceMs"),
                ms("otherMs")
            );
        }
        println!(
            "- {} / LabelJob: decode + resize {:.1} (one core, this bench), inference {ort_ms:.1} (raw ORT)",
            r.name, r.decode_ms
        );
    }
    println!(
        "\ntargets: `labeljob run` ≥ 0.88 of raw ORT and ≥ 1.02× the better peer on photos ≤ 1 MP, ≥ 1.05× on 12 MP; --endpoint ≥ 0.85 of in-process"
    );
    for r in [&small, &large] {
        println!("- {}: --endpoint ÷ in-process = {:.3}", r.name, r.endpoint / r.run);
    }
}

/// Images per second of `sessions` sessions with `threads` intra-op threads each, every session
/// on its own thread running its share of `images` runs over the pre-decoded tensors.
fn raw_ort(
    cfg: &ModelConfig,
    tensors: &[Vec<u8>],
    filter: &Filter,
    sessions: usize,
    threads: usize,
    images: usize,
) -> f64 {
    let mut loaded: Vec<ModelSession> = (0..sessions)
        .map(|_| ModelSession::load(cfg, threads, Device::Cpu).expect("ORT session (set ORT_DYLIB_PATH)"))
        .collect();
    for s in &mut loaded {
        for t in tensors.iter().take(5) {
            s.detect(&[t.as_slice()], filter).expect("warm-up");
        }
    }
    let t = Instant::now();
    std::thread::scope(|scope| {
        for (i, mut s) in loaded.into_iter().enumerate() {
            scope.spawn(move || {
                for n in (i..images).step_by(sessions) {
                    s.detect(&[tensors[n % tensors.len()].as_slice()], filter).expect("run");
                }
            });
        }
    });
    images as f64 / t.elapsed().as_secs_f64()
}
