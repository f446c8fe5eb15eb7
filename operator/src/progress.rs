//! Shard progress: the shards write `<output>/progress/shard-NNNNN.json` every ~2 s and the
//! planner writes `<output>/plan.json` and the merge `<output>/report.json`; the operator reads
//! them (each only while it can change) through the
//! [`ProgressSource`] trait, so reconcile tests inject a fake one; [`StoreProgress`] is the
//! real one (`labeljob-store`).

use async_trait::async_trait;
use labeljob_api::LabelJob;

mod store;
#[cfg(test)]
mod store_tests;
pub use store::{StoreProgress, secret_vars};

pub use labeljob_store::{PlanInfo, ReportImages, ShardProgress};

/// Why progress could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    /// The LabelJob has no namespace (its credentials Secret cannot be found).
    #[error("the LabelJob has no namespace")]
    NoNamespace,
    /// The credentials Secret could not be read.
    #[error("cannot read credentials Secret {name}: {source}")]
    Secret {
        /// Secret name.
        name: String,
        /// The apiserver error.
        #[source]
        source: kube::Error,
    },
    /// The store could not be configured or read.
    #[error(transparent)]
    Store(#[from] labeljob_store::StoreError),
}

/// Where the operator reads shard progress and the plan summary from.
#[async_trait]
pub trait ProgressSource: Send + Sync {
    /// Progress of every shard of `lj` (None for a shard that has not written any yet).
    async fn read(&self, lj: &LabelJob) -> Result<Vec<Option<ShardProgress>>, ProgressError>;
    /// The plan summary of `lj` (None before `labeljob plan` wrote it).
    async fn plan(&self, lj: &LabelJob) -> Result<Option<PlanInfo>, ProgressError>;
    /// The image counts of the merge's `report.json` (None before the merge wrote it).
    async fn report(&self, lj: &LabelJob) -> Result<Option<ReportImages>, ProgressError>;
}

/// The progress source the controller uses: the output store, with the job's credentials.
pub fn store_source(client: kube::Client) -> std::sync::Arc<dyn ProgressSource> {
    std::sync::Arc::new(StoreProgress::new(client))
}
