//! `make bench`: LabelJob side by side with raw ONNX Runtime and two Python peers, on two
//! corpora the bench generates from the fixture photos (`tests/bench/make_corpus.py`):
//! ≥ 1,000 distinct photos ≤ 1 MP and ≥ 200 distinct 12 MP JPEGs. Rows per corpus:
//!
//! - raw ONNX Runtime on pre-decoded tensors, with the sessions `labeljob run` starts by default
//!   ([`stages::engine_size`]: one single-threaded session per core here), each on its own
//!   thread over its share: the best this machine does on tensors alone;
//! - `labeljob run` in process, and `labeljob run --endpoint` against `labeljob serve` on the
//!   same machine (the cluster's data path);
//! - the Python peers (`tests/bench/peer.py`): OpenCV decode + resize + onnxruntime, one
//!   single-threaded session per core; and the same with OpenCV's DCT-scaled
//!   `IMREAD_REDUCED_COLOR_*` decode.
//!
//! This machine's speed drifts by several per cent within minutes, so every row is measured
//! once per round, the rounds one after another (`LABELJOB_BENCH_ROUNDS`, default 5): img/s is
//! the median of the rounds, and each ratio the median of the ratios within a round (both
//! sides measured a minute apart at most). Within a round `labeljob run` is measured next to
//! the peers, and every other round runs its rows in reverse order, so a drift within a round
//! favours neither side. The per-image cost split (core-ms: inference,
//! decode, resize, other) of LabelJob comes from raw ORT and a one-core decode and resize pass;
//! the peers time their own stages. The CPU ceiling is
//! `ORT cost ÷ (ORT cost + decode + resize cost)` per image (they share the cores).
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
use labeljob_worker::model::signed_weights::{self, WeightSigning};
use labeljob_worker::stages;

mod common;
use common::median;

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
fn peer(model: &Path, dir: &Path, reduced: bool) -> serde_json::Value {
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("tests/bench/peer.py")).arg(model).arg(dir);
    if reduced {
        cmd.arg("--reduced");
    }
    let out = cmd.output().expect("run peer.py");
    assert!(out.status.success(), "peer.py failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("peer json")
}

/// The rows of one round on one corpus (img/s).
#[derive(Clone, Copy, Default)]
struct Round {
    /// Raw ORT on the model as `labeljob run` loads it (re-signed where the CPU allows).
    raw: f64,
    /// Raw ORT on the model file as it is.
    raw_file: f64,
    run: f64,
    endpoint: f64,
    peers: [f64; 2],
    /// The reduced-decode peer given the model as `labeljob run` loads it.
    peer_resigned: f64,
}

/// What a round measures, in its order.
#[derive(Clone, Copy)]
enum Row {
    Raw,
    RawFile,
    PeerResigned,
    Run,
    Endpoint,
    /// A Python peer: `true` with OpenCV's reduced decode.
    Peer(bool),
}

impl Round {
    fn best_peer(&self) -> f64 {
        self.peers[0].max(self.peers[1])
    }
}

/// One corpus: its files, LabelJob's one-core decode and resize costs, every round, and the
/// peers' own cost splits (from the last round).
struct Corpus {
    name: String,
    images: usize,
    decode_ms: f64,
    resize_ms: f64,
    rounds: Vec<Round>,
    peer_split: [serde_json::Value; 2],
}

/// Decode and resize every file once on this thread (ms per image for each), keeping up to
/// 200 resized images as tensors for raw ORT.
fn one_core_costs(files: &[PathBuf], cfg: &ModelConfig) -> (f64, f64, Vec<Vec<u8>>) {
    let limits = DecodeLimits::default();
    let mut resizer = Resizer::new();
    let mut tensors = Vec::new();
    let (mut decode_s, mut resize_s) = (0.0, 0.0);
    for (i, f) in files.iter().enumerate() {
        let bytes = std::fs::read(f).expect("read");
        let t = Instant::now();
        let img = decode(&bytes, Some((cfg.width, cfg.height)), &limits).expect("decode");
        let t1 = Instant::now();
        let (pixels, _) = resizer.resize(&img, cfg.width, cfg.height, cfg.resize).expect("resize");
        resize_s += t1.elapsed().as_secs_f64();
        decode_s += t1.duration_since(t).as_secs_f64();
        if i < 200 {
            tensors.push(pixels);
        }
    }
    let n = files.len() as f64;
    (decode_s * 1e3 / n, resize_s * 1e3 / n, tensors)
}

fn measure(name: &str, kind: &str, count: usize, models: &Models, rounds: usize) -> Corpus {
    let cfg = &models.config;
    let (dir, files) = corpus(kind, count);
    let (decode_ms, resize_ms, tensors) = one_core_costs(&files, cfg);
    let cores = stages::cores();
    let (sessions, threads) = stages::engine_size(Device::Cpu, cores, None, None);
    let filter = Filter::basic(0.3, 0.5, 100);
    let work = tempfile::tempdir().expect("tmp");
    let mut all = Vec::new();
    let mut peer_split = [serde_json::Value::Null, serde_json::Value::Null];
    for r in 0..rounds {
        // `labeljob run` next to the peers, and every other round in reverse order: a drift of
        // the machine's speed within a round favours neither side.
        let mut order = [
            Row::Run,
            Row::Peer(false),
            Row::Peer(true),
            Row::PeerResigned,
            Row::Endpoint,
            Row::Raw,
            Row::RawFile,
        ];
        if r % 2 == 1 {
            order.reverse();
        }
        let mut round = Round::default();
        for row in order {
            match row {
                Row::Raw => {
                    round.raw = raw_ort(cfg, WeightSigning::Auto, &tensors, &filter, (sessions, threads), 400)
                }
                Row::RawFile => {
                    round.raw_file =
                        raw_ort(cfg, WeightSigning::Off, &tensors, &filter, (sessions, threads), 400)
                }
                Row::PeerResigned => {
                    let split = peer(&models.as_loaded, &dir, true);
                    round.peer_resigned = split["imagesPerSecond"].as_f64().unwrap_or(0.0);
                }
                Row::Run => round.run = labeljob_run(&dir, work.path(), None),
                Row::Endpoint => {
                    let (mut server, url) = serve();
                    round.endpoint = labeljob_run(&dir, work.path(), Some(&url));
                    let _ = server.kill();
                    let _ = server.wait();
                }
                Row::Peer(reduced) => {
                    let split = peer(&cfg.path, &dir, reduced);
                    round.peers[usize::from(reduced)] = split["imagesPerSecond"].as_f64().unwrap_or(0.0);
                    peer_split[usize::from(reduced)] = split;
                }
            }
        }
        eprintln!(
            "{name}, round {}: raw {:.1} (file as is {:.1}), run {:.1}, endpoint {:.1}, peers {:.1} / {:.1} (re-signed model {:.1})",
            r + 1,
            round.raw,
            round.raw_file,
            round.run,
            round.endpoint,
            round.peers[0],
            round.peers[1],
            round.peer_resigned
        );
        all.push(round);
    }
    Corpus { name: name.into(), images: files.len(), decode_ms, resize_ms, rounds: all, peer_split }
}

/// The default model, and the model as `labeljob run` loads it on this CPU written to a file
/// (the same file when nothing is re-signed) for the Python peer.
struct Models {
    config: ModelConfig,
    as_loaded: PathBuf,
    resigned: bool,
    _dir: tempfile::TempDir,
}

fn models() -> Models {
    let spec = ModelSpec { builtin: Some(labeljob_api::DEFAULT_BUILTIN_MODEL.into()), ..Default::default() };
    let config = ModelConfig::resolve(&spec, None).expect("builtin model (set LABELJOB_MODELS_DIR)");
    let dir = tempfile::tempdir().expect("tmp");
    let resigned = signed_weights::cpu_is_exact()
        .then(|| signed_weights::resign(&std::fs::read(&config.path).expect("model")).expect("model"))
        .flatten();
    let as_loaded = match &resigned {
        Some(r) => {
            let p = dir.path().join("model-int8-weights.onnx");
            std::fs::write(&p, &r.bytes).expect("write model");
            p
        }
        None => config.path.clone(),
    };
    Models { config, as_loaded, resigned: resigned.is_some(), _dir: dir }
}

fn main() {
    let cores = stages::cores();
    let models = models();
    let size =
        |var: &str, default: usize| std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let rounds = size("LABELJOB_BENCH_ROUNDS", 5).max(1);
    let small = measure("photos ≤ 1 MP", "small", size("LABELJOB_BENCH_SMALL", 1000), &models, rounds);
    let large = measure("12 MP JPEGs", "large", size("LABELJOB_BENCH_LARGE", 200), &models, rounds);
    let (sessions, threads) = stages::engine_size(Device::Cpu, cores, None, None);

    println!(
        "\n### Throughput, {cores} cores, {rounds} rounds (img/s: median of the rounds; ratios: median of the per-round ratios)\n"
    );
    println!(
        "raw ONNX Runtime: pre-decoded 300×300 tensors, {sessions} sessions × {threads} thread(s) (as `labeljob run`)"
    );
    println!(
        "model as `labeljob run` loads it: {}\n",
        if models.resigned {
            "uint8 weights re-signed to int8 (this CPU has AVX512-VNNI; outputs unchanged), so raw ORT and `run` are on the re-signed model, the peers on the file as it is"
        } else {
            "the file as it is (this CPU has no AVX512-VNNI: nothing re-signed)"
        }
    );
    println!("| corpus | pipeline | img/s | ÷ raw ORT | ÷ better peer |");
    println!("|---|---|---:|---:|---:|");
    for c in [&small, &large] {
        let ort_ms = cores as f64 * 1e3 / median(c.rounds.iter().map(|r| r.raw).collect());
        let row = |what: &str, pick: &dyn Fn(&Round) -> f64| {
            let ips = median(c.rounds.iter().map(pick).collect());
            let to_raw = median(c.rounds.iter().map(|r| pick(r) / r.raw).collect());
            let to_peer = median(c.rounds.iter().map(|r| pick(r) / r.best_peer()).collect());
            println!("| {} ({} images) | {what} | {ips:.1} | {to_raw:.3} | {to_peer:.3} |", c.name, c.images);
        };
        row("raw ONNX Runtime (model as `run` loads it)", &|r| r.raw);
        row("raw ONNX Runtime (model file as it is)", &|r| r.raw_file);
        row("`labeljob run` (in process)", &|r| r.run);
        row("`labeljob run --endpoint` (serve on this machine)", &|r| r.endpoint);
        row("Python: OpenCV decode + onnxruntime", &|r| r.peers[0]);
        row("Python: OpenCV reduced decode + onnxruntime", &|r| r.peers[1]);
        row("Python: OpenCV reduced decode + onnxruntime, on the model as `run` loads it", &|r| {
            r.peer_resigned
        });
        let prep = c.decode_ms + c.resize_ms;
        let ceiling = ort_ms / (ort_ms + prep);
        println!(
            "| {} | CPU ceiling: inference {ort_ms:.1} + LabelJob decode/resize {prep:.1} core-ms per image | {:.1} | {ceiling:.3} | |",
            c.name,
            cores as f64 * 1e3 / (ort_ms + prep)
        );
    }
    println!("\nPer-image cost split (core-ms: inference, decode, resize, other):");
    for c in [&small, &large] {
        let ort_ms = cores as f64 * 1e3 / median(c.rounds.iter().map(|r| r.raw).collect());
        let run_ms = cores as f64 * 1e3 / median(c.rounds.iter().map(|r| r.run).collect());
        println!(
            "- {} / `labeljob run`: {ort_ms:.1}, {:.1}, {:.1}, {:+.1} (inference from raw ORT; decode and resize on one core; other = the rest of its {run_ms:.1} core-ms per image, below 0 when the run's model time was below raw ORT's)",
            c.name,
            c.decode_ms,
            c.resize_ms,
            run_ms - ort_ms - c.decode_ms - c.resize_ms
        );
        for (i, what) in ["OpenCV", "OpenCV reduced"].iter().enumerate() {
            let v = &c.peer_split[i];
            let ms = |k: &str| v[k].as_f64().unwrap_or(0.0);
            println!(
                "- {} / Python {what}: {:.1}, {:.1}, {:.1}, {:.1} (its own timers, last round)",
                c.name,
                ms("inferenceMs"),
                ms("decodeMs"),
                ms("resizeMs"),
                ms("otherMs")
            );
        }
    }
    println!("\nPer round, `labeljob run` ÷ better peer:");
    for c in [&small, &large] {
        let each: Vec<String> = c.rounds.iter().map(|r| format!("{:.3}", r.run / r.best_peer())).collect();
        println!("- {}: {}", c.name, each.join(", "));
    }
    println!("\nWhere the gain comes from (medians of per-round ratios):");
    for c in [&small, &large] {
        let ratio = |f: &dyn Fn(&Round) -> f64| median(c.rounds.iter().map(f).collect());
        println!(
            "- {}: raw ORT, model as loaded ÷ file as it is = {:.3} (the weight form); `run` ÷ the reduced-decode peer on the same model = {:.3} (the pipeline alone)",
            c.name,
            ratio(&|r| r.raw / r.raw_file),
            ratio(&|r| r.run / r.peer_resigned)
        );
    }
    println!(
        "\ntargets: `labeljob run` ≥ 0.88 of raw ORT and ≥ 1.02× the better peer on photos ≤ 1 MP, ≥ 1.05× on 12 MP; --endpoint ≥ 0.85 of in-process"
    );
    for c in [&small, &large] {
        let ratio = median(c.rounds.iter().map(|r| r.endpoint / r.run).collect());
        println!("- {}: --endpoint ÷ in-process = {ratio:.3}", c.name);
    }
}

/// Images per second of `sessions` sessions with `threads` intra-op threads each, every session
/// on its own thread running its share of `images` runs over the pre-decoded tensors.
fn raw_ort(
    cfg: &ModelConfig,
    weights: WeightSigning,
    tensors: &[Vec<u8>],
    filter: &Filter,
    (sessions, threads): (usize, usize),
    images: usize,
) -> f64 {
    let mut loaded: Vec<ModelSession> = (0..sessions)
        .map(|_| {
            ModelSession::load(cfg, threads, Device::Cpu, weights).expect("ORT session (set ORT_DYLIB_PATH)")
        })
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
