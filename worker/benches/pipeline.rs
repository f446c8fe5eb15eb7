//! `make bench`: where the time goes, measured side by side in one run on ≥ 1,000 images —
//! raw ONNX Runtime on pre-decoded tensors, decode+resize per core, and `labeljob run` end to
//! end (the release binary on a LabelJob file) — with the end-to-end ÷ raw ORT ratio
//! (target ≥ 0.9). Prints a Markdown table.
//!
//! The raw ORT baseline runs the sessions `labeljob run` starts by default
//! ([`stages::engine_size`]: one single-threaded session per core here), each on its own
//! thread over its share of the images: the best this machine does on tensors alone, so the
//! ratio charges the pipeline for everything it adds. One session using every core is shown
//! for comparison. On a CPU-only machine decode and inference share the cores, which caps the
//! ratio at `ORT cost ÷ (ORT cost + decode cost)` per image; the bench prints that ceiling.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use labeljob_api::v1alpha1::{Device, ModelSpec};
use labeljob_worker::imaging::{DecodeLimits, Resizer, decode};
use labeljob_worker::model::ModelConfig;
use labeljob_worker::model::decode::Filter;
use labeljob_worker::model::session::ModelSession;
use labeljob_worker::stages;

const IMAGES: usize = 1000;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn photos() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/fixtures/photos"))
        .expect("fixture photos")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jpg" || e == "png"))
        .collect();
    v.sort();
    v
}

fn main() {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let photos = photos();
    let bytes: Vec<Vec<u8>> = photos.iter().map(|p| std::fs::read(p).expect("read")).collect();
    let spec = ModelSpec { builtin: Some(labeljob_api::DEFAULT_BUILTIN_MODEL.into()), ..Default::default() };
    let cfg = ModelConfig::resolve(&spec, None).expect("builtin model (set LABELJOB_MODELS_DIR)");
    let (w, h) = (cfg.width, cfg.height);
    let limits = DecodeLimits::default();
    let mut resizer = Resizer::new();

    // Decode + resize, one thread.
    let t = Instant::now();
    let mut tensors = Vec::with_capacity(bytes.len());
    for i in 0..IMAGES {
        let img = decode(&bytes[i % bytes.len()], Some((w, h)), &limits).expect("decode");
        let (pixels, _) = resizer.resize(&img, w, h, cfg.resize).expect("resize");
        if i < bytes.len() {
            tensors.push(pixels);
        }
    }
    let decode_ips = IMAGES as f64 / t.elapsed().as_secs_f64();

    // Raw ORT on pre-decoded tensors: the default engine size, and one session on all cores.
    let filter = Filter::basic(0.3, 0.5, 100);
    let (sessions, threads) = stages::engine_size(Device::Cpu, cores, None, None);
    let ort_ips = raw_ort(&cfg, &tensors, &filter, sessions, threads);
    let one_session_ips = raw_ort(&cfg, &tensors, &filter, 1, cores);

    // labeljob run end to end.
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("in");
    std::fs::create_dir(&input).expect("mkdir");
    for i in 0..IMAGES {
        let src = &photos[i % photos.len()];
        let ext = src.extension().and_then(|e| e.to_str()).unwrap_or("jpg");
        std::os::unix::fs::symlink(src, input.join(format!("img{i:05}.{ext}"))).expect("symlink");
    }
    let job = dir.path().join("job.yaml");
    std::fs::write(
        &job,
        format!(
            "apiVersion: labeljob.dev/v1alpha1\nkind: LabelJob\nmetadata: {{name: bench}}\nspec:\n  input: {{uri: 'file://{}'}}\n  model: {{builtin: ssd-mobilenet-v2-coco}}\n  output: {{uri: 'file://{}/out'}}\n  workers: {{shards: 4, concurrency: 16}}\n",
            input.display(),
            dir.path().display()
        ),
    )
    .expect("job");
    let bin = std::env::var_os("LABELJOB_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/release/labeljob"));
    let t = Instant::now();
    let out = Command::new(&bin).arg("run").arg(&job).arg("--no-progress").output().expect("run labeljob");
    let wall = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "labeljob run failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/report.json")).expect("report.json"))
            .expect("json");
    let run_ips = report["imagesPerSecond"].as_f64().expect("imagesPerSecond");
    let process_ips = IMAGES as f64 / wall;

    // Per-image CPU cost: inference = cores / raw img/s, decode = 1 / per-core img/s.
    let (ort_cost, decode_cost) = (cores as f64 / ort_ips, 1.0 / decode_ips);
    let ceiling = ort_cost / (ort_cost + decode_cost);

    println!("\n| measurement ({IMAGES} images, {cores} cores) | img/s | ratio to raw ORT |");
    println!("|---|---:|---:|");
    println!(
        "| raw ONNX Runtime on pre-decoded 300×300 tensors ({sessions} sessions × {threads} thread(s), as `labeljob run`) | {ort_ips:.1} | 1.00 |"
    );
    println!(
        "| raw ONNX Runtime, 1 session × {cores} threads (for comparison) | {one_session_ips:.1} | {:.2} |",
        one_session_ips / ort_ips
    );
    println!("| decode + resize, one core | {decode_ips:.1} | {:.2} |", decode_ips / ort_ips);
    println!(
        "| `labeljob run` end to end (plan → shards → merge) | {run_ips:.1} | {:.2} |",
        run_ips / ort_ips
    );
    println!(
        "| `labeljob run` process wall time incl. start-up and model load | {process_ips:.1} | {:.2} |",
        process_ips / ort_ips
    );
    println!("\nend-to-end ÷ raw ORT = {:.3} (target ≥ 0.9)", run_ips / ort_ips);
    println!(
        "CPU per image: inference {:.1} ms, decode + resize {:.1} ms; with both on the same {cores} cores the \
         ratio cannot exceed {ceiling:.3} (end-to-end ÷ that ceiling = {:.3})",
        ort_cost * 1e3,
        decode_cost * 1e3,
        run_ips / ort_ips / ceiling
    );
}

/// Images per second of `sessions` sessions with `threads` intra-op threads each, every session
/// on its own thread running its share of [`IMAGES`] pre-decoded tensors.
fn raw_ort(cfg: &ModelConfig, tensors: &[Vec<u8>], filter: &Filter, sessions: usize, threads: usize) -> f64 {
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
                for n in (i..IMAGES).step_by(sessions) {
                    s.detect(&[tensors[n % tensors.len()].as_slice()], filter).expect("run");
                }
            });
        }
    });
    IMAGES as f64 / t.elapsed().as_secs_f64()
}
