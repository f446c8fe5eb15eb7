//! The three worker Jobs: `NAME-plan` (`labeljob plan`), the Indexed `NAME-shards` (one
//! `labeljob shard --index $(JOB_COMPLETION_INDEX)` pod per shard, retried per index) and
//! `NAME-merge` (`labeljob merge`). The worker's exit codes ([`labeljob_store::exit`]) drive
//! each Job's `podFailurePolicy`: `INVALID_JOB` (bad job file) is never retried, the merge's
//! `ERROR_BUDGET` fails the Job at once, and a pod with the `DisruptionTarget` condition
//! (eviction, spot preemption, node drain, Kueue preemption) is retried without counting toward
//! `backoffLimit` / `backoffLimitPerIndex` — a retried shard resumes from its partial results.
//! Kubernetes accepts a `podFailurePolicy` only with `restartPolicy: Never`, which every worker
//! pod has.

use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use labeljob_store::exit;

use super::{
    JOB_FILE, OperatorConfig, container, credentials_env, inference_endpoint, labels, meta, pod_spec,
};
use crate::controller::children::Child;
use crate::controller::validate::ValidatedJob;

/// The restart policy of every worker pod (the only one `podFailurePolicy` allows).
pub const RESTART_POLICY: &str = "Never";

/// Fail on the exit `codes` of the container of `child`.
fn on_exit(child: Child, action: &str, codes: &[u8]) -> PodFailurePolicyRule {
    PodFailurePolicyRule {
        action: action.into(),
        on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
            container_name: Some(child.component().into()),
            operator: "In".into(),
            values: codes.iter().copied().map(exit::k8s).collect(),
        }),
        on_pod_conditions: None,
    }
}

/// Pods failed by a disruption (the `DisruptionTarget` condition: eviction, preemption, node
/// shutdown) are retried without counting as a failure.
pub fn ignore_disruptions() -> PodFailurePolicyRule {
    PodFailurePolicyRule {
        action: "Ignore".into(),
        on_exit_codes: None,
        on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
            type_: "DisruptionTarget".into(),
            status: "True".into(),
        }]),
    }
}

fn worker_job(v: &ValidatedJob, cfg: &OperatorConfig, child: Child, args: Vec<String>, spec: JobSpec) -> Job {
    let mut c = container(child.component(), cfg, args, true);
    c.env_from = credentials_env(v);
    c.resources = v.spec.workers.resources.clone();
    if child == Child::ShardsJob {
        c.env = Some(vec![EnvVar {
            name: "JOB_COMPLETION_INDEX".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "metadata.annotations['batch.kubernetes.io/job-completion-index']".into(),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        }]);
    }
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta { labels: Some(labels(v, child)), ..ObjectMeta::default() }),
        spec: Some(pod_spec(v, cfg, c, RESTART_POLICY)),
    };
    Job { metadata: meta(v, child), spec: Some(JobSpec { template, ..spec }), ..Job::default() }
}

fn job_args(sub: &str) -> Vec<String> {
    vec![sub.into(), "--job".into(), JOB_FILE.into()]
}

/// Job `NAME-plan`: lists the input once and freezes the manifest.
pub fn plan_job(v: &ValidatedJob, cfg: &OperatorConfig, suspend: bool) -> Job {
    let spec = JobSpec {
        backoff_limit: Some(3),
        suspend: Some(suspend),
        pod_failure_policy: Some(PodFailurePolicy {
            rules: vec![on_exit(Child::PlanJob, "FailJob", &[exit::INVALID_JOB]), ignore_disruptions()],
        }),
        ..JobSpec::default()
    };
    worker_job(v, cfg, Child::PlanJob, job_args("plan"), spec)
}

/// Job `NAME-shards`: Indexed, one completion per shard.
pub fn shards_job(v: &ValidatedJob, cfg: &OperatorConfig, suspend: bool) -> Job {
    let w = &v.spec.workers;
    let shards = i32::try_from(w.shards).unwrap_or(i32::MAX);
    let mut args = job_args("shard");
    args.extend(["--index".into(), "$(JOB_COMPLETION_INDEX)".into()]);
    args.extend(["--endpoint".into(), inference_endpoint(v)]);
    let spec = JobSpec {
        completion_mode: Some("Indexed".into()),
        completions: Some(shards),
        parallelism: Some(w.parallelism.map_or(shards, |p| i32::try_from(p).unwrap_or(shards))),
        backoff_limit_per_index: Some(i32::try_from(w.backoff_limit_per_index).unwrap_or(0)),
        suspend: Some(suspend),
        pod_failure_policy: Some(PodFailurePolicy {
            rules: vec![on_exit(Child::ShardsJob, "FailIndex", &[exit::INVALID_JOB]), ignore_disruptions()],
        }),
        ..JobSpec::default()
    };
    worker_job(v, cfg, Child::ShardsJob, args, spec)
}

/// Job `NAME-merge`: streams the shards into one COCO file.
pub fn merge_job(v: &ValidatedJob, cfg: &OperatorConfig, suspend: bool) -> Job {
    let spec = JobSpec {
        backoff_limit: Some(2),
        suspend: Some(suspend),
        pod_failure_policy: Some(PodFailurePolicy {
            rules: vec![
                on_exit(Child::MergeJob, "FailJob", &[exit::INVALID_JOB, exit::ERROR_BUDGET]),
                ignore_disruptions(),
            ],
        }),
        ..JobSpec::default()
    };
    worker_job(v, cfg, Child::MergeJob, job_args("merge"), spec)
}
