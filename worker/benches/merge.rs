//! `make bench`: the merge with every output format vs COCO alone, on synthetic shards of
//! 100,000 images × 10 boxes (`LABELJOB_BENCH_MERGE_IMAGES` to change the size), to a `file://`
//! output. The runs read the same shard files in the same process, one after the other: COCO
//! alone, every format with the per-image formats as zip archives (the default), and every
//! format as directories (`output.archive: none`, a file per image: the file system's floor is
//! printed beside it). The table gives the ratios (target: all formats ≤ 2× COCO alone). Also
//! reported: peak RSS growth of each merge (bounded by one shard: 10,000 images here).

use std::sync::Arc;
use std::time::Instant;

use labeljob_api::parse_labeljob;
use labeljob_store::layout;
use labeljob_store::manifest::{Manifest, ManifestEntry, shard_range};
use labeljob_worker::job::JobContext;
use labeljob_worker::merge::merge;
use labeljob_worker::shardfile::{Detection, ShardFile, ShardImage, Timings};

const SHARDS: u32 = 10;

/// `output` is the rest of the output mapping after the URI (formats, archive).
fn job(out: &std::path::Path, output: &str) -> String {
    format!(
        "apiVersion: labeljob.dev/v1alpha1\nkind: LabelJob\nmetadata: {{name: bench}}\nspec:\n  input: {{uri: 'file:///bench/in', dedup: {{mode: none}}}}\n  model: {{builtin: ssd-mobilenet-v2-coco}}\n  workers: {{shards: {SHARDS}}}\n  output: {{uri: 'file://{}', {output}}}\n",
        out.display()
    )
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

async fn context(out: &std::path::Path, output: &str) -> Arc<JobContext> {
    let job = parse_labeljob(&job(out, output)).expect("bench job");
    JobContext::from_job(job).await.expect("job context")
}

/// Write the shard files of `manifest` into `ctx`'s output: 10 boxes per image over 10 classes.
async fn write_shards(ctx: &JobContext, manifest: &Manifest) {
    let total = manifest.entries.len() as u64;
    for index in 0..SHARDS {
        let r = shard_range(total, SHARDS, index);
        let images = (r.start..r.end)
            .map(|id| ShardImage {
                id,
                uri: manifest.entries[id as usize].uri.clone(),
                width: 1280,
                height: 960,
                detections: (0..10u32)
                    .map(|k| Detection {
                        bbox: [f64::from(k * 97 % 1000) + 0.25, f64::from(k * 61 % 700) + 0.5, 120.75, 88.5],
                        score: 0.3 + f64::from(k) * 0.07,
                        category_id: [1, 2, 3, 4, 10, 17, 18, 44, 62, 90][k as usize],
                    })
                    .collect(),
                sha256: None,
                dhash: None,
                duplicate_of: None,
            })
            .collect();
        let file = ShardFile {
            index,
            shards: SHARDS,
            manifest_digest: manifest.digest.clone(),
            settings_digest: ctx.settings_digest.clone(),
            range: [r.start, r.end],
            images,
            errors: Vec::new(),
            timings: Timings::default(),
        };
        let bytes = serde_json::to_vec(&file).expect("shard json");
        ctx.output.put(&layout::shard_key(index), bytes.into()).await.expect("write shard");
    }
}

#[tokio::main]
async fn main() {
    let n: u64 =
        std::env::var("LABELJOB_BENCH_MERGE_IMAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let entries = (0..n)
        .map(|id| ManifestEntry {
            id,
            key: format!("d{:03}/img-{id:07}.jpg", id % 1000),
            uri: format!("file:///bench/in/d{:03}/img-{id:07}.jpg", id % 1000),
            size: Some(200_000),
            etag: None,
        })
        .collect();
    let manifest = Manifest::new(entries);
    let dir = tempfile::tempdir().expect("tmp");
    let mut rows = Vec::new();
    let all = "formats: [coco, yolo, voc, cvat, labelstudio]";
    for (i, (name, output)) in [
        ("COCO only", "formats: [coco]".to_string()),
        ("all formats (yolo, voc as zip: default)", all.to_string()),
        ("all formats (archive: none, a file per image)", format!("{all}, archive: none")),
    ]
    .into_iter()
    .enumerate()
    {
        let out = dir.path().join(format!("run{i}"));
        let ctx = context(&out, &output).await;
        write_shards(&ctx, &manifest).await;
        let rss0 = peak_rss_kib();
        let t = Instant::now();
        let m = merge(&ctx, &manifest, None).await.expect("merge");
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(m.detections, n * 10);
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report")).expect("json");
        let t = &report["timings"];
        let split =
            (t["mergeWriteSeconds"].as_f64().unwrap_or(0.0), t["mergeUploadSeconds"].as_f64().unwrap_or(0.0));
        rows.push((name, secs, split, peak_rss_kib().saturating_sub(rss0)));
    }
    println!("\n### Merge, {n} images × 10 boxes, {SHARDS} shards, file:// output\n");
    println!(
        "| formats | merge seconds | of which writing | publishing | images/s | peak RSS growth (MiB) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, secs, (write, publish), rss) in &rows {
        println!(
            "| {name} | {secs:.2} | {write:.2} | {publish:.2} | {:.0} | {:.0} |",
            n as f64 / secs,
            *rss as f64 / 1024.0
        );
    }
    // The file system's floor for the per-image formats: create the same number of files
    // (a YOLO label and a VOC XML per image, of typical sizes) and nothing else.
    let floor_dir = dir.path().join("floor");
    for sub in ["labels", "Annotations"] {
        std::fs::create_dir_all(floor_dir.join(sub)).expect("mkdir");
    }
    let t = Instant::now();
    for id in 0..n {
        std::fs::write(floor_dir.join("labels").join(format!("img-{id:07}.txt")), [b'0'; 380])
            .expect("write");
        std::fs::write(floor_dir.join("Annotations").join(format!("img-{id:07}.xml")), [b'<'; 2400])
            .expect("write");
    }
    let floor = t.elapsed().as_secs_f64();
    println!("| floor: create {} files, nothing else | {floor:.2} | | | | |", 2 * n);
    println!(
        "\nall formats ÷ COCO only: {:.2}× (target ≤ 2.0×); with archive: none {:.2}×, ÷ (COCO only + file floor) {:.2}×",
        rows[1].1 / rows[0].1,
        rows[2].1 / rows[0].1,
        rows[2].1 / (rows[0].1 + floor)
    );
}
