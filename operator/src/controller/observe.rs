//! Step 2 — observe. Reads the children (every row of the child table in `children.rs`) from
//! the controller's watch caches ([`ChildStores`], the reflectors of its owned watches: no
//! request), or by GET when it has none, and the shards' progress and the merge's report from
//! the output store through [`ProgressSource`] (only while they can change), and reduces them
//! to an [`Observed`] that `decide` and `status` work from; the live objects are kept so
//! `apply` writes only what differs. The status is derived from this every pass, never from a
//! record of past actions.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};
use labeljob_api::LabelJob;
use serde::de::DeserializeOwned;

use super::children::{Child, ChildObject, Kind, Object, Objects};
use super::validate::ValidatedJob;
use crate::error::{Error, Result};
use crate::progress::{PlanInfo, ProgressSource, ReportImages, ShardProgress};

/// Why a Job failed, as its `Failed` condition says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    /// The condition reason (`BackoffLimitExceeded`, `FailedIndexes`, `PodFailurePolicy`, …).
    pub reason: String,
    /// The condition message.
    pub message: String,
    /// The worker's exit code, when a `podFailurePolicy` rule failed the Job on it (the
    /// condition message names it): see [`labeljob_store::exit`].
    pub exit_code: Option<u8>,
}

impl JobFailure {
    /// The failure of a Job's `Failed` condition with this reason and message.
    pub fn new(reason: String, message: String) -> Self {
        let exit_code = pod_failure_exit_code(&reason, &message);
        JobFailure { reason, message, exit_code }
    }

    /// Whether the Job failed on the worker exiting with `code`.
    pub fn exited(&self, code: u8) -> bool {
        self.exit_code == Some(code)
    }
}

/// The exit code that failed a Job through its `podFailurePolicy`: the one place the operator
/// reads it (condition reason `PodFailurePolicy`, message `… failed with exit code N matching
/// FailJob rule …`).
pub fn pod_failure_exit_code(reason: &str, message: &str) -> Option<u8> {
    (reason == "PodFailurePolicy").then(|| labeljob_store::exit::from_pod_failure_message(message))?
}

/// What a Job's status says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobState {
    /// The `Complete` condition is True.
    pub complete: bool,
    /// The `Failed` condition is True.
    pub failed: Option<JobFailure>,
    /// Pods running.
    pub active: u32,
    /// Indexes (or pods, for non-indexed Jobs) that succeeded.
    pub succeeded: u32,
    /// Indexes that exhausted their retries (`status.failedIndexes`).
    pub failed_indexes: u32,
    /// `spec.suspend`.
    pub suspended: bool,
    /// `status.startTime`.
    pub start_time: Option<Time>,
    /// `status.completionTime`.
    pub completion_time: Option<Time>,
}

/// Count the indexes in a Job index list such as `"0-2,5,7-8"` (6 here).
pub fn count_indexes(list: &str) -> u32 {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|part| match part.trim().split_once('-') {
            Some((a, b)) => match (a.parse::<u32>(), b.parse::<u32>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 0,
            },
            None => u32::from(part.trim().parse::<u32>().is_ok()),
        })
        .sum()
}

impl JobState {
    /// Reduce a Job to what the operator needs (pure).
    pub fn from_job(job: &Job) -> Self {
        let status = job.status.clone().unwrap_or_default();
        let cond = |t: &str| {
            status.conditions.iter().flatten().find(|c| c.type_ == t && c.status == "True").cloned()
        };
        let indexed = job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed");
        let succeeded = match (&status.completed_indexes, indexed) {
            (Some(list), true) => count_indexes(list),
            _ => u32::try_from(status.succeeded.unwrap_or(0)).unwrap_or(0),
        };
        JobState {
            complete: cond("Complete").is_some(),
            failed: cond("Failed")
                .map(|c| JobFailure::new(c.reason.unwrap_or_default(), c.message.unwrap_or_default())),
            active: u32::try_from(status.active.unwrap_or(0)).unwrap_or(0),
            succeeded,
            failed_indexes: status.failed_indexes.as_deref().map(count_indexes).unwrap_or(0),
            suspended: job.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false),
            start_time: status.start_time,
            completion_time: status.completion_time,
        }
    }
}

/// What the inference Deployment's status says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeploymentState {
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.availableReplicas` (ready pods past minReadySeconds).
    pub available: i32,
}

/// The watch caches of the children (the reflector stores of the controller's owned watches).
#[derive(Clone)]
pub struct ChildStores {
    /// Jobs labelled `labeljob.dev/job`.
    pub jobs: Store<Job>,
    /// Deployments labelled `labeljob.dev/job`.
    pub deployments: Store<Deployment>,
    /// Services labelled `labeljob.dev/job`.
    pub services: Store<Service>,
    /// ConfigMaps labelled `labeljob.dev/job`.
    pub config_maps: Store<ConfigMap>,
}

impl ChildStores {
    /// Wait until every cache holds its first full listing (at most `timeout`): a pass before
    /// that would take existing children for missing ones.
    pub async fn ready(&self, timeout: std::time::Duration) -> bool {
        let all = async {
            self.jobs.wait_until_ready().await.is_ok()
                && self.deployments.wait_until_ready().await.is_ok()
                && self.services.wait_until_ready().await.is_ok()
                && self.config_maps.wait_until_ready().await.is_ok()
        };
        tokio::time::timeout(timeout, all).await.unwrap_or(false)
    }

    /// The cached object of `kind` named `name` in `ns`.
    pub fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<Object> {
        fn cached<K: ChildObject + Clone>(store: &Store<K>, ns: &str, name: &str) -> Option<Object> {
            store.get(&ObjectRef::new(name).within(ns)).map(|o| (*o).clone().into_object())
        }
        match kind {
            Kind::ConfigMap => cached(&self.config_maps, ns, name),
            Kind::Job => cached(&self.jobs, ns, name),
            Kind::Deployment => cached(&self.deployments, ns, name),
            Kind::Service => cached(&self.services, ns, name),
        }
    }
}

/// Read the children of LabelJob `name` in `ns`, every row of the child table: from `stores`,
/// else by GET.
pub async fn children(
    client: &Client,
    stores: Option<&ChildStores>,
    ns: &str,
    name: &str,
) -> Result<Objects> {
    let mut live = Objects::default();
    for c in Child::ALL {
        live[c] = match stores {
            Some(s) => s.get(c.kind(), ns, &c.name(name)),
            None => get(client, ns, c.kind(), c.name(name)).await?,
        };
    }
    Ok(live)
}

/// Everything one pass knows about the world.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    /// Job `NAME-plan`.
    pub plan_job: Option<JobState>,
    /// Deployment `NAME-inference`.
    pub deployment: Option<DeploymentState>,
    /// Job `NAME-shards`.
    pub shards_job: Option<JobState>,
    /// Job `NAME-merge`.
    pub merge_job: Option<JobState>,
    /// Per-shard progress (None: not read this pass, or the store could not be read).
    pub progress: Option<Vec<Option<ShardProgress>>>,
    /// `plan.json` of the output (None: not planned yet, not read, or unreadable).
    pub plan: Option<PlanInfo>,
    /// The image counts of `report.json` (None: not merged yet, not read, or unreadable).
    pub report: Option<ReportImages>,
    /// The children themselves.
    pub live: Objects,
}

impl Observed {
    /// Whether any child still exists.
    pub fn any_child(&self) -> bool {
        self.live.any()
    }
}

/// GET the object of `kind` named `name` in `ns` (None: not found).
async fn get(client: &Client, ns: &str, kind: Kind, name: String) -> Result<Option<Object>> {
    async fn typed<K>(client: &Client, ns: &str, name: String) -> Result<Option<Object>>
    where
        K: ChildObject<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(client.clone(), ns);
        match api.get_opt(&name).await {
            Ok(o) => Ok(o.map(K::into_object)),
            Err(source) => Err(Error::Observe { kind: K::KIND.as_str(), name, source }),
        }
    }
    match kind {
        Kind::ConfigMap => typed::<ConfigMap>(client, ns, name).await,
        Kind::Job => typed::<Job>(client, ns, name).await,
        Kind::Deployment => typed::<Deployment>(client, ns, name).await,
        Kind::Service => typed::<Service>(client, ns, name).await,
    }
}

/// What to read from the output store this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reads {
    /// `plan.json`, once the plan Job is complete (the status has no manifest digest yet).
    pub plan_summary: bool,
    /// Shard progress, while the shards Job exists (not once the final counts are recorded).
    pub progress: bool,
    /// `report.json`, once the merge Job is complete (not once the job's end is recorded).
    pub report: bool,
}

/// Read the children of `v` and, as `reads` asks, the plan summary and the shards' progress.
pub async fn observe(
    client: &Client,
    stores: Option<&ChildStores>,
    source: &dyn ProgressSource,
    lj: &LabelJob,
    v: &ValidatedJob,
    reads: Reads,
) -> Result<Observed> {
    let live = children(client, stores, &v.namespace, &v.name).await?;
    let job = |c| live.get::<Job>(c).map(JobState::from_job);
    let (plan_job, shards_job, merge_job) =
        (job(Child::PlanJob), job(Child::ShardsJob), job(Child::MergeJob));
    let deployment = live.get::<Deployment>(Child::Deployment).map(|d| DeploymentState {
        replicas: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        available: d.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0),
    });

    let planned = plan_job.as_ref().is_some_and(|j| j.complete);
    let plan = if planned && reads.plan_summary {
        match source.plan(lj).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, job = %v.name, "cannot read plan.json");
                None
            }
        }
    } else {
        None
    };
    let progress = if shards_job.is_some() && reads.progress {
        match source.read(lj).await {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(error = %e, job = %v.name, "cannot read shard progress");
                None
            }
        }
    } else {
        None
    };
    let report = if merge_job.as_ref().is_some_and(|j| j.complete) && reads.report {
        match source.report(lj).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, job = %v.name, "cannot read report.json");
                None
            }
        }
    } else {
        None
    };
    Ok(Observed { plan_job, deployment, shards_job, merge_job, progress, plan, report, live })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_index_lists() {
        assert_eq!(count_indexes(""), 0);
        assert_eq!(count_indexes("3"), 1);
        assert_eq!(count_indexes("0-2,5,7-8"), 6);
        assert_eq!(count_indexes("0-9999"), 10000);
        assert_eq!(count_indexes("x,2-1"), 0);
    }

    #[test]
    fn reduces_an_indexed_job() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "a-shards"},
            "spec": {"completionMode": "Indexed", "completions": 8, "suspend": false,
                     "template": {"spec": {"containers": []}}},
            "status": {"active": 2, "succeeded": 5, "completedIndexes": "0-3,6", "failedIndexes": "5",
                "conditions": [{"type": "Failed", "status": "True", "reason": "FailedIndexes",
                                "message": "Job has failed indexes"}]}
        }))
        .expect("job");
        let s = JobState::from_job(&job);
        assert_eq!((s.active, s.succeeded, s.failed_indexes, s.complete), (2, 5, 1, false));
        assert_eq!(s.failed.map(|f| f.reason), Some("FailedIndexes".into()));
    }

    #[test]
    fn reduces_a_complete_job() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "a-plan"},
            "spec": {"template": {"spec": {"containers": []}}},
            "status": {"succeeded": 1, "completionTime": "2026-01-01T00:05:00Z",
                "conditions": [{"type": "Complete", "status": "True"}]}
        }))
        .expect("job");
        let s = JobState::from_job(&job);
        assert!(s.complete && s.failed.is_none() && s.completion_time.is_some());
        assert_eq!(s.succeeded, 1);
    }
}
