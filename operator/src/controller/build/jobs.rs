//! The three worker Jobs: `NAME-plan` (`labeljob plan`), the Indexed `NAME-shards` (one
//! `labeljob shard --index $(JOB_COMPLETION_INDEX)` pod per shard, retried per index) and
//! `NAME-merge` (`labeljob merge`). Exit code 2 (bad job file) is never retried; the merge's
//! exit code 3 (error budget exceeded) fails the Job at once; evictions do not count.

use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{
    Child, JOB_FILE, OperatorConfig, container, credentials_env, inference_endpoint, labels, meta, pod_spec,
};
use crate::controller::validate::ValidatedJob;

/// Exit code of the worker for an unusable job file: retrying cannot help.
pub const EXIT_BAD_CONFIG: i32 = 2;
/// Exit code of `labeljob merge` when the error budget is exceeded.
pub const EXIT_ERROR_BUDGET: i32 = 3;

fn on_exit(container: &str, action: &str, codes: Vec<i32>) -> PodFailurePolicyRule {
    PodFailurePolicyRule {
        action: action.into(),
        on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
            container_name: Some(container.into()),
            operator: "In".into(),
            values: codes,
        }),
        on_pod_conditions: None,
    }
}

fn ignore_disruptions() -> PodFailurePolicyRule {
    PodFailurePolicyRule {
        action: "Ignore".into(),
        on_exit_codes: None,
        on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
            type_: "DisruptionTarget".into(),
            status: "True".into(),
        }]),
    }
}

fn worker_job(
    v: &ValidatedJob,
    cfg: &OperatorConfig,
    child: Child,
    component: &str,
    args: Vec<String>,
    spec: JobSpec,
) -> Job {
    let mut c = container(component, cfg, args, true);
    c.env_from = credentials_env(v);
    c.resources = v.spec.workers.resources.clone();
    if component == "shard" {
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
        metadata: Some(ObjectMeta { labels: Some(labels(v, component)), ..ObjectMeta::default() }),
        spec: Some(pod_spec(v, cfg, c, "Never")),
    };
    Job { metadata: meta(v, child, component), spec: Some(JobSpec { template, ..spec }), ..Job::default() }
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
            rules: vec![on_exit("plan", "FailJob", vec![EXIT_BAD_CONFIG]), ignore_disruptions()],
        }),
        ..JobSpec::default()
    };
    worker_job(v, cfg, Child::PlanJob, "plan", job_args("plan"), spec)
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
            rules: vec![on_exit("shard", "FailIndex", vec![EXIT_BAD_CONFIG]), ignore_disruptions()],
        }),
        ..JobSpec::default()
    };
    worker_job(v, cfg, Child::ShardsJob, "shard", args, spec)
}

/// Job `NAME-merge`: streams the shards into one COCO file.
pub fn merge_job(v: &ValidatedJob, cfg: &OperatorConfig, suspend: bool) -> Job {
    let spec = JobSpec {
        backoff_limit: Some(2),
        suspend: Some(suspend),
        pod_failure_policy: Some(PodFailurePolicy {
            rules: vec![
                on_exit("merge", "FailJob", vec![EXIT_BAD_CONFIG, EXIT_ERROR_BUDGET]),
                ignore_disruptions(),
            ],
        }),
        ..JobSpec::default()
    };
    worker_job(v, cfg, Child::MergeJob, "merge", job_args("merge"), spec)
}
