//! Shard progress: the shards write `<output>/progress/shard-NNNNN.json` every ~2 s and the
//! planner writes `<output>/plan.json`; the operator reads them each pass through the
//! [`ProgressSource`] trait, so reconcile tests inject a fake one.

use async_trait::async_trait;
use labeljob_api::LabelJob;
use serde::Deserialize;

/// Progress of one shard, as written by `labeljob shard`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardProgress {
    /// Shard index.
    pub index: u32,
    /// Images in the shard.
    pub total: u64,
    /// Images done (labelled or failed).
    pub processed: u64,
    /// Images that failed.
    pub failed: u64,
    /// Seconds the shard has been running.
    pub elapsed_seconds: f64,
    /// Whether the shard finished.
    pub done: bool,
}

/// What `plan.json` says about the frozen manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    /// sha256 of `manifest.jsonl`.
    pub manifest_digest: String,
    /// Images in the manifest.
    pub total: u64,
    /// Shards the manifest is cut into.
    pub shards: u32,
}

/// Why progress could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    /// Placeholder until the store-backed reader lands.
    #[error("no progress source")]
    Unavailable,
}

/// Where the operator reads shard progress and the plan summary from.
#[async_trait]
pub trait ProgressSource: Send + Sync {
    /// Progress of every shard of `lj` (None for a shard that has not written any yet).
    async fn read(&self, lj: &LabelJob) -> Result<Vec<Option<ShardProgress>>, ProgressError>;
    /// The plan summary of `lj` (None before `labeljob plan` wrote it).
    async fn plan(&self, lj: &LabelJob) -> Result<Option<PlanSummary>, ProgressError>;
}

/// Placeholder source until the store-backed reader is wired (replaced below in this file).
struct Unavailable;

#[async_trait]
impl ProgressSource for Unavailable {
    async fn read(&self, _lj: &LabelJob) -> Result<Vec<Option<ShardProgress>>, ProgressError> {
        Err(ProgressError::Unavailable)
    }
    async fn plan(&self, _lj: &LabelJob) -> Result<Option<PlanSummary>, ProgressError> {
        Err(ProgressError::Unavailable)
    }
}

/// The progress source the controller uses.
pub fn store_source(_client: kube::Client) -> std::sync::Arc<dyn ProgressSource> {
    std::sync::Arc::new(Unavailable)
}
