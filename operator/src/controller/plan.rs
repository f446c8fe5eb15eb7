//! Step 4 — plan (pure). From the validated spec, the previous status and what was observed,
//! decide the phase, which children should exist, whether they are suspended, whether to tear
//! down, and when to look again. A finished job (Succeeded/Failed) stays finished: the phase is
//! the one fact carried over from the status, since its children may already be gone. A job
//! Kueue admits has its Jobs created suspended and then left as they are (Kueue unsuspends them
//! on admission and suspends them on preemption): the operator never fights it.

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use labeljob_api::v1alpha1::TeardownPolicy;
use labeljob_api::{LabelJobStatus, Phase};

use super::observe::{JobState, Observed};
use super::validate::ValidatedJob;

/// Requeue period while shards run (progress is read every pass).
pub const RUNNING_REQUEUE: Duration = Duration::from_secs(10);
/// Requeue period while provisioning or merging (child watches also wake the controller).
pub const WAITING_REQUEUE: Duration = Duration::from_secs(15);
/// Requeue period otherwise.
pub const IDLE_REQUEUE: Duration = Duration::from_secs(300);

/// Which children should exist this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Want {
    /// ConfigMap `NAME-job`.
    pub config_map: bool,
    /// Job `NAME-plan`.
    pub plan_job: bool,
    /// Deployment and Service `NAME-inference`.
    pub inference: bool,
    /// Job `NAME-shards`.
    pub shards_job: bool,
    /// Job `NAME-merge`.
    pub merge_job: bool,
}

/// `spec.suspend` of each Job this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobSuspend {
    /// Job `NAME-plan`.
    pub plan: bool,
    /// Job `NAME-shards`.
    pub shards: bool,
    /// Job `NAME-merge`.
    pub merge: bool,
}

impl JobSuspend {
    /// Every Job suspended as `spec.suspend` says.
    pub fn all(suspend: bool) -> Self {
        JobSuspend { plan: suspend, shards: suspend, merge: suspend }
    }

    /// What each Job should say: without Kueue, `spec.suspend`; with Kueue, suspended when
    /// created and as Kueue last left it afterwards (pure).
    pub fn of(v: &ValidatedJob, obs: &Observed) -> Self {
        if !v.kueue() {
            return Self::all(v.spec.suspend);
        }
        let live = |j: &Option<JobState>| j.as_ref().is_none_or(|j| j.suspended);
        JobSuspend { plan: live(&obs.plan_job), shards: live(&obs.shards_job), merge: live(&obs.merge_job) }
    }
}

/// Why the job failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// PascalCase reason: the Complete condition's reason and the Warning Event's.
    pub reason: &'static str,
    /// For a person.
    pub message: String,
}

/// What this pass does.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The phase after this pass.
    pub phase: Phase,
    /// Children to apply.
    pub want: Want,
    /// `spec.suspend`: Jobs suspended and Deployment at zero replicas.
    pub suspend: bool,
    /// `spec.suspend` of each Job (as `suspend`, unless Kueue admits the job).
    pub jobs: JobSuspend,
    /// Delete every child this pass (finished with teardown policy Delete).
    pub teardown: bool,
    /// The job failed (this pass or before).
    pub failure: Option<Failure>,
    /// The job finished in this very pass.
    pub finished_now: bool,
    /// Delete the LabelJob itself (ttlSecondsAfterFinished elapsed).
    pub expired: bool,
    /// When to reconcile again (None: only on change).
    pub requeue: Option<Duration>,
}

fn failed(j: &Option<JobState>) -> Option<&super::observe::JobFailure> {
    j.as_ref().and_then(|j| j.failed.as_ref())
}

fn complete(j: &Option<JobState>) -> bool {
    j.as_ref().is_some_and(|j| j.complete)
}

fn until(now: Timestamp, t: Timestamp) -> Duration {
    Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// Images in the frozen manifest, once known: from `plan.json` this pass, else the status.
fn planned_total(prev: &LabelJobStatus, obs: &Observed) -> Option<u64> {
    let recorded = prev.manifest_digest.as_ref().and(prev.images).map(|i| i.total);
    obs.plan.as_ref().map(|p| p.total).or(recorded)
}

/// The failure, if any, that ends the job now.
fn failure(
    v: &ValidatedJob,
    prev: &LabelJobStatus,
    obs: &Observed,
    start: Timestamp,
    now: Timestamp,
) -> Option<Failure> {
    if let Some(f) = failed(&obs.merge_job) {
        // The merge exits ERROR_BUDGET when the error budget is exceeded; the podFailurePolicy
        // fails the Job at once and names the exit code in the condition message.
        let budget = f.exited(labeljob_store::exit::ERROR_BUDGET);
        return Some(Failure {
            reason: if budget { "ErrorBudgetExceeded" } else { "MergeFailed" },
            message: format!("merge Job failed ({}): {}", f.reason, f.message),
        });
    }
    if let Some(f) = failed(&obs.shards_job) {
        let failed = obs.shards_job.as_ref().map(|j| j.failed_indexes).unwrap_or(0);
        return Some(Failure {
            reason: "ShardsFailed",
            message: format!("{failed} shard(s) exhausted their retries ({}): {}", f.reason, f.message),
        });
    }
    if let Some(f) = failed(&obs.plan_job) {
        return Some(Failure {
            reason: "PlanFailed",
            message: format!("plan Job failed ({}): {}", f.reason, f.message),
        });
    }
    if planned_total(prev, obs) == Some(0) {
        // Nothing to label: fail before the shards Job (and the merge) are created.
        return Some(Failure {
            reason: "EmptyInput",
            message: format!(
                "the input {} lists no images (after include, exclude and maxImages): nothing to label",
                labeljob_store::redact_uri(&v.spec.input.uri)
            ),
        });
    }
    if let Some(secs) = v.spec.active_deadline_seconds
        && !complete(&obs.merge_job)
        && now >= start + SignedDuration::from_secs(secs)
    {
        return Some(Failure {
            reason: "DeadlineExceeded",
            message: format!("the job ran longer than activeDeadlineSeconds ({secs} s)"),
        });
    }
    None
}

/// Decide this pass (pure).
pub fn plan(v: &ValidatedJob, prev: &LabelJobStatus, obs: &Observed, now: Timestamp) -> Plan {
    let teardown_policy = |phase: Phase| match phase {
        Phase::Succeeded => v.spec.teardown.on_success,
        _ => v.spec.teardown.on_failure,
    };
    let ttl_action = |completed: Timestamp| match v.spec.ttl_seconds_after_finished {
        Some(ttl) => {
            let at = completed + SignedDuration::from_secs(ttl);
            (now >= at, Some(until(now, at).max(Duration::from_secs(1))))
        }
        None => (false, None),
    };

    if let Some(phase) = prev.phase.filter(|p| p.is_finished()) {
        let completed = prev.completion_time.as_ref().map(|t| t.0).unwrap_or(now);
        let (expired, requeue) = ttl_action(completed);
        let prev_failure =
            labeljob_api::conditions::find(&prev.conditions, labeljob_api::conditions::COMPLETE)
                .filter(|_| phase == Phase::Failed)
                .map(|c| Failure { reason: "Failed", message: c.message.clone() });
        return Plan {
            phase,
            want: Want::default(),
            suspend: false,
            jobs: JobSuspend::default(),
            teardown: teardown_policy(phase) == TeardownPolicy::Delete && obs.any_child(),
            failure: prev_failure,
            finished_now: false,
            expired,
            requeue,
        };
    }

    let start = prev.start_time.as_ref().map(|t| t.0).unwrap_or(now);
    if let Some(f) = failure(v, prev, obs, start, now) {
        let (expired, requeue) = ttl_action(now);
        return Plan {
            phase: Phase::Failed,
            want: Want::default(),
            suspend: false,
            jobs: JobSuspend::default(),
            teardown: teardown_policy(Phase::Failed) == TeardownPolicy::Delete && obs.any_child(),
            failure: Some(f),
            finished_now: true,
            expired,
            requeue,
        };
    }
    if complete(&obs.merge_job) {
        let (expired, requeue) = ttl_action(now);
        return Plan {
            phase: Phase::Succeeded,
            want: Want::default(),
            suspend: false,
            jobs: JobSuspend::default(),
            teardown: teardown_policy(Phase::Succeeded) == TeardownPolicy::Delete && obs.any_child(),
            failure: None,
            finished_now: true,
            expired,
            requeue,
        };
    }

    let external = v.spec.inference.endpoint.is_some();
    let inference_ready = external || obs.deployment.is_some_and(|d| d.available >= 1);
    let merging = obs.merge_job.is_some() || complete(&obs.shards_job);
    let running = merging || obs.shards_job.is_some() || (complete(&obs.plan_job) && inference_ready);
    let want = Want {
        config_map: true,
        plan_job: true,
        inference: !external,
        shards_job: running,
        merge_job: merging,
    };
    let (phase, mut requeue) = match (v.spec.suspend, merging, running) {
        (true, _, _) => (Phase::Suspended, IDLE_REQUEUE),
        (false, true, _) => (Phase::Merging, WAITING_REQUEUE),
        (false, false, true) => (Phase::Running, RUNNING_REQUEUE),
        (false, false, false) => (Phase::Provisioning, WAITING_REQUEUE),
    };
    if let (Some(secs), false) = (v.spec.active_deadline_seconds, v.spec.suspend) {
        requeue =
            requeue.min(until(now, start + SignedDuration::from_secs(secs)).max(Duration::from_secs(1)));
    }
    Plan {
        phase,
        want,
        suspend: v.spec.suspend,
        jobs: JobSuspend::of(v, obs),
        teardown: false,
        failure: None,
        finished_now: false,
        expired: false,
        requeue: Some(requeue),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
