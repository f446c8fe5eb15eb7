//! Step 3 — decide (pure). From the validated spec, the previous status and what was observed,
//! decide the phase, which children should exist and which of them are suspended (the [`Want`]
//! that `build` takes), whether to tear down, and when to look again. A finished job (Succeeded/Failed) stays finished: the phase is
//! the one fact carried over from the status, since its children may already be gone. A job
//! Kueue admits has its Jobs created suspended and then left as they are (Kueue unsuspends them
//! on admission and suspends them on preemption): the operator never fights it.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use labeljob_api::v1alpha1::TeardownPolicy;
use labeljob_api::{LabelJobStatus, Phase};

use super::children::{Child, ChildSet, Kind, Objects, Want};
use super::observe::{JobState, Observed};
use super::validate::ValidatedJob;

/// Requeue period while shards run (progress is read every pass).
pub const RUNNING_REQUEUE: Duration = Duration::from_secs(10);
/// Requeue period while provisioning or merging (child watches also wake the controller).
pub const WAITING_REQUEUE: Duration = Duration::from_secs(15);
/// Requeue period otherwise.
pub const IDLE_REQUEUE: Duration = Duration::from_secs(300);

/// Which Jobs are applied suspended: without Kueue, as `spec.suspend` says; with Kueue,
/// suspended when created and as Kueue last left them afterwards (pure). The Deployment is
/// suspended (scaled to zero) with `spec.suspend`.
pub fn suspended(v: &ValidatedJob, live: &Objects) -> ChildSet {
    ChildSet::from_fn(|c| match c.kind() {
        Kind::Job if v.kueue() => {
            live.get::<Job>(c).is_none_or(|j| j.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false))
        }
        Kind::Job | Kind::Deployment => v.spec.suspend,
        Kind::ConfigMap | Kind::Service => false,
    })
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
pub struct Decision {
    /// The phase after this pass.
    pub phase: Phase,
    /// Children to apply, and which of them suspended: what `build` makes.
    pub want: Want,
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
pub fn decide(v: &ValidatedJob, prev: &LabelJobStatus, obs: &Observed, now: Timestamp) -> Decision {
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
        return Decision {
            phase,
            want: Want::default(),
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
        return Decision {
            phase: Phase::Failed,
            want: Want::default(),
            teardown: teardown_policy(Phase::Failed) == TeardownPolicy::Delete && obs.any_child(),
            failure: Some(f),
            finished_now: true,
            expired,
            requeue,
        };
    }
    if complete(&obs.merge_job) {
        let (expired, requeue) = ttl_action(now);
        return Decision {
            phase: Phase::Succeeded,
            want: Want::default(),
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
    let children = ChildSet::from_fn(|c| match c {
        Child::ConfigMap | Child::PlanJob => true,
        Child::Service | Child::Deployment => !external,
        Child::ShardsJob => running,
        Child::MergeJob => merging,
    });
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
    Decision {
        phase,
        want: Want { children, suspended: suspended(v, &obs.live) },
        teardown: false,
        failure: None,
        finished_now: false,
        expired: false,
        requeue: Some(requeue),
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
