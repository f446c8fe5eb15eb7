//! One shard: the contiguous manifest range `index` of `shards`. Each image is downloaded,
//! decoded and resized, sent to the detector, and its boxes mapped back to original pixels.
//! With the in-process engine an image is decoded on the inference thread that runs it, just
//! before its model run (no hand-off, and no decode preempting a model run); for an endpoint,
//! or when perceptual dedup needs the pixels first, on the blocking pool (bounded by
//! `--decoders`); downloads, decodes and inference overlap up to
//! `workers.concurrency` images. A bad image becomes an error entry, never a failed shard (an
//! entry the listing marked as no image fails at stage `list` without a download). The
//! result is written atomically to `shards/shard-NNNNN.json`; an existing result for the same
//! manifest and settings is kept (runs are resumable). Progress goes to
//! `progress/shard-NNNNN.json` every two seconds. While it runs, the shard commits what it has
//! finished as partial results (`checkpoint`): periodically, on a stop request (SIGTERM) and
//! before failing on a lost inference service; a retried shard starts after them.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use labeljob_api::v1alpha1::{DedupMode, OverwritePolicy};
use labeljob_store::manifest::{ListingProblem, Manifest, ManifestEntry, shard_range};
use labeljob_store::progress::ShardProgress;
use labeljob_store::{StoreError, layout};
use tokio::sync::{Semaphore, watch};

use crate::checkpoint::{self, CheckpointPolicy, Checkpointer};
use crate::dedup::{HashIndex, ImageHash, Match, content_sha256, dhash, hash_hex, parse_hash_hex};
use crate::detector::{DetectError, Detector};
use crate::imaging::{DecodeLimits, Resizer, decode};
use crate::job::JobContext;
use crate::model::InferError;
use crate::model::decode::apply_filter;
use crate::shardfile::{Detection, DuplicateOf, ImageError, ShardFile, ShardFor, ShardImage, Timings};

/// Why a shard failed as a whole (an image failing does not fail the shard).
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// The output store failed.
    #[error("shard {index}")]
    Store {
        /// Shard index.
        index: u32,
        /// Cause.
        #[source]
        source: StoreError,
    },
    /// Inference is unavailable (after retries).
    #[error("shard {index}")]
    Inference {
        /// Shard index.
        index: u32,
        /// Cause.
        #[source]
        source: DetectError,
    },
    /// Existing results were made with another manifest or settings and `overwrite: Fail`.
    #[error(
        "shard {index}: {uri} holds results of another manifest or model/settings (output.overwrite is Fail)"
    )]
    Conflict {
        /// Shard index.
        index: u32,
        /// The existing object.
        uri: String,
    },
    /// A stop was requested (SIGTERM): what was finished is committed as partial results.
    #[error("shard {index}: interrupted; {committed} images committed as partial results for the retry")]
    Interrupted {
        /// Shard index.
        index: u32,
        /// Results committed in all (this attempt and earlier ones).
        committed: u64,
    },
    /// The results did not cover the range exactly once (a bug: the file is not written).
    #[error("shard {index}: the results do not cover the shard's range exactly once")]
    Incomplete {
        /// Shard index.
        index: u32,
    },
    /// The index is out of range (of `workers.shards`).
    #[error("shard index {index} is out of range: the job has {shards} shards")]
    Index {
        /// Asked for.
        index: u32,
        /// Shards in the job.
        shards: u32,
    },
}

/// Live counters of one shard, shared with progress reporting.
#[derive(Debug, Default)]
pub struct Counters {
    /// Images finished (labelled or failed).
    pub processed: AtomicU64,
    /// Images that failed.
    pub failed: AtomicU64,
}

/// What a shard run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardOutcome {
    /// Results for the same manifest and settings already existed.
    Skipped {
        /// Images in the shard.
        images: u64,
    },
    /// The job has fewer images than `workers.shards`, and this shard none of them: nothing
    /// is written (see [`crate::job::effective_shards`]).
    Empty {
        /// Shards the job runs.
        shards: u32,
    },
    /// The shard ran.
    Done {
        /// Images labelled.
        labelled: u64,
        /// Images failed.
        failed: u64,
        /// Of those, results taken over from partial results of an earlier attempt.
        resumed: u64,
    },
}

/// Shared resources of the shards of one process.
#[derive(Clone)]
pub struct ShardRunner {
    /// The job.
    pub ctx: Arc<JobContext>,
    /// Inference.
    pub detector: Arc<dyn Detector>,
    /// Bounds concurrent decodes to the cores.
    pub decode_slots: Arc<Semaphore>,
    /// Image size limits.
    pub limits: DecodeLimits,
    /// When partial results are committed.
    pub checkpoint: CheckpointPolicy,
    /// Becomes true when the shards should stop (SIGTERM): they commit and return.
    pub stop: watch::Receiver<bool>,
}

thread_local! {
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
}

impl ShardRunner {
    /// A runner decoding on up to `decoders` threads at once.
    pub fn new(ctx: Arc<JobContext>, detector: Arc<dyn Detector>, decoders: usize) -> Self {
        Self {
            ctx,
            detector,
            decode_slots: Arc::new(Semaphore::new(decoders.max(1))),
            limits: DecodeLimits::default(),
            checkpoint: CheckpointPolicy::default(),
            stop: watch::channel(false).1,
        }
    }

    /// The same runner, committing partial results per `policy` and stopping when `stop`
    /// becomes true.
    pub fn with_checkpoints(self, policy: CheckpointPolicy, stop: watch::Receiver<bool>) -> Self {
        Self { checkpoint: policy, stop, ..self }
    }

    /// Run shard `index` over `manifest`, counting into `counters`.
    pub async fn run(
        &self,
        manifest: &Manifest,
        index: u32,
        counters: Arc<Counters>,
    ) -> Result<ShardOutcome, ShardError> {
        let shards = self.ctx.shards();
        if index >= shards && index < self.ctx.requested_shards() {
            return Ok(ShardOutcome::Empty { shards });
        }
        if index >= shards {
            return Err(ShardError::Index { index, shards: self.ctx.requested_shards() });
        }
        let range = shard_range(manifest.entries.len() as u64, shards, index);
        let key = layout::shard_key(index);
        let store_err = |source| ShardError::Store { index, source };
        let want = ShardFor {
            manifest_digest: &manifest.digest,
            settings_digest: &self.ctx.settings_digest,
            index,
            shards,
            range: range.clone(),
        };
        if let Some(existing) = self.ctx.output.get_opt(&key).await.map_err(store_err)? {
            let reusable = serde_json::from_slice::<ShardFile>(&existing).ok().filter(|s| s.is_for(&want));
            match (reusable, self.ctx.overwrite()) {
                (Some(_), OverwritePolicy::Resume | OverwritePolicy::Fail) => {
                    let n = range.end - range.start;
                    counters.processed.fetch_add(n, Ordering::Relaxed);
                    return Ok(ShardOutcome::Skipped { images: n });
                }
                (None, OverwritePolicy::Fail) => {
                    return Err(ShardError::Conflict { index, uri: self.ctx.output.child_uri(&key) });
                }
                _ => {}
            }
        }
        let reuse = self.ctx.overwrite() != OverwritePolicy::Replace;
        let resumed = checkpoint::load(&self.ctx.output, &want, reuse).await.map_err(store_err)?;
        if resumed.stale > 0 && self.ctx.overwrite() == OverwritePolicy::Fail {
            let uri = self.ctx.output.child_uri(&layout::partial_prefix(index));
            return Err(ShardError::Conflict { index, uri });
        }
        if !resumed.is_empty() {
            tracing::info!(shard = index, images = resumed.len(), "resuming after partial results");
        }
        let resumed_n = resumed.len();
        counters.processed.fetch_add(resumed_n, Ordering::Relaxed);
        counters.failed.fetch_add(resumed.errors.len() as u64, Ordering::Relaxed);

        let started = Instant::now();
        let all = &manifest.entries[range.start as usize..range.end as usize];
        let done_ids = resumed.ids();
        let entries: Vec<ManifestEntry> = all.iter().filter(|e| !done_ids.contains(&e.id)).cloned().collect();
        let reporter = self.spawn_progress(index, all.len() as u64, counters.clone(), started);
        let concurrency = self.ctx.job.spec.workers.concurrency.max(1) as usize;
        let dedup = &self.ctx.job.spec.input.dedup;
        let mut seen = HashIndex::new(dedup.mode, dedup.max_distance);
        // The first copies among the partial results are known already.
        for img in resumed.images.iter().filter(|i| i.duplicate_of.is_none()) {
            let hash = match (&img.sha256, &img.dhash) {
                (Some(s), _) => Some(ImageHash::Exact(s.clone())),
                (None, Some(h)) => parse_hash_hex(h).map(ImageHash::Perceptual),
                (None, None) => None,
            };
            if let Some(h) = hash {
                seen.check_or_insert(&h, img.id);
            }
        }
        let mut file = ShardFile {
            index,
            shards,
            manifest_digest: manifest.digest.clone(),
            settings_digest: self.ctx.settings_digest.clone(),
            range: [range.start, range.end],
            images: Vec::with_capacity(all.len()),
            errors: Vec::new(),
            timings: Timings::default(),
        };
        let mut checkpoints =
            Checkpointer::new(self.checkpoint, resumed.next_part, resumed.images.len(), resumed.errors.len());
        let old_chunks = resumed.keys;
        file.images.extend(resumed.images);
        file.errors.extend(resumed.errors);
        // Download and decode in manifest order (so the first copy of a duplicate is always the
        // lowest id, whatever finishes first), then infer the unique images out of order.
        let mut results = futures::stream::iter(entries)
            .map(|e| {
                let problem = manifest.problem(e.id).cloned();
                self.prepare(e, problem)
            })
            .buffered(concurrency)
            .map(|prepared| {
                let copies = match &prepared {
                    Ok(p) => p.hash.as_ref().and_then(|h| seen.check_or_insert(h, p.entry.id)),
                    Err(_) => None,
                };
                self.finish(prepared, copies, manifest, &range)
            })
            .buffer_unordered(concurrency);
        let stopped = stopped(self.stop.clone());
        tokio::pin!(stopped);
        let (mut fatal, mut interrupted) = (None, false);
        loop {
            let next = tokio::select! {
                biased;
                _ = &mut stopped => {
                    interrupted = true;
                    break;
                }
                next = results.next() => next,
            };
            let Some((res, t)) = next else { break };
            file.timings.add(&t);
            match res {
                Ok(img) => file.images.push(img),
                Err(Failure::Image(e)) => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    file.errors.push(e);
                }
                Err(Failure::Fatal(e)) => {
                    fatal = Some(e);
                    break;
                }
            }
            counters.processed.fetch_add(1, Ordering::Relaxed);
            if checkpoints.due(&file.images, &file.errors) {
                let out = &self.ctx.output;
                checkpoints.commit(out, &want, &file.images, &file.errors).await.map_err(store_err)?;
            }
        }
        drop(results);
        reporter.abort();
        if fatal.is_some() || interrupted {
            // What is finished is kept for the retry.
            let out = &self.ctx.output;
            if let Err(e) = checkpoints.commit(out, &want, &file.images, &file.errors).await {
                tracing::warn!(shard = index, error = %e, "cannot commit partial results");
            }
        }
        if let Some(source) = fatal {
            return Err(ShardError::Inference { index, source });
        }
        if interrupted {
            let committed = checkpoints.committed() as u64;
            return Err(ShardError::Interrupted { index, committed });
        }
        file.images.sort_by_key(|i| i.id);
        file.errors.sort_by_key(|e| e.id);
        copy_duplicate_labels(&mut file.images);
        file.timings.wall = started.elapsed().as_secs_f64();
        if !file.is_for(&want) {
            // Cannot happen (every id of the range once); never write a wrong shard file.
            return Err(ShardError::Incomplete { index });
        }
        let bytes = serde_json::to_vec(&file).unwrap_or_default();
        self.ctx.output.put(&key, bytes.into()).await.map_err(store_err)?;
        checkpoint::remove(&self.ctx.output, old_chunks.into_iter().chain(checkpoints.written)).await;
        let done = ShardProgress {
            index,
            total: all.len() as u64,
            processed: all.len() as u64,
            failed: file.errors.len() as u64,
            elapsed_seconds: file.timings.wall,
            done: true,
        };
        self.write_progress(&done).await;
        Ok(ShardOutcome::Done {
            labelled: file.images.len() as u64,
            failed: file.errors.len() as u64,
            resumed: resumed_n,
        })
    }

    /// Download, hash (per `input.dedup`), decode and resize one image. An entry the listing
    /// found to be no image (`problem`) fails at once, at stage `list`.
    async fn prepare(
        &self,
        entry: ManifestEntry,
        problem: Option<ListingProblem>,
    ) -> Result<Prepared, (Failure, Timings)> {
        let mut t = Timings::default();
        let fail = |stage: &str, kind: &str, reason: String| {
            Failure::Image(ImageError {
                id: entry.id,
                uri: entry.uri.clone(),
                stage: stage.into(),
                kind: kind.into(),
                reason,
            })
        };
        if let Some(p) = problem {
            return Err((fail("list", &p.kind, p.reason), t));
        }
        let t0 = Instant::now();
        let max_bytes = u64::try_from(self.limits.max_bytes).unwrap_or(u64::MAX);
        let bytes = match self.ctx.input.fetch_capped(&entry, max_bytes).await {
            Ok(b) => b,
            Err(e) => {
                let kind = match &e {
                    e if e.is_not_found() => "not-found",
                    StoreError::TooLarge { .. } => "too-large",
                    StoreError::Deadline { .. } => "timeout",
                    StoreError::Http { source, .. } if source.is_timeout() => "timeout",
                    _ => "download",
                };
                return Err((fail("download", kind, labeljob_api::error_chain(&e)), t));
            }
        };
        t.download = t0.elapsed().as_secs_f64();

        let t1 = Instant::now();
        let dedup = self.ctx.job.spec.input.dedup.mode;
        let result = if self.detector.engine().is_some() && dedup != DedupMode::Perceptual {
            // The engine decodes on its inference threads; only the content hash is made now.
            let sha = match dedup {
                DedupMode::Exact => {
                    match tokio::task::spawn_blocking(move || (content_sha256(&bytes), bytes)).await {
                        Ok((sha, b)) => Ok((Some(ImageHash::Exact(sha)), b)),
                        Err(join) => Err(("panic", join.to_string())),
                    }
                }
                _ => Ok((None, bytes)),
            };
            sha.map(|(hash, bytes)| (Pixels::Encoded(bytes), hash))
        } else {
            let Ok(_slot) = self.decode_slots.acquire().await else {
                return Err((fail("decode", "cancelled", "decoder pool closed".into()), t));
            };
            let fit = self.fit();
            tokio::task::spawn_blocking(move || {
                let sha = (dedup == DedupMode::Exact).then(|| content_sha256(&bytes));
                let img = decode(&bytes, Some((fit.width, fit.height)), &fit.limits)
                    .map_err(|e| (e.reason(), e.message()))?;
                let hash = match sha {
                    Some(s) => Some(ImageHash::Exact(s)),
                    None => (dedup == DedupMode::Perceptual).then(|| ImageHash::Perceptual(dhash(&img.rgb))),
                };
                Ok((Pixels::Ready(fit.resize(&img)?), hash))
            })
            .await
            .unwrap_or_else(|join| Err(("panic", join.to_string())))
        };
        t.decode = t1.elapsed().as_secs_f64();
        match result {
            Ok((image, hash)) => Ok(Prepared { entry, image, hash, t }),
            Err((kind, reason)) => Err((fail("decode", kind, reason), t)),
        }
    }

    /// How images are fitted to the model: its input size, resize mode and decode limits.
    fn fit(&self) -> Fit {
        let m = &self.ctx.model;
        Fit { width: m.width, height: m.height, mode: m.resize, limits: self.limits }
    }

    /// Decode and resize `bytes` on the blocking pool (an image the engine was not given: a
    /// copy, which needs its size but no model run).
    async fn decode_blocking(&self, bytes: bytes::Bytes) -> Result<Ready, (&'static str, String)> {
        let Ok(_slot) = self.decode_slots.acquire().await else {
            return Err(("cancelled", "decoder pool closed".into()));
        };
        let fit = self.fit();
        tokio::task::spawn_blocking(move || {
            let ready = fit.decode_resize(&bytes, false);
            labeljob_store::readbuf::recycle(bytes);
            ready
        })
        .await
        .unwrap_or_else(|join| Err(("panic", join.to_string())))
    }

    /// Infer a prepared image, unless it is a copy: of an earlier image of this shard
    /// (`copies`), or, in `exact` mode, of an image another shard claimed first
    /// ([`ShardRunner::claimed_by`]). A copy's labels are filled in from its first copy once
    /// the shard is done, or by the merge when that copy is in another shard.
    async fn finish(
        &self,
        prepared: Result<Prepared, (Failure, Timings)>,
        copies: Option<Match>,
        manifest: &Manifest,
        own: &std::ops::Range<u64>,
    ) -> (Result<ShardImage, Failure>, Timings) {
        let p = match prepared {
            Ok(p) => p,
            Err((f, t)) => return (Err(f), t),
        };
        let Prepared { entry, image, hash, mut t } = p;
        let (sha256, dhash) = match hash {
            Some(ImageHash::Exact(s)) => (Some(s), None),
            Some(ImageHash::Perceptual(h)) => (None, Some(hash_hex(h))),
            None => (None, None),
        };
        let mut img = ShardImage {
            id: entry.id,
            uri: entry.uri,
            width: 0,
            height: 0,
            detections: Vec::new(),
            sha256,
            dhash,
            duplicate_of: None,
        };
        let fail = |img: ShardImage, stage: &str, kind: &str, reason: String| {
            let err = ImageError { id: img.id, uri: img.uri, stage: stage.into(), kind: kind.into(), reason };
            Err(Failure::Image(err))
        };
        let copy_of = match copies {
            Some(m) => Some(DuplicateOf { id: m.id, distance: m.distance }),
            None => self.claimed_by(&img, manifest, own).await.map(|id| DuplicateOf { id, distance: 0 }),
        };
        if let Some(first) = copy_of {
            // A copy is not inferred, but its size is its own (a perceptual copy may differ).
            let t1 = Instant::now();
            let ready = match image {
                Pixels::Encoded(bytes) => self.decode_blocking(bytes).await,
                Pixels::Ready(ready) => Ok(ready),
            };
            t.decode += t1.elapsed().as_secs_f64();
            match ready {
                Ok(r) => (img.width, img.height) = (r.width, r.height),
                Err((kind, reason)) => return (fail(img, "decode", kind, reason), t),
            }
            img.duplicate_of = Some(first);
            return (Ok(img), t);
        }
        let t2 = Instant::now();
        let (raw, transform) = match (image, self.detector.engine()) {
            (Pixels::Ready(r), _) => {
                (img.width, img.height) = (r.width, r.height);
                (self.detector.detect(r.pixels).await, r.transform)
            }
            (Pixels::Encoded(bytes), Some(engine)) => {
                let (tx, mut rx) = tokio::sync::oneshot::channel();
                let fit = self.fit();
                let prepare = Box::new(move || {
                    let started = Instant::now();
                    let (meta, pixels) = match fit.decode_resize(&bytes, true) {
                        Ok(r) => (Ok((r.width, r.height, r.transform)), Some(r.pixels)),
                        Err(e) => (Err(e), None),
                    };
                    labeljob_store::readbuf::recycle(bytes);
                    let _ = tx.send((meta, started.elapsed().as_secs_f64()));
                    pixels
                });
                let raw = engine.prepare_and_detect(prepare).await.map_err(DetectError::from);
                match rx.try_recv() {
                    Ok((Ok((width, height, transform)), took)) => {
                        (img.width, img.height) = (width, height);
                        t.decode += took;
                        t.inference -= took;
                        (raw, transform)
                    }
                    Ok((Err((kind, reason)), took)) => {
                        t.decode += took;
                        return (fail(img, "decode", kind, reason), t);
                    }
                    // The decode panicked (the engine caught it): this image fails alone.
                    Err(_) if matches!(raw, Err(DetectError::Engine(InferError::Unprepared))) => {
                        return (fail(img, "decode", "panic", "decoding the image panicked".into()), t);
                    }
                    // Never prepared: the engine stopped, and says so.
                    Err(_) => {
                        let e = raw.err().unwrap_or(DetectError::Engine(InferError::Stopped));
                        return (Err(Failure::Fatal(e)), t);
                    }
                }
            }
            (Pixels::Encoded(bytes), None) => match self.decode_blocking(bytes).await {
                Ok(r) => {
                    (img.width, img.height) = (r.width, r.height);
                    (self.detector.detect(r.pixels).await, r.transform)
                }
                Err((kind, reason)) => return (fail(img, "decode", kind, reason), t),
            },
        };
        let raw = match raw {
            Ok(d) => d,
            Err(e) if e.is_per_image() => {
                let reason = labeljob_api::error_chain(&e);
                return (fail(img, "inference", "bad-answer", reason), t);
            }
            Err(e) => return (Err(Failure::Fatal(e)), t),
        };
        t.inference += t2.elapsed().as_secs_f64();

        let classes = &self.ctx.model.classes;
        img.detections = apply_filter(raw, &self.ctx.filter)
            .into_iter()
            .filter_map(|d| {
                let cat = classes.category(d.class)?;
                let [x1, y1, x2, y2] = transform.to_original(d.bbox);
                let (bw, bh) = (x2 - x1, y2 - y1);
                (bw > 0.0 && bh > 0.0).then(|| Detection {
                    bbox: [round2(x1), round2(y1), round2(bw), round2(bh)],
                    score: (f64::from(d.score) * 1e5).round() / 1e5,
                    category_id: cat.id,
                })
            })
            .collect();
        (Ok(img), t)
    }

    fn spawn_progress(
        &self,
        index: u32,
        total: u64,
        counters: Arc<Counters>,
        started: Instant,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                let p = ShardProgress {
                    index,
                    total,
                    processed: counters.processed.load(Ordering::Relaxed).min(total),
                    failed: counters.failed.load(Ordering::Relaxed),
                    elapsed_seconds: started.elapsed().as_secs_f64(),
                    done: false,
                };
                this.write_progress(&p).await;
            }
        })
    }

    /// The store's one progress writer; a failure is logged (progress is advisory).
    async fn write_progress(&self, p: &ShardProgress) {
        if let Err(e) = labeljob_store::progress::write_progress(&self.ctx.output, p).await {
            tracing::warn!(shard = p.index, error = %e, "cannot write progress");
        }
    }
}

/// Resolves once `stop` is true (never when its sender is gone without asking).
async fn stopped(mut stop: watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

enum Failure {
    Image(ImageError),
    Fatal(DetectError),
}

/// Largest claim object read back (a claim is `{"id", "uri"}`; URIs are at most a few KiB).
const MAX_CLAIM_BYTES: u64 = 64 * 1024;

/// A claim of a content hash (`layout::claim_key`): the image that labels it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Claim {
    id: u64,
    uri: String,
}

impl ShardRunner {
    /// In `exact` dedup mode with several shards: claim `img`'s content for it (put-if-absent
    /// of its claim key) and return the id of the image that claimed it first when that is
    /// an image of another shard (then `img` is a byte copy: not sent to the model). A claim
    /// by this shard (`img` itself or another of its images, from an earlier attempt), a store
    /// without the claim (an error) or a malformed or foreign claim infers the image: at worst
    /// a second run, never a lost image.
    async fn claimed_by(
        &self,
        img: &ShardImage,
        manifest: &Manifest,
        own: &std::ops::Range<u64>,
    ) -> Option<u64> {
        let dedup = &self.ctx.job.spec.input.dedup;
        if dedup.mode != DedupMode::Exact || self.ctx.shards() < 2 {
            return None;
        }
        let key = layout::claim_key(&manifest.digest, img.sha256.as_deref()?);
        let body = serde_json::to_vec(&Claim { id: img.id, uri: img.uri.clone() }).ok()?;
        let output = &self.ctx.output;
        let first = match output.put_if_absent(&key, body.into()).await {
            Ok(true) => return None,
            // A claim is a few dozen bytes: anything larger is not one of ours (refused unread).
            Ok(false) => output.get_capped(&key, MAX_CLAIM_BYTES).await,
            Err(e) => Err(e),
        };
        let claim = match first {
            Ok(bytes) => serde_json::from_slice::<Claim>(&bytes).ok()?,
            Err(e) => {
                tracing::debug!(uri = %img.uri, error = %e, "no duplicate claim: labelling the image");
                return None;
            }
        };
        // The claim must name an image of this manifest, by id and URI, in another shard: one
        // of this shard (an earlier attempt's first copy, which this attempt may see as a
        // copy) is left to the shard's own index, so that two images never wait on each other.
        let names_an_image = usize::try_from(claim.id)
            .ok()
            .and_then(|i| manifest.entries.get(i))
            .is_some_and(|e| e.id == claim.id && e.uri == claim.uri);
        (!own.contains(&claim.id) && names_an_image).then_some(claim.id)
    }
}

/// A downloaded image waiting for inference, with its content hash (per `input.dedup`).
struct Prepared {
    entry: ManifestEntry,
    image: Pixels,
    hash: Option<ImageHash>,
    t: Timings,
}

/// An image as the model will see it, or its bytes still to be decoded.
enum Pixels {
    /// Decoded and resized.
    Ready(Ready),
    /// Downloaded only: the in-process engine decodes it on an inference thread.
    Encoded(bytes::Bytes),
}

/// A decoded and resized image: its original (upright) size, the model-input pixels, and how
/// boxes map back.
struct Ready {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
    transform: crate::imaging::BoxTransform,
}

/// How images are fitted to the model (copied into the blocking work).
#[derive(Clone, Copy)]
struct Fit {
    width: u32,
    height: u32,
    mode: labeljob_api::v1alpha1::ResizeMode,
    limits: DecodeLimits,
}

impl Fit {
    /// Decode (reduced by DCT scaling when the model input allows) and resize. Blocking.
    /// `keep_buffer`: the thread keeps the decoded pixels' buffer for its next image
    /// ([`crate::imaging::recycle`]; the inference threads, a fixed few, do).
    fn decode_resize(&self, bytes: &[u8], keep_buffer: bool) -> Result<Ready, (&'static str, String)> {
        let img = decode(bytes, Some((self.width, self.height)), &self.limits)
            .map_err(|e| (e.reason(), e.message()))?;
        let ready = self.resize(&img);
        if keep_buffer {
            crate::imaging::recycle(img);
        }
        ready
    }

    /// Resize a decoded image to the model input, with this thread's resizer.
    fn resize(&self, img: &crate::imaging::Decoded) -> Result<Ready, (&'static str, String)> {
        let (pixels, transform) = RESIZER
            .with(|r| r.borrow_mut().resize(img, self.width, self.height, self.mode))
            .map_err(|e| ("resize", labeljob_api::error_chain(&e)))?;
        Ok(Ready { width: img.width, height: img.height, pixels, transform })
    }
}

/// Fill in the labels of the copies in a shard (sorted by id) from their first copies in the
/// same shard (earlier ones, or a later one found first by a resumed shard).
fn copy_duplicate_labels(images: &mut [ShardImage]) {
    for i in 0..images.len() {
        let Some(dup) = images[i].duplicate_of else { continue };
        let Ok(pos) = images.binary_search_by_key(&dup.id, |im| im.id) else { continue };
        if pos < i {
            let (head, tail) = images.split_at_mut(i);
            tail[0].copy_labels_of(&head[pos], dup.distance);
        } else if pos > i {
            let (head, tail) = images.split_at_mut(pos);
            head[i].copy_labels_of(&tail[0], dup.distance);
        }
    }
}

fn round2(v: f32) -> f64 {
    (f64::from(v) * 100.0).round() / 100.0
}
