//! Unit tests of the pure `decide` step: phase and wanted children for each observation.

use super::*;
use crate::controller::observe::{DeploymentState, JobFailure};
use crate::controller::validate::validate;
use crate::fixtures::{sample, stored};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn job() -> ValidatedJob {
    validate(&stored(sample("labeljob-minimal.yaml"), "ns")).expect("valid")
}

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).expect("valid")
}

fn done() -> Option<JobState> {
    Some(JobState { complete: true, ..JobState::default() })
}

fn failed_job(reason: &str, message: &str) -> Option<JobState> {
    Some(JobState { failed: Some(JobFailure::new(reason.into(), message.into())), ..JobState::default() })
}

/// Children seen: the ConfigMap.
fn with_config_map() -> Objects {
    let mut live = Objects::default();
    live[Child::ConfigMap] = Some(ConfigMap::default().into());
    live
}

fn ready() -> Option<DeploymentState> {
    Some(DeploymentState { replicas: 1, available: 1 })
}

#[test]
fn new_job_provisions_plan_and_inference() {
    let p = decide(&job(), &LabelJobStatus::default(), &Observed::default(), now());
    assert_eq!(p.phase, Phase::Provisioning);
    let children = ChildSet::of(&[Child::ConfigMap, Child::PlanJob, Child::Service, Child::Deployment]);
    assert_eq!(p.want, Want { children, ..Want::default() });
    assert_eq!(p.requeue, Some(WAITING_REQUEUE));
}

#[test]
fn shards_wait_for_plan_and_ready_inference() {
    let v = job();
    let prev = LabelJobStatus::default();
    let planned_only =
        Observed { plan_job: done(), deployment: Some(DeploymentState::default()), ..Observed::default() };
    assert_eq!(decide(&v, &prev, &planned_only, now()).phase, Phase::Provisioning);
    let both = Observed { plan_job: done(), deployment: ready(), ..Observed::default() };
    let p = decide(&v, &prev, &both, now());
    assert_eq!(p.phase, Phase::Running);
    assert!(p.want.children.contains(Child::ShardsJob) && !p.want.children.contains(Child::MergeJob));
    assert_eq!(p.requeue, Some(RUNNING_REQUEUE));
}

#[test]
fn external_endpoint_needs_no_deployment() {
    let mut v = job();
    v.spec.inference.endpoint = Some("http://triton.ml:8000".into());
    let obs = Observed { plan_job: done(), ..Observed::default() };
    let p = decide(&v, &LabelJobStatus::default(), &obs, now());
    assert_eq!(p.phase, Phase::Running);
    assert!(!p.want.children.contains(Child::Deployment) && !p.want.children.contains(Child::Service));
}

#[test]
fn merge_then_success_then_teardown() {
    let v = job();
    let obs = Observed { plan_job: done(), deployment: ready(), shards_job: done(), ..Observed::default() };
    let p = decide(&v, &LabelJobStatus::default(), &obs, now());
    assert_eq!(p.phase, Phase::Merging);
    assert!(p.want.children.contains(Child::MergeJob));
    let obs = Observed { merge_job: done(), live: with_config_map(), ..obs };
    let p = decide(&v, &LabelJobStatus::default(), &obs, now());
    assert_eq!((p.phase, p.finished_now, p.teardown), (Phase::Succeeded, true, true));
    assert_eq!(p.want, Want::default());
    assert_eq!(p.requeue, None);
}

#[test]
fn failures_name_their_cause() {
    let v = job();
    let prev = LabelJobStatus::default();
    let obs =
        Observed { shards_job: failed_job("FailedIndexes", "Job has failed indexes"), ..Observed::default() };
    let p = decide(&v, &prev, &obs, now());
    assert_eq!(p.phase, Phase::Failed);
    assert_eq!(p.failure.map(|f| f.reason), Some("ShardsFailed"));
    let msg = "Container merge for pod ns/a-merge-x failed with exit code 3 matching FailJob rule at index 0";
    let obs = Observed { merge_job: failed_job("PodFailurePolicy", msg), ..Observed::default() };
    assert_eq!(decide(&v, &prev, &obs, now()).failure.map(|f| f.reason), Some("ErrorBudgetExceeded"));
}

#[test]
fn deadline_fails_and_retain_keeps_children() {
    let mut v = job();
    v.spec.active_deadline_seconds = Some(60);
    v.spec.teardown.on_failure = TeardownPolicy::Retain;
    let started = |secs_ago: i64| LabelJobStatus {
        start_time: Some(Time(now() - SignedDuration::from_secs(secs_ago))),
        phase: Some(Phase::Running),
        ..LabelJobStatus::default()
    };
    let obs =
        Observed { live: with_config_map(), shards_job: Some(JobState::default()), ..Observed::default() };
    let p = decide(&v, &started(30), &obs, now());
    assert_eq!(p.phase, Phase::Running);
    assert_eq!(p.requeue, Some(RUNNING_REQUEUE), "10 s is sooner than the 30 s left");
    let p = decide(&v, &started(61), &obs, now());
    assert_eq!((p.phase, p.teardown), (Phase::Failed, false));
    assert_eq!(p.failure.map(|f| f.reason), Some("DeadlineExceeded"));
}

#[test]
fn finished_stays_finished_and_expires_after_ttl() {
    let mut v = job();
    v.spec.ttl_seconds_after_finished = Some(100);
    let prev = LabelJobStatus {
        phase: Some(Phase::Succeeded),
        completion_time: Some(Time(now() - SignedDuration::from_secs(40))),
        ..LabelJobStatus::default()
    };
    let p = decide(&v, &prev, &Observed::default(), now());
    assert_eq!((p.phase, p.teardown, p.expired, p.finished_now), (Phase::Succeeded, false, false, false));
    assert_eq!(p.requeue, Some(Duration::from_secs(60)));
    let p = decide(&v, &prev, &Observed::default(), now() + SignedDuration::from_secs(61));
    assert!(p.expired);
}

#[test]
fn suspend_keeps_children_suspended() {
    let mut v = job();
    v.spec.suspend = true;
    let obs = Observed {
        plan_job: done(),
        deployment: ready(),
        shards_job: Some(JobState::default()),
        ..Observed::default()
    };
    let p = decide(&v, &LabelJobStatus::default(), &obs, now());
    assert_eq!(p.phase, Phase::Suspended);
    for c in [Child::PlanJob, Child::Deployment, Child::ShardsJob] {
        assert!(p.want.children.contains(c) && p.want.suspended.contains(c), "{c:?}");
    }
    assert!(p.want.children.contains(Child::Service));
}
