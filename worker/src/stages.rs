//! The stage entry points shared by `labeljob plan|shard|merge` (one stage per pod in a
//! cluster) and `labeljob run` (all stages in one process): freezing the plan, and building the
//! detector a shard uses.

use std::sync::Arc;

use labeljob_api::v1alpha1::{Device, OverwritePolicy};
use labeljob_store::manifest::Manifest;
use labeljob_store::{PlanInfo, StoreError, layout};

use crate::job::JobContext;
use crate::model::signed_weights::WeightSigning;
use crate::model::{Engine, EngineOptions};

/// Why planning failed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Store access failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The output holds a plan for another input and `overwrite: Fail`.
    #[error("{uri} was planned from another input (output.overwrite is Fail): choose another output.uri")]
    Conflict {
        /// The plan file.
        uri: String,
    },
}

/// Freeze the input listing. `Resume` and `Fail` reuse the manifest when it was made from the
/// same input spec, and say loudly when the input now lists differently (the frozen listing is
/// kept, so finished shards stay valid); a changed input spec re-plans (`Fail` refuses).
/// `Replace` always lists the input again. From here on `ctx.shards()` is the number of
/// shards the job runs (at most one per image).
pub async fn plan(ctx: &JobContext) -> Result<(Manifest, PlanInfo), PlanError> {
    let policy = ctx.overwrite();
    let mut replan = policy == OverwritePolicy::Replace;
    if let Some(bytes) = ctx.output.get_opt(layout::PLAN).await? {
        let old: Option<PlanInfo> = serde_json::from_slice(&bytes).ok();
        let same_input = old.as_ref().is_some_and(|p| p.input_digest == ctx.input_digest);
        if !same_input {
            if policy == OverwritePolicy::Fail {
                return Err(PlanError::Conflict { uri: ctx.output.child_uri(layout::PLAN) });
            }
            tracing::info!("input changed since the last plan: listing again");
            replan = true;
        }
    }
    if replan {
        ctx.output.delete(layout::MANIFEST).await?;
    }
    let manifest = match labeljob_store::plan::read_manifest(&ctx.output).await? {
        Some(frozen) => {
            warn_on_drift(ctx, &frozen).await?;
            frozen
        }
        None => labeljob_store::plan::plan(&ctx.input, &ctx.output).await?,
    };
    ctx.set_planned_images(manifest.len());
    let info = PlanInfo {
        manifest_digest: manifest.digest.clone(),
        total: manifest.entries.len() as u64,
        shards: ctx.shards(),
        input_digest: ctx.input_digest.clone(),
    };
    let bytes = serde_json::to_vec_pretty(&info).unwrap_or_default();
    ctx.output.put(layout::PLAN, bytes.into()).await?;
    Ok((manifest, info))
}

/// Compare the frozen manifest with what the input lists now; warn when they differ.
async fn warn_on_drift(ctx: &JobContext, frozen: &Manifest) -> Result<(), PlanError> {
    let now = ctx.input.list_manifest().await?;
    if now.digest == frozen.digest {
        return Ok(());
    }
    let index = |m: &Manifest| -> std::collections::BTreeMap<String, (Option<u64>, Option<String>)> {
        m.entries.iter().map(|e| (e.key.clone(), (e.size, e.etag.clone()))).collect()
    };
    let (old, new) = (index(frozen), index(&now));
    let added = new.keys().filter(|k| !old.contains_key(*k)).count();
    let removed = old.keys().filter(|k| !new.contains_key(*k)).count();
    let changed = old.iter().filter(|(k, v)| new.get(*k).is_some_and(|n| n != *v)).count();
    tracing::warn!(
        output = %ctx.output.child_uri(layout::MANIFEST),
        frozen = frozen.entries.len(),
        now = now.entries.len(),
        added,
        removed,
        changed,
        "the input lists differently from the frozen manifest ({added} added, {removed} removed, \
         {changed} changed): labelling the frozen listing (output.overwrite: Resume); set \
         output.overwrite: Replace to label the input as it is now"
    );
    Ok(())
}

/// Most sessions the default sizing starts (each holds the model and its arena).
pub const MAX_DEFAULT_SESSIONS: usize = 4;

/// How many model sessions run side by side and how many intra-op threads each uses.
///
/// On CPU a small detector keeps several single-threaded sessions busier than one session with
/// every core (measured on 2 cores with the default SSD: 2 × 1 thread ≈ 1.4× the images/s of
/// 1 × 2 threads, see `make bench`), so the default is one session per core, at most
/// [`MAX_DEFAULT_SESSIONS`], sharing the cores out as intra-op threads. A GPU runs one session.
pub fn engine_size(
    device: Device,
    cores: usize,
    sessions: Option<usize>,
    threads: Option<usize>,
) -> (usize, usize) {
    let cores = cores.max(1);
    let sessions = sessions.unwrap_or(match device {
        Device::Cpu => cores.min(MAX_DEFAULT_SESSIONS),
        Device::Cuda => 1,
    });
    let sessions = sessions.max(1);
    (sessions, threads.unwrap_or((cores / sessions).max(1)).max(1))
}

/// Engine options for running a job's model in this process: `sessions` sessions of
/// `threads` intra-op threads each, batching and device as the job's resolved settings say.
pub fn local_engine_options(
    ctx: &JobContext,
    sessions: usize,
    threads: usize,
    weights: WeightSigning,
) -> EngineOptions {
    let inf = &ctx.settings.inference;
    EngineOptions {
        sessions,
        threads_per_session: threads,
        max_batch: inf.max_batch_size as usize,
        max_delay: std::time::Duration::from_millis(u64::from(inf.max_batch_delay_ms)),
        queue_capacity: 1024,
        device: inf.local_device,
        filter: ctx.filter.clone(),
        weights,
    }
}

/// Flags sizing in-process inference in `labeljob run` and `labeljob shard`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LocalEngineArgs {
    /// In-process inference: model sessions run side by side (default: one per core on CPU, at
    /// most 4; 1 on CUDA).
    #[arg(long, env = "LABELJOB_SESSIONS")]
    pub sessions: Option<usize>,
    /// In-process inference: intra-op threads per session (default: the cores divided by the
    /// sessions).
    #[arg(long, env = "LABELJOB_THREADS")]
    pub threads: Option<usize>,
    /// Images decoded and resized at once on the blocking pool (default: one per core): for an
    /// endpoint, perceptual dedup and copies. In-process inference threads decode their own
    /// images.
    #[arg(long, env = "LABELJOB_DECODERS")]
    pub decoders: Option<usize>,
    /// In-process inference on CPU: `auto` loads a model's uint8 conv weights as int8 where the
    /// CPU's int8 kernels are exact for it (AVX512-VNNI; outputs unchanged, inference faster);
    /// `off` loads the model file as it is.
    #[arg(long, env = "LABELJOB_INT8_WEIGHTS", value_enum, default_value_t)]
    pub int8_weights: WeightSigning,
}

impl LocalEngineArgs {
    /// Images decoded at once: `--decoders`, else one per core.
    pub fn decoders(&self) -> usize {
        self.decoders.unwrap_or_else(cores).max(1)
    }
}

/// Start the in-process engine for a job, sized by [`engine_size`] unless `args` say otherwise.
/// Blocking (it loads the model): call it from `spawn_blocking` or a thread.
pub fn start_engine(
    ctx: &Arc<JobContext>,
    args: &LocalEngineArgs,
) -> Result<Engine, crate::model::session::SessionError> {
    let device = ctx.settings.inference.local_device;
    let (sessions, threads) = engine_size(device, cores(), args.sessions, args.threads);
    tracing::debug!(sessions, threads, "starting the inference engine");
    Engine::start(ctx.model.clone(), local_engine_options(ctx, sessions, threads, args.int8_weights))
}

/// Cores available to this process.
pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_sizing() {
        assert_eq!(engine_size(Device::Cpu, 2, None, None), (2, 1));
        assert_eq!(engine_size(Device::Cpu, 1, None, None), (1, 1));
        assert_eq!(engine_size(Device::Cpu, 16, None, None), (4, 4));
        assert_eq!(engine_size(Device::Cpu, 16, Some(1), None), (1, 16));
        assert_eq!(engine_size(Device::Cpu, 8, None, Some(1)), (4, 1));
        assert_eq!(engine_size(Device::Cuda, 8, None, None), (1, 8));
        assert_eq!(engine_size(Device::Cpu, 0, Some(0), Some(0)), (1, 1));
    }

    #[test]
    fn sizing_flags_parse() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            local: LocalEngineArgs,
        }
        let cli = Cli::try_parse_from(["labeljob", "--sessions", "3"]).expect("parse");
        assert_eq!((cli.local.sessions, cli.local.threads), (Some(3), None));
        assert!(Cli::try_parse_from(["labeljob", "--threads", "many"]).is_err());
    }
}
