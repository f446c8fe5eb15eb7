//! Merge: stream the shard files, one at a time, into the job's deliverables — COCO
//! `annotations.json` (provenance in `info`) and `results.json`, the other `output.formats`
//! (see [`crate::export`]), the review set, `duplicates.jsonl`, `errors.jsonl` and
//! `report.json` — and check the error budget. Memory is bounded by one shard plus, with
//! `input.dedup` and several shards, one hash per unique image (a first pass over the shards
//! finds copies whose first copy is in an earlier shard; their labels are taken from it).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Instant;

use labeljob_api::v1alpha1::{DedupAction, DedupMode, OutputFormat, ReviewMode, ReviewSpec};
use labeljob_store::manifest::{Manifest, shard_range};
use labeljob_store::{ReportImages, StoreError, layout};
use serde_json::json;

use crate::dedup::{HashIndex, ImageHash, Match, parse_hash_hex};
use crate::export::{ExportMeta, ExportSet, OutImage, Stems, publish, staging_dir};
use crate::job::JobContext;
use crate::shardfile::{Detection, DuplicateOf, ShardFile, ShardFor, ShardImage, Timings};

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
    /// Annotations written (main and review sets).
    pub detections: u64,
    /// Images routed to the review set.
    pub review: u64,
    /// Duplicate images found.
    pub duplicates: u64,
    /// Images sent to the model.
    pub model_runs: u64,
    /// Whether maxFailedImages / maxFailedFraction was exceeded.
    pub budget_exceeded: bool,
    /// URI of annotations.json.
    pub annotations_uri: String,
}

const HIST_BINS: usize = 10;

/// Whether an image goes to review: a detection in `[above, below)`, or none at `above` or more.
pub fn needs_review(r: &ReviewSpec, detections: &[Detection]) -> bool {
    let (above, below) = (f64::from(r.above), f64::from(r.below));
    detections.iter().any(|d| d.score >= above && d.score < below)
        || !detections.iter().any(|d| d.score >= above)
}

impl MergeSummary {
    /// The one-line summary people read.
    pub fn line(&self) -> String {
        let mut s = format!(
            "labelled {} of {} images ({} failed, {} detections",
            self.labelled, self.total, self.failed, self.detections
        );
        if self.review > 0 {
            s += &format!(", {} to review", self.review);
        }
        if self.duplicates > 0 {
            s += &format!(", {} duplicates", self.duplicates);
        }
        s + ")"
    }
}

/// Load shard `index` and check it belongs to this manifest and settings.
async fn load_shard(ctx: &JobContext, manifest: &Manifest, index: u32) -> Result<ShardFile, MergeError> {
    let shards = ctx.shards();
    let bytes = ctx.output.get(&layout::shard_key(index)).await?;
    // Parsing a shard (up to a few hundred MB) is CPU work: off the async workers.
    let shard: ShardFile = tokio::task::spawn_blocking(move || serde_json::from_slice(&bytes))
        .await
        .map_err(|e| MergeError::Spool(std::io::Error::other(format!("shard parser stopped: {e}"))))?
        .map_err(|source| MergeError::Corrupt { index, source })?;
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
    Ok(shard)
}

fn image_hash(img: &ShardImage) -> Option<ImageHash> {
    img.sha256
        .clone()
        .map(ImageHash::Exact)
        .or_else(|| img.dhash.as_deref().and_then(parse_hash_hex).map(ImageHash::Perceptual))
}

/// The duplicates across shards. Two kinds: images labelled in their shard whose first copy
/// is in an earlier shard (found here by hash: shards dedup only within themselves, and
/// perceptual copies are only found this way), and byte copies a shard did not label because
/// another shard had claimed their content (`exact` mode, `layout::claim_key`), whose first
/// copy may be in any shard. Returns copy id → match, the ids of the first copies, and the
/// first copies of the claimed ones (read here: they may come after their copies).
async fn cross_shard_copies(ctx: &JobContext, manifest: &Manifest) -> Result<CrossShard, MergeError> {
    let dedup = &ctx.job.spec.input.dedup;
    let mut cross = CrossShard::default();
    if dedup.mode == DedupMode::None || ctx.shards() < 2 {
        return Ok(cross);
    }
    let mut index = HashIndex::new(dedup.mode, dedup.max_distance);
    // Claimed first copy → the images that get its labels: its copies in other shards, and
    // the copies of those within their shard (which had no labels to take there).
    let mut groups: HashMap<u64, Vec<u64>> = HashMap::new();
    // Copies within a shard, by first copy, and the other way (for the claimed ones' own).
    let mut local: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut local_first: HashMap<u64, u64> = HashMap::new();
    for i in 0..ctx.shards() {
        let shard = load_shard(ctx, manifest, i).await?;
        let own = shard.range[0]..shard.range[1];
        // This shard's claimed copies → the claimed first copy (images are in id order).
        let mut claimed_by: HashMap<u64, u64> = HashMap::new();
        for img in &shard.images {
            let m = match img.duplicate_of {
                None => image_hash(img).and_then(|h| index.check_or_insert(&h, img.id)),
                Some(d) if !own.contains(&d.id) => {
                    claimed_by.insert(img.id, d.id);
                    groups.entry(d.id).or_default().push(img.id);
                    Some(Match { id: d.id, distance: d.distance })
                }
                Some(d) => {
                    local.entry(d.id).or_default().push(img.id);
                    local_first.insert(img.id, d.id);
                    claimed_by.get(&d.id).copied().map(|first| {
                        claimed_by.insert(img.id, first);
                        groups.entry(first).or_default().push(img.id);
                        Match { id: first, distance: d.distance }
                    })
                }
            };
            if let Some(m) = m {
                cross.copies.insert(img.id, m);
                cross.firsts.insert(m.id);
            }
        }
    }
    // Whichever shard claimed first, the lowest id of a group is shown as the original (as
    // within a shard): byte copies have the same labels, so only the listing changes. The
    // group holds the claimed first copy's shard-mates too: its own copies, and the image it
    // is a copy of when an earlier attempt of its shard claimed through it.
    for (&first, copies) in &groups {
        let root = local_first.get(&first).copied().unwrap_or(first);
        let mates = [root, first].into_iter().flat_map(|id| local.get(&id).into_iter().flatten().copied());
        let members: HashSet<u64> = copies.iter().copied().chain([root, first]).chain(mates).collect();
        let lowest = members.iter().copied().min().unwrap_or(first);
        for id in members {
            cross.shown_as.insert(id, (id != lowest).then_some(lowest));
        }
    }
    let claimed: HashSet<u64> = groups.into_keys().collect();
    if !claimed.is_empty() {
        for i in 0..ctx.shards() {
            let range = shard_range(manifest.entries.len() as u64, ctx.shards(), i);
            if !claimed.iter().any(|id| range.contains(id)) {
                continue;
            }
            let shard = load_shard(ctx, manifest, i).await?;
            let firsts = shard.images.into_iter().filter(|im| claimed.contains(&im.id));
            cross.claimed_firsts.extend(firsts.map(|im| (im.id, im)));
        }
    }
    Ok(cross)
}

/// What [`cross_shard_copies`] found.
#[derive(Debug, Default)]
struct CrossShard {
    /// Copy id → the image whose labels it gets.
    copies: HashMap<u64, Match>,
    /// The images of `copies` in earlier shards.
    firsts: HashSet<u64>,
    /// The claimed first copies, by id.
    claimed_firsts: HashMap<u64, ShardImage>,
    /// Members of claim groups → the id they are listed as a duplicate of (`None`: shown as
    /// the original).
    shown_as: HashMap<u64, Option<u64>>,
}

/// Delete the duplicate claims of the shards (`claims/`): once merged they serve nothing. A
/// failure only leaves small objects behind (logged).
async fn remove_claims(ctx: &JobContext) {
    if ctx.job.spec.input.dedup.mode != DedupMode::Exact || ctx.shards() < 2 {
        return;
    }
    if let Some(dir) = ctx.output.local_dir() {
        let dir = dir.join(layout::CLAIMS_DIR);
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the duplicate claims");
        }
        return;
    }
    let claims = match ctx.output.list(layout::CLAIMS_DIR).await {
        Ok(claims) => claims,
        Err(e) => return tracing::warn!(error = %e, "cannot list the duplicate claims to remove them"),
    };
    use futures::StreamExt as _;
    let mut deletes =
        futures::stream::iter(claims.iter().map(|c| ctx.output.delete(&c.key))).buffer_unordered(32);
    while let Some(r) = deletes.next().await {
        if let Err(e) = r {
            tracing::warn!(error = %e, "cannot remove a duplicate claim");
        }
    }
}

/// One line of `errors.jsonl`.
fn write_error(
    out: &mut impl Write,
    uri: &str,
    stage: &str,
    kind: &str,
    reason: &str,
) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &json!({"uri": uri, "stage": stage, "kind": kind, "reason": reason}))?;
    out.write_all(b"\n")
}

/// Running counts of the merge.
#[derive(Debug, Default)]
struct Counts {
    labelled: u64,
    failed: u64,
    to_review: u64,
    duplicates: u64,
    model_runs: u64,
    detections: u64,
}

/// Everything the merge accumulates over the shards; [`Tally::absorb`] takes one shard (on a
/// blocking thread: it is CPU and file work).
struct Tally {
    spec: labeljob_api::LabelJobSpec,
    /// Manifest id → URI of the first copies the current shard's duplicates name.
    first_uris: HashMap<u64, String>,
    cross: HashMap<u64, Match>,
    firsts: HashSet<u64>,
    shown_as: HashMap<u64, Option<u64>>,
    main: ExportSet,
    review: Option<ExportSet>,
    errors: BufWriter<File>,
    dups: BufWriter<File>,
    stems: Stems,
    cache: HashMap<u64, ShardImage>,
    per_class_id: HashMap<u32, u64>,
    errors_by_kind: BTreeMap<String, u64>,
    hist: [u64; HIST_BINS],
    counts: Counts,
    timings: Timings,
}

impl Tally {
    /// Sort one shard's images into the main and review sets, list its duplicates and errors.
    fn absorb(&mut self, shard: ShardFile) -> Result<(), MergeError> {
        let spec = &self.spec;
        let c = &mut self.counts;
        self.timings.add(&shard.timings);
        for mut img in shard.images {
            if img.duplicate_of.is_none() {
                c.model_runs += 1;
            }
            if self.firsts.contains(&img.id) {
                self.cache.insert(img.id, img.clone());
            }
            if let Some(m) = self.cross.get(&img.id) {
                // A claimed copy (not inferred) takes its labels from the claimed first copy,
                // which must have been labelled and hold the same bytes; else it fails, naming
                // why (a claim under `claims/` changed by hand could name any image).
                let claimed = img.duplicate_of.is_some();
                let problem = match self.cache.get(&m.id) {
                    Some(first) if !claimed || first.sha256 == img.sha256 => {
                        img.copy_labels_of(first, m.distance);
                        None
                    }
                    Some(_) => Some("whose content differs: its claim is not this image's"),
                    None if claimed => Some("which could not be labelled"),
                    None => None,
                };
                if let Some(why) = problem {
                    let first = self.first_uris.get(&m.id).map_or("", String::as_str);
                    let reason = format!("claimed as a byte copy of {first}, {why}");
                    write_error(&mut self.errors, &img.uri, "dedup", "first-copy-failed", &reason)?;
                    *self.errors_by_kind.entry("first-copy-failed".into()).or_default() += 1;
                    c.failed += 1;
                    continue;
                }
            }
            if let Some(&shown) = self.shown_as.get(&img.id) {
                img.duplicate_of = shown.map(|id| DuplicateOf { id, distance: 0 });
            }
            if let Some(d) = img.duplicate_of {
                c.duplicates += 1;
                let first_uri = self.first_uris.get(&d.id).map_or("", String::as_str);
                serde_json::to_writer(
                    &mut self.dups,
                    &json!({"uri": img.uri, "duplicateOf": first_uri, "distance": d.distance,
                            "id": img.id + 1, "duplicateOfId": d.id + 1,
                            "action": spec.input.dedup.action}),
                )?;
                self.dups.write_all(b"\n")?;
                if spec.input.dedup.action == DedupAction::Skip {
                    continue;
                }
            }
            c.labelled += 1;
            c.detections += img.detections.len() as u64;
            for d in &img.detections {
                *self.per_class_id.entry(d.category_id).or_default() += 1;
                self.hist[((d.score * HIST_BINS as f64) as usize).min(HIST_BINS - 1)] += 1;
            }
            let stem = self.stems.assign(&img.uri);
            let reviewed = spec.review.as_ref().is_some_and(|r| needs_review(r, &img.detections));
            let mode = spec.review.as_ref().map(|r| r.mode);
            let out = OutImage {
                id: img.id + 1,
                uri: img.uri,
                width: img.width,
                height: img.height,
                detections: img.detections,
                flagged: reviewed && mode == Some(ReviewMode::Flag),
                stem,
            };
            c.to_review += u64::from(reviewed);
            if !reviewed || mode == Some(ReviewMode::Flag) {
                if reviewed && let Some(r) = &mut self.review {
                    r.image(OutImage { flagged: false, ..out.clone() })?;
                }
                self.main.image(out)?;
            } else if let Some(r) = &mut self.review {
                r.image(out)?;
            }
        }
        for e in &shard.errors {
            write_error(&mut self.errors, &e.uri, &e.stage, &e.kind, &e.reason)?;
            *self.errors_by_kind.entry(e.kind.clone()).or_default() += 1;
            c.failed += 1;
        }
        Ok(())
    }
}

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
    let spec = &ctx.job.spec;
    let CrossShard { copies: cross, firsts, claimed_firsts, shown_as } =
        cross_shard_copies(ctx, manifest).await?;

    let dir = staging_dir(&ctx.output)?;
    let staging = dir.path().to_path_buf();
    let meta = ExportMeta::new(
        ctx.model.classes.categories().to_vec(),
        ctx.model.sha256.clone(),
        ctx.name().to_string(),
    );
    let main = ExportSet::create(&staging, &spec.output.formats, spec.output.archive, &meta, true)?;
    let review_formats: Vec<OutputFormat> = spec
        .output
        .formats
        .iter()
        .copied()
        .filter(|f| matches!(f, OutputFormat::Coco | OutputFormat::Labelstudio))
        .collect();
    let review = match &spec.review {
        Some(_) => Some(ExportSet::create(
            &staging.join(layout::REVIEW_DIR),
            &review_formats,
            spec.output.archive,
            &meta,
            false,
        )?),
        None => None,
    };
    let mut tally = Tally {
        spec: spec.clone(),
        first_uris: HashMap::new(),
        cross,
        firsts,
        shown_as,
        main,
        review,
        errors: BufWriter::new(File::create(staging.join(layout::ERRORS))?),
        dups: BufWriter::new(File::create(staging.join(layout::DUPLICATES))?),
        stems: Stems::default(),
        cache: claimed_firsts,
        per_class_id: HashMap::new(),
        errors_by_kind: BTreeMap::new(),
        hist: [0; HIST_BINS],
        counts: Counts::default(),
        timings: Timings::default(),
    };
    for index in 0..shards {
        let shard = load_shard(ctx, manifest, index).await?;
        // The URIs of the first copies of this shard's duplicates (for duplicates.jsonl), the
        // copies of an earlier shard's images included.
        tally.first_uris = shard
            .images
            .iter()
            .flat_map(|im| {
                let shown = tally.shown_as.get(&im.id).copied().flatten();
                [im.duplicate_of.map(|d| d.id), tally.cross.get(&im.id).map(|m| m.id), shown]
            })
            .flatten()
            .filter_map(|id| Some((id, manifest.entries.get(usize::try_from(id).ok()?)?.uri.clone())))
            .collect();
        // Sorting images into sets is CPU and file work: on a blocking thread.
        tally = tokio::task::spawn_blocking(move || tally.absorb(shard).map(|()| tally))
            .await
            .map_err(|e| MergeError::Spool(std::io::Error::other(format!("merge thread stopped: {e}"))))??;
    }
    let Tally { main, review, errors, dups, per_class_id, errors_by_kind, hist, counts, timings, .. } = tally;
    let Counts { labelled, failed, to_review, duplicates, model_runs, detections } = counts;
    for w in [errors, dups] {
        drop(w.into_inner().map_err(|e| e.into_error())?);
    }

    let mut per_class: BTreeMap<&str, u64> = BTreeMap::new();
    for (id, n) in &per_class_id {
        *per_class.entry(meta.name(*id)).or_default() += n;
    }
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
        // Through text, so an f32 prints as written (0.4, not 0.4000000059604645).
        "postprocess": as_written(&spec.postprocess)?,
        "dedup": as_written(&spec.input.dedup)?,
        "review": as_written(&spec.review)?,
        "settingsDigest": ctx.settings_digest,
    });
    let now = chrono::Utc::now();
    let info = json!({
        "description": format!("LabelJob {} — detections by {}", ctx.name(), ctx.model.name),
        "version": env!("CARGO_PKG_VERSION"), "year": chrono::Datelike::year(&now),
        "contributor": "labeljob", "url": ctx.input.uri(), "date_created": now.to_rfc3339(),
        "labeljob": provenance,
    });
    let main_images = main.images();
    main.finish(&info)?;
    if let Some(r) = review {
        r.finish(&info)?;
    }
    let written = started.elapsed().as_secs_f64();
    let files = publish(&staging, &ctx.output).await?;
    let uploaded = started.elapsed().as_secs_f64() - written;
    tracing::info!(written, uploaded, files, "merge outputs written");
    remove_claims(ctx).await;

    let wall = wall_seconds.unwrap_or(timings.wall);
    let report = json!({
        "provenance": provenance,
        "images": ReportImages { total, labelled, failed, main: main_images, review: to_review,
                                 duplicates, model_runs },
        "detections": detections,
        "formats": spec.output.formats,
        "perClass": per_class,
        "scoreHistogram": {"edges": (0..=HIST_BINS).map(|i| i as f64 / HIST_BINS as f64).collect::<Vec<_>>(), "counts": hist},
        "errorsByKind": errors_by_kind,
        "timings": {
            "downloadSeconds": timings.download, "decodeSeconds": timings.decode,
            "inferenceSeconds": timings.inference, "shardWallSeconds": timings.wall,
            "mergeSeconds": started.elapsed().as_secs_f64(), "mergeWriteSeconds": written,
            "mergeUploadSeconds": uploaded, "wallSeconds": wall,
        },
        "filesWritten": files + 1,
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
        review: to_review,
        duplicates,
        model_runs,
        budget_exceeded,
        annotations_uri: ctx.output.child_uri(layout::ANNOTATIONS),
    })
}

/// `v` as JSON, with each f32 as its shortest decimal (`json!` widens an f32 to f64 digits).
fn as_written<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::from_str(&serde_json::to_string(v)?)
}
