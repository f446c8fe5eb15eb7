//! Subcommands of `labeljob`: `run` (the whole job here), the per-pod stages `plan`, `shard`
//! and `merge`, `serve` (the inference server) and `preview`. Exit codes: those of
//! [`labeljob_store::exit`] (0 success, 1 failure, 2 invalid job file or arguments — or, for
//! `run`, an input with no images —, 3 error budget exceeded, 143 a shard interrupted by
//! SIGTERM after committing its partial results).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use labeljob_store::{StoreError, exit};
use labeljob_worker::checkpoint::CheckpointPolicy;
use labeljob_worker::detector::Detector;
use labeljob_worker::job::{JobContext, JobError};
use labeljob_worker::model::config::ModelConfigError;
use labeljob_worker::oip::client::{EndpointArgs, OipClient};
use labeljob_worker::serve::ServeArgs;
use labeljob_worker::shard::{Counters, ShardError, ShardOutcome, ShardRunner};
use labeljob_worker::stages::LocalEngineArgs;
use labeljob_worker::{merge, preview, run, stages};

/// LabelJob: label a pile of images with a detection model and write one COCO file.
#[derive(Debug, Parser)]
#[command(name = "labeljob", version, about)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, env = "LABELJOB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain, global = true)]
    pub log_format: LogFormat,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a whole LabelJob in this process: plan, every shard, merge.
    Run {
        /// The LabelJob YAML file (the same file you would `kubectl apply`).
        #[arg(env = "LABELJOB_JOB_FILE")]
        file: PathBuf,
        /// In-process inference.
        #[command(flatten)]
        local: LocalEngineArgs,
        /// Hide the progress bar.
        #[arg(long, env = "LABELJOB_NO_PROGRESS")]
        no_progress: bool,
        /// Remote inference.
        #[command(flatten)]
        remote: EndpointArgs,
    },
    /// List the input once and freeze it in `<output>/manifest.jsonl`.
    Plan {
        /// The LabelJob YAML file.
        #[arg(long, env = "LABELJOB_JOB_FILE")]
        job: PathBuf,
    },
    /// Label one shard of the manifest and write `<output>/shards/shard-NNNNN.json`.
    Shard {
        /// The LabelJob YAML file.
        #[arg(long, env = "LABELJOB_JOB_FILE")]
        job: PathBuf,
        /// Shard index (in a Kubernetes Indexed Job: $JOB_COMPLETION_INDEX).
        #[arg(long, env = "JOB_COMPLETION_INDEX")]
        index: u32,
        /// In-process inference.
        #[command(flatten)]
        local: LocalEngineArgs,
        /// Remote inference.
        #[command(flatten)]
        remote: EndpointArgs,
        /// Commit finished images as partial results at least this often (seconds), so that a
        /// retried shard resumes after them.
        #[arg(long, env = "LABELJOB_CHECKPOINT_SECONDS", default_value_t = 30)]
        checkpoint_seconds: u64,
        /// Commit partial results at the latest after this many finished images.
        #[arg(long, env = "LABELJOB_CHECKPOINT_IMAGES", default_value_t = 500)]
        checkpoint_images: usize,
    },
    /// Serve a model over the Open Inference Protocol v2 (REST) until SIGTERM or ctrl-c.
    Serve(ServeArgs),
    /// Merge the shards into annotations.json, results.json, errors.jsonl and report.json.
    Merge {
        /// The LabelJob YAML file.
        #[arg(long, env = "LABELJOB_JOB_FILE")]
        job: PathBuf,
    },
    /// Draw the boxes of a COCO file onto its images as a PNG contact sheet.
    Preview {
        /// A COCO annotations.json (local path or URI).
        #[arg(env = "LABELJOB_PREVIEW_ANNOTATIONS")]
        annotations: String,
        /// The PNG to write.
        #[arg(long, env = "LABELJOB_PREVIEW_OUT")]
        out: PathBuf,
        /// Most images on the sheet.
        #[arg(long, env = "LABELJOB_PREVIEW_MAX_IMAGES", default_value_t = 24)]
        max_images: usize,
        /// Width of each tile in pixels.
        #[arg(long, env = "LABELJOB_PREVIEW_TILE", default_value_t = 320)]
        tile: u32,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("error budget exceeded: {failed} of {total} images failed")]
struct BudgetExceeded {
    failed: u64,
    total: u64,
}

/// The exit code for an error.
pub fn exit_code_of(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<BudgetExceeded>().is_some() {
        return exit::ERROR_BUDGET;
    }
    if let Some(ShardError::Interrupted { .. }) = e.downcast_ref::<ShardError>() {
        return exit::INTERRUPTED;
    }
    if let Some(run::RunError::EmptyInput { .. } | run::RunError::MissingInput { .. }) =
        e.downcast_ref::<run::RunError>()
    {
        return exit::INVALID_JOB;
    }
    match e.downcast_ref::<JobError>() {
        Some(
            JobError::Document { .. }
            | JobError::Invalid { .. }
            | JobError::Spec(_)
            | JobError::Read { .. }
            | JobError::UnknownClass(_)
            | JobError::Model(
                ModelConfigError::UnknownBuiltin { .. } | ModelConfigError::Missing(_),
            )
            // The job names a store or a filter that cannot exist (`s3:///x`, a bad glob).
            | JobError::Store(
                StoreError::InvalidUri { .. }
                | StoreError::Url { .. }
                | StoreError::InvalidKey { .. }
                | StoreError::Glob { .. },
            ),
        ) => exit::INVALID_JOB,
        _ => exit::FAILURE,
    }
}

/// Set up tracing from RUST_LOG (default `info`).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,ort=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Run a subcommand.
pub async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { file, local, no_progress, remote } => {
            let ctx = JobContext::load(&file).await?;
            let detector = detector(&ctx, &local, &remote).await?;
            let show = !no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
            let s = run::run_job(ctx.clone(), detector, local.decoders(), show).await?;
            let m = &s.merge;
            println!(
                "{} in {:.1}s, {:.1} img/s; shards: {} run, {} reused{} -> {}",
                m.line(),
                s.seconds,
                s.images_per_second(),
                s.shards_run,
                s.shards_skipped,
                cut_note(ctx.shards(), ctx.requested_shards()),
                m.annotations_uri
            );
            budget(m)
        }
        Command::Plan { job } => {
            let ctx = JobContext::load(&job).await?;
            let (_, info) = stages::plan(&ctx).await?;
            println!(
                "planned {} images in {} shards{} (manifest {})",
                info.total,
                info.shards,
                cut_note(info.shards, ctx.requested_shards()),
                info.manifest_digest
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Shard { job, index, local, remote, checkpoint_seconds, checkpoint_images } => {
            let ctx = JobContext::load(&job).await?;
            let (manifest, info) = stages::plan(&ctx).await?;
            if index >= info.shards && index < ctx.requested_shards() {
                // fewer images than workers.shards: this pod has nothing to do (no model loaded)
                println!("shard {index}: nothing to do ({} images in {} shards)", info.total, info.shards);
                return Ok(ExitCode::SUCCESS);
            }
            let detector = detector(&ctx, &local, &remote).await?;
            let policy = CheckpointPolicy {
                every: std::time::Duration::from_secs(checkpoint_seconds),
                images: checkpoint_images,
            };
            let runner = ShardRunner::new(ctx.clone(), detector, local.decoders())
                .with_checkpoints(policy, on_sigterm());
            match runner.run(&manifest, index, Arc::new(Counters::default())).await? {
                ShardOutcome::Skipped { images } => println!("shard {index}: already done ({images} images)"),
                ShardOutcome::Empty { shards } => println!("shard {index}: nothing to do ({shards} shards)"),
                ShardOutcome::Done { labelled, failed, resumed } => {
                    println!("shard {index}: labelled {labelled}, failed {failed}, resumed {resumed}")
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            labeljob_worker::serve::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Merge { job } => {
            let ctx = JobContext::load(&job).await?;
            let (manifest, _) = stages::plan(&ctx).await?;
            let m = merge::merge(&ctx, &manifest, None).await?;
            println!("merged: {} -> {}", m.line(), m.annotations_uri);
            budget(&m)
        }
        Command::Preview { annotations, out, max_images, tile } => {
            let n = preview::contact_sheet(&annotations, &out, max_images, tile)
                .await
                .with_context(|| format!("preview of {annotations}"))?;
            println!("wrote {} ({n} images)", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `" (workers.shards N: at most one shard per image)"` when the job runs fewer shards than
/// asked for, else nothing.
fn cut_note(shards: u32, requested: u32) -> String {
    match shards < requested {
        true => format!(" (workers.shards {requested}: at most one shard per image)"),
        false => String::new(),
    }
}

/// A receiver that becomes true on SIGTERM (what the kubelet sends on eviction, preemption
/// or node shutdown) or ctrl-c: the shard commits its partial results and exits.
fn on_sigterm() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = term => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("stop requested: committing partial results");
        let _ = tx.send(true);
    });
    rx
}

fn budget(m: &merge::MergeSummary) -> anyhow::Result<ExitCode> {
    if m.budget_exceeded {
        return Err(BudgetExceeded { failed: m.failed, total: m.total }.into());
    }
    Ok(ExitCode::SUCCESS)
}

/// The job's detector: a remote server (`--endpoint`, else `spec.inference.endpoint`) or the
/// model in this process.
async fn detector(
    ctx: &Arc<JobContext>,
    local: &LocalEngineArgs,
    remote: &EndpointArgs,
) -> anyhow::Result<Arc<dyn Detector>> {
    let inference = &ctx.job.spec.inference;
    let Some(endpoint) = remote.endpoint.clone().or_else(|| inference.endpoint.clone()) else {
        return local_detector(ctx, local).await;
    };
    let spec = &ctx.job.spec;
    let name = &ctx.settings.inference.model_name;
    if spec.postprocess.score_threshold < 0.05 {
        tracing::warn!(
            threshold = spec.postprocess.score_threshold,
            "labeljob serve returns scores >= its --score-threshold (default 0.05) only"
        );
    }
    let client = OipClient::connect(&endpoint, name, ctx.model.width, ctx.model.height, remote.options())
        .await
        .with_context(|| format!("inference endpoint {endpoint}"))?;
    Ok(Arc::new(client))
}

/// Load the model off the async workers (ORT session creation blocks for seconds).
async fn local_detector(ctx: &Arc<JobContext>, local: &LocalEngineArgs) -> anyhow::Result<Arc<dyn Detector>> {
    let (c, l) = (ctx.clone(), local.clone());
    let engine = tokio::task::spawn_blocking(move || stages::start_engine(&c, &l))
        .await
        .context("the model loading thread stopped")?
        .with_context(|| format!("loading model {}", ctx.model.path.display()))?;
    Ok(Arc::new(engine))
}
