//! `labeljob run FILE`: the whole LabelJob in one process — plan, every shard (concurrently, up
//! to `workers.parallelism`, sharing one detector), merge — with a progress bar (done/total,
//! img/s, ETA) and a one-line summary. Killed and run again, it redoes only unfinished shards.
//! The output is locked for the run (`run.lock`), so two runs never write one output at once.
//! An input that lists no images ends the run after planning with [`RunError::EmptyInput`]
//! (exit code 2), as the operator fails such a job with reason `EmptyInput`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::detector::Detector;
use crate::job::JobContext;
use crate::lock::{LockError, RunLock};
use crate::merge::{MergeError, MergeSummary, merge};
use crate::shard::{Counters, ShardError, ShardOutcome, ShardRunner};
use crate::stages::{PlanError, plan};

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Planning failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The input lists no images: nothing to label (the job file names the wrong place).
    #[error("the input {uri} lists no images (after include, exclude and maxImages): nothing to label")]
    EmptyInput {
        /// `spec.input.uri`.
        uri: String,
    },
    /// A `file://` input directory that does not exist: refused before anything is written.
    #[error("the input {uri} does not exist: nothing to label")]
    MissingInput {
        /// `spec.input.uri`.
        uri: String,
    },
    /// A shard failed.
    #[error(transparent)]
    Shard(#[from] ShardError),
    /// The merge failed.
    #[error(transparent)]
    Merge(#[from] MergeError),
    /// Another run holds the output.
    #[error(transparent)]
    Locked(#[from] LockError),
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Merge outcome.
    pub merge: MergeSummary,
    /// Shards reused from an earlier run.
    pub shards_skipped: u32,
    /// Shards run now.
    pub shards_run: u32,
    /// Wall time.
    pub seconds: f64,
}

impl RunSummary {
    /// Images per second over the run.
    pub fn images_per_second(&self) -> f64 {
        if self.seconds > 0.0 { (self.merge.labelled + self.merge.failed) as f64 / self.seconds } else { 0.0 }
    }
}

/// Run every stage of `ctx` with `detector`; `show_progress` draws a bar on stderr.
pub async fn run_job(
    ctx: Arc<JobContext>,
    detector: Arc<dyn Detector>,
    decoders: usize,
    show_progress: bool,
) -> Result<RunSummary, RunError> {
    // A local input that is not there is the job file's mistake: refused before the output
    // (and its lock) is created.
    if let Some(dir) = ctx.input.location().and_then(|l| l.local_dir())
        && !dir.exists()
    {
        return Err(RunError::MissingInput { uri: ctx.input.uri().to_string() });
    }
    let lock = RunLock::acquire(&ctx.output).await?;
    let result = run_locked(ctx, detector, decoders, show_progress).await;
    lock.release().await;
    result
}

async fn run_locked(
    ctx: Arc<JobContext>,
    detector: Arc<dyn Detector>,
    decoders: usize,
    show_progress: bool,
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let (manifest, info) = plan(&ctx).await?;
    tracing::info!(images = info.total, shards = info.shards, manifest = %info.manifest_digest, "planned");
    if info.total == 0 {
        return Err(RunError::EmptyInput { uri: ctx.input.uri().to_string() });
    }
    let shards = ctx.shards();
    let parallelism = ctx.settings.workers.parallelism.min(shards).max(1) as usize;
    let runner = ShardRunner::new(ctx.clone(), detector, decoders);
    let counters: Vec<Arc<Counters>> = (0..shards).map(|_| Arc::new(Counters::default())).collect();

    let bar = ProgressBar::with_draw_target(
        Some(info.total),
        if show_progress { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} images  {per_sec}  ETA {eta}  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let ticker = {
        let (bar, counters) = (bar.clone(), counters.clone());
        tokio::spawn(async move {
            loop {
                let done: u64 = counters.iter().map(|c| c.processed.load(Ordering::Relaxed)).sum();
                let failed: u64 = counters.iter().map(|c| c.failed.load(Ordering::Relaxed)).sum();
                bar.set_position(done);
                bar.set_message(format!("{failed} failed"));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    let manifest = Arc::new(manifest);
    let outcomes: Vec<Result<ShardOutcome, ShardError>> = futures::stream::iter(0..shards)
        .map(|i| {
            let (runner, manifest, c) = (runner.clone(), manifest.clone(), counters[i as usize].clone());
            async move { runner.run(&manifest, i, c).await }
        })
        .buffer_unordered(parallelism)
        .collect()
        .await;
    ticker.abort();
    bar.finish_and_clear();
    let (mut skipped, mut ran) = (0, 0);
    for o in outcomes {
        match o? {
            ShardOutcome::Skipped { .. } => skipped += 1,
            ShardOutcome::Done { .. } => ran += 1,
            // not reached: only the job's shards run here, never more than its images
            ShardOutcome::Empty { .. } => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let merge = merge(&ctx, &manifest, Some(seconds)).await?;
    Ok(RunSummary {
        merge,
        shards_skipped: skipped,
        shards_run: ran,
        seconds: started.elapsed().as_secs_f64(),
    })
}
