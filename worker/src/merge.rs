//! Merge: stream the shard files, one at a time, into the job's deliverables —
//! `annotations.json` (a COCO dataset with provenance in `info`), `results.json` (the COCO
//! results list pycocotools' `loadRes` takes), `errors.jsonl` and `report.json` — and check the
//! error budget. Memory is bounded by one shard: the two COCO arrays are spooled to temporary
//! files and concatenated, then uploaded (multipart for large files).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Instant;

use labeljob_store::manifest::{Manifest, shard_range};
use labeljob_store::{StoreError, layout};
use serde_json::json;

use crate::job::JobContext;
use crate::shardfile::{ShardFile, ShardFor, Timings};

/// Why a merge failed.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Shards have not been written yet.
    #[error("shards not finished: {missing:?} (of {shards}); run them first")]
    Missing {
        /// Missing indices.
        missing: Vec<u32>,
        /// Shards in the job.
        shards: u32,
    },
    /// A shard belongs to another manifest or settings.
    #[error("shard {index} was made for another manifest, model/settings or shard count; rerun it")]
    Stale {
        /// Shard index.
        index: u32,
    },
    /// A shard file is not valid JSON.
    #[error("shard {index} is unreadable")]
    Corrupt {
        /// Shard index.
        index: u32,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// Store access failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Local spooling failed.
    #[error("cannot write temporary merge files")]
    Spool(#[from] std::io::Error),
    /// Serialising JSON failed.
    #[error("cannot serialise merge output")]
    Json(#[from] serde_json::Error),
}

/// The merge's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeSummary {
    /// Images in the manifest.
    pub total: u64,
    /// Images labelled.
    pub labelled: u64,
    /// Images failed.
    pub failed: u64,
    /// Annotations written.
    pub detections: u64,
    /// Whether maxFailedImages / maxFailedFraction was exceeded.
    pub budget_exceeded: bool,
    /// URI of annotations.json.
    pub annotations_uri: String,
}

const HIST_BINS: usize = 10;

/// Merge every shard of `manifest` into the output. `wall_seconds` is the whole run's wall
/// time when known (for img/s in the report).
pub async fn merge(
    ctx: &JobContext,
    manifest: &Manifest,
    wall_seconds: Option<f64>,
) -> Result<MergeSummary, MergeError> {
    let started = Instant::now();
    let shards = ctx.shards();
    let listed = ctx.output.list("shards/").await?;
    let missing: Vec<u32> =
        (0..shards).filter(|i| !listed.iter().any(|o| o.key == layout::shard_key(*i))).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing, shards });
    }

    let dir = tempfile::tempdir()?;
    let (img_path, ann_path) = (dir.path().join("images.part"), dir.path().join("annotations.part"));
    let (res_path, err_path) = (dir.path().join("results.json"), dir.path().join("errors.jsonl"));
    let mut images = BufWriter::new(File::create(&img_path)?);
    let mut anns = BufWriter::new(File::create(&ann_path)?);
    let mut results = BufWriter::new(File::create(&res_path)?);
    let mut errors = BufWriter::new(File::create(&err_path)?);
    results.write_all(b"[")?;

    let names: BTreeMap<u32, &str> =
        ctx.model.classes.categories().iter().map(|c| (c.id, c.name.as_str())).collect();
    let mut per_class: BTreeMap<&str, u64> = BTreeMap::new();
    let mut errors_by_kind: BTreeMap<String, u64> = BTreeMap::new();
    let mut hist = [0u64; HIST_BINS];
    let (mut labelled, mut failed, mut next_ann) = (0u64, 0u64, 1u64);
    let mut timings = Timings::default();

    for index in 0..shards {
        let bytes = ctx.output.get(&layout::shard_key(index)).await?;
        let shard: ShardFile =
            serde_json::from_slice(&bytes).map_err(|source| MergeError::Corrupt { index, source })?;
        drop(bytes);
        let want = ShardFor {
            manifest_digest: &manifest.digest,
            settings_digest: &ctx.settings_digest,
            index,
            shards,
            range: shard_range(manifest.entries.len() as u64, shards, index),
        };
        if !shard.is_for(&want) {
            return Err(MergeError::Stale { index });
        }
        timings.add(&shard.timings);
        for img in &shard.images {
            let image_id = img.id + 1;
            sep(&mut images, labelled == 0)?;
            serde_json::to_writer(
                &mut images,
                &json!({"id": image_id, "file_name": img.uri, "width": img.width, "height": img.height}),
            )?;
            labelled += 1;
            for d in &img.detections {
                let area = ((d.bbox[2] * d.bbox[3]) * 100.0).round() / 100.0;
                sep(&mut anns, next_ann == 1)?;
                serde_json::to_writer(
                    &mut anns,
                    &json!({"id": next_ann, "image_id": image_id, "category_id": d.category_id,
                            "bbox": d.bbox, "area": area, "iscrowd": 0, "score": d.score}),
                )?;
                sep(&mut results, next_ann == 1)?;
                serde_json::to_writer(
                    &mut results,
                    &json!({"image_id": image_id, "category_id": d.category_id, "bbox": d.bbox, "score": d.score}),
                )?;
                next_ann += 1;
                *per_class.entry(names.get(&d.category_id).copied().unwrap_or("?")).or_default() += 1;
                hist[((d.score * HIST_BINS as f64) as usize).min(HIST_BINS - 1)] += 1;
            }
        }
        for e in &shard.errors {
            serde_json::to_writer(
                &mut errors,
                &json!({"uri": e.uri, "stage": e.stage, "kind": e.kind, "reason": e.reason}),
            )?;
            errors.write_all(b"\n")?;
            *errors_by_kind.entry(e.kind.clone()).or_default() += 1;
            failed += 1;
        }
    }
    results.write_all(b"]\n")?;
    for w in [&mut images, &mut anns, &mut results, &mut errors] {
        w.flush()?;
    }
    drop((images, anns, results, errors));

    let spec = &ctx.job.spec;
    let total = manifest.entries.len() as u64;
    let budget_exceeded = spec.max_failed_images.is_some_and(|m| failed > m)
        || spec.max_failed_fraction.is_some_and(|f| total > 0 && failed as f64 / total as f64 > f);
    let provenance = json!({
        "job": ctx.name(),
        "tool": {"name": "labeljob", "version": env!("CARGO_PKG_VERSION")},
        "input": ctx.input.uri(),
        "manifestDigest": manifest.digest,
        "model": {
            "name": ctx.model.name, "sha256": ctx.model.sha256, "format": ctx.model.format,
            "inputSize": [ctx.model.width, ctx.model.height], "resize": ctx.model.resize,
            "layout": ctx.model.layout, "dtype": ctx.model.dtype, "channelOrder": ctx.model.channel_order,
            "normalize": ctx.model.normalize,
        },
        "postprocess": spec.postprocess,
        "settingsDigest": ctx.settings_digest,
    });
    let now = chrono::Utc::now();
    let info = json!({
        "description": format!("LabelJob {} — detections by {}", ctx.name(), ctx.model.name),
        "version": env!("CARGO_PKG_VERSION"), "year": chrono::Datelike::year(&now),
        "contributor": "labeljob", "url": ctx.input.uri(), "date_created": now.to_rfc3339(),
        "labeljob": provenance,
    });
    let ann_json = dir.path().join("annotations.json");
    {
        let mut out = BufWriter::new(File::create(&ann_json)?);
        write!(out, "{{\"info\":{info},\"licenses\":[],\"images\":[")?;
        std::io::copy(&mut File::open(&img_path)?, &mut out)?;
        out.write_all(b"],\"annotations\":[")?;
        std::io::copy(&mut File::open(&ann_path)?, &mut out)?;
        writeln!(out, "],\"categories\":{}}}", serde_json::to_string(ctx.model.classes.categories())?)?;
        out.flush()?;
    }
    ctx.output.put_file(layout::ANNOTATIONS, &ann_json).await?;
    ctx.output.put_file(layout::RESULTS, &res_path).await?;
    ctx.output.put_file(layout::ERRORS, &err_path).await?;

    let detections = next_ann - 1;
    let wall = wall_seconds.unwrap_or(timings.wall);
    let report = json!({
        "provenance": provenance,
        "images": {"total": total, "labelled": labelled, "failed": failed},
        "detections": detections,
        "perClass": per_class,
        "scoreHistogram": {"edges": (0..=HIST_BINS).map(|i| i as f64 / HIST_BINS as f64).collect::<Vec<_>>(), "counts": hist},
        "errorsByKind": errors_by_kind,
        "timings": {
            "downloadSeconds": timings.download, "decodeSeconds": timings.decode,
            "inferenceSeconds": timings.inference, "shardWallSeconds": timings.wall,
            "mergeSeconds": started.elapsed().as_secs_f64(), "wallSeconds": wall,
        },
        "imagesPerSecond": if wall > 0.0 { (labelled + failed) as f64 / wall } else { 0.0 },
        "errorBudget": {"maxFailedImages": spec.max_failed_images, "maxFailedFraction": spec.max_failed_fraction, "exceeded": budget_exceeded},
        "createdAt": now.to_rfc3339(),
    });
    ctx.output.put(layout::REPORT, serde_json::to_vec_pretty(&report)?.into()).await?;
    Ok(MergeSummary {
        total,
        labelled,
        failed,
        detections,
        budget_exceeded,
        annotations_uri: ctx.output.child_uri(layout::ANNOTATIONS),
    })
}

fn sep(w: &mut impl Write, first: bool) -> std::io::Result<()> {
    if first { Ok(()) } else { w.write_all(b",") }
}
