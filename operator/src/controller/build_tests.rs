//! Unit tests of the pure `build` step, from the YAML samples in config/samples.

use super::*;
use crate::controller::children::ChildSet;
use crate::controller::validate::validate;
use crate::fixtures::{sample, stored};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ResourceRequirements, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Every child wanted; Jobs suspended and the Deployment at zero with `suspend`.
fn all(suspend: bool) -> Want {
    let suspended = ChildSet::of(&[Child::PlanJob, Child::Deployment, Child::ShardsJob, Child::MergeJob]);
    Want {
        children: ChildSet::of(&Child::ALL),
        suspended: if suspend { suspended } else { ChildSet::default() },
    }
}

fn cm(c: &Objects) -> Option<ConfigMap> {
    c.get::<ConfigMap>(Child::ConfigMap).cloned()
}

fn job_of(c: &Objects, child: Child) -> Option<Job> {
    c.get::<Job>(child).cloned()
}

fn minimal() -> ValidatedJob {
    validate(&stored(sample("labeljob-minimal.yaml"), "ns")).expect("valid")
}

fn args(job: &Job) -> Vec<String> {
    let pod = job.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod");
    pod.containers[0].args.clone().expect("args")
}

#[test]
fn children_carry_owner_and_label() {
    let c = build(&minimal(), &all(false), &OperatorConfig::default()).expect("builds");
    let metas = [
        &c.get::<ConfigMap>(Child::ConfigMap).expect("cm").metadata,
        &c.get::<Job>(Child::PlanJob).expect("plan").metadata,
        &c.get::<Deployment>(Child::Deployment).expect("deployment").metadata,
        &c.get::<Service>(Child::Service).expect("service").metadata,
        &c.get::<Job>(Child::ShardsJob).expect("shards").metadata,
        &c.get::<Job>(Child::MergeJob).expect("merge").metadata,
    ];
    let names: Vec<_> = metas.iter().map(|m| m.name.clone().unwrap_or_default()).collect();
    assert_eq!(
        names,
        [
            "street-photos-job",
            "street-photos-plan",
            "street-photos-inference",
            "street-photos-inference",
            "street-photos-shards",
            "street-photos-merge"
        ]
    );
    for m in metas {
        let owner = &m.owner_references.as_ref().expect("owner")[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("LabelJob", Some(true)));
        assert_eq!(
            m.labels.as_ref().and_then(|l| l.get(crate::JOB_LABEL)).map(String::as_str),
            Some("street-photos")
        );
        assert_eq!(m.namespace.as_deref(), Some("ns"));
    }
}

#[test]
fn config_map_holds_the_labeljob_document() {
    let c = build(&minimal(), &all(false), &OperatorConfig::default()).expect("builds");
    let yaml = &cm(&c).expect("cm").data.expect("data")["job.yaml"];
    let doc = labeljob_api::parse_labeljob(yaml).expect("the worker can parse it");
    assert_eq!(doc.metadata.name.as_deref(), Some("street-photos"));
    assert_eq!(doc.spec, minimal().spec);
}

#[test]
fn label_settings_reach_the_workers_unchanged() {
    let v = validate(&stored(sample("labeljob-review-formats.yaml"), "ns")).expect("valid");
    let c = build(&v, &all(false), &OperatorConfig::default()).expect("builds");
    let yaml = &cm(&c).expect("cm").data.expect("data")["job.yaml"];
    let doc = labeljob_api::parse_labeljob(yaml).expect("the worker can parse it");
    assert_eq!(doc.spec, v.spec, "formats, review, dedup and class rules as `labeljob run` reads them");
    assert_eq!(doc.spec.output.formats.len(), 5);
    assert!(doc.spec.review.is_some() && doc.spec.postprocess.agnostic_nms);
}

#[test]
fn shards_job_is_indexed_with_retries_per_index() {
    let c = build(&minimal(), &all(false), &OperatorConfig::default()).expect("builds");
    let job = job_of(&c, Child::ShardsJob).expect("shards");
    let spec = job.spec.as_ref().expect("spec");
    assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!(
        (spec.completions, spec.parallelism, spec.backoff_limit_per_index),
        (Some(4), Some(2), Some(2))
    );
    let rules = &spec.pod_failure_policy.as_ref().expect("policy").rules;
    assert_eq!(rules[0].action, "FailIndex");
    assert_eq!(rules[0].on_exit_codes.as_ref().map(|e| e.values.clone()), Some(vec![2]));
    assert_eq!(
        args(&job),
        [
            "shard",
            "--job",
            "/etc/labeljob/job.yaml",
            "--index",
            "$(JOB_COMPLETION_INDEX)",
            "--endpoint",
            "http://street-photos-inference.ns.svc:8000"
        ]
    );
    let pod = spec.template.spec.as_ref().expect("pod");
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.service_account_name.as_deref(), Some("labeljob-worker"));
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.security_context.as_ref().and_then(|s| s.run_as_non_root), Some(true));
    let env_from = pod.containers[0].env_from.as_ref().expect("credentials");
    assert_eq!(env_from[0].secret_ref.as_ref().map(|s| s.name.as_str()), Some("photos-s3"));
}

#[test]
fn merge_fails_at_once_on_error_budget() {
    let c = build(&minimal(), &all(false), &OperatorConfig::default()).expect("builds");
    let job = job_of(&c, Child::MergeJob).expect("merge");
    assert_eq!(args(&job), ["merge", "--job", "/etc/labeljob/job.yaml"]);
    let rules = &job.spec.as_ref().and_then(|s| s.pod_failure_policy.as_ref()).expect("policy").rules;
    assert_eq!(
        (rules[0].action.as_str(), rules[0].on_exit_codes.as_ref().map(|e| e.values.clone())),
        ("FailJob", Some(vec![2, 3]))
    );
}

#[test]
fn gpu_inference_gets_resources_and_cuda() {
    let mut v = minimal();
    v.spec.inference.resources = Some(ResourceRequirements {
        limits: Some([(inference::GPU_RESOURCE.to_string(), Quantity("1".into()))].into()),
        ..ResourceRequirements::default()
    });
    v.spec.inference.node_selector = [("pool".to_string(), "gpu".to_string())].into();
    v.spec.inference.max_batch_size = Some(16);
    v.resolved = labeljob_api::resolve(&v.spec).expect("still valid");
    let c = build(&v, &all(false), &OperatorConfig::default()).expect("builds");
    let d = c.get::<Deployment>(Child::Deployment).cloned().expect("deployment");
    let spec = d.spec.expect("spec");
    let pod = spec.template.spec.expect("pod");
    let c = &pod.containers[0];
    assert_eq!(
        c.args.clone().expect("args"),
        [
            "serve",
            "--model",
            "ssd-mobilenet-v2-coco",
            "--port",
            "8000",
            "--max-batch-size",
            "16",
            "--device",
            "cuda"
        ]
    );
    let limits = c.resources.as_ref().and_then(|r| r.limits.as_ref()).expect("limits");
    assert_eq!(limits.get("nvidia.com/gpu"), Some(&Quantity("1".into())));
    assert_eq!(
        c.readiness_probe.as_ref().and_then(|p| p.http_get.as_ref()).and_then(|h| h.path.as_deref()),
        Some("/v2/health/ready")
    );
    assert_eq!(
        c.liveness_probe.as_ref().and_then(|p| p.http_get.as_ref()).and_then(|h| h.path.as_deref()),
        Some("/v2/health/live")
    );
    assert_eq!(pod.node_selector.expect("selector")["pool"], "gpu");
    assert_eq!(spec.replicas, Some(1));
}

#[test]
fn suspend_scales_to_zero_and_suspends_jobs() {
    let c = build(&minimal(), &all(true), &OperatorConfig::default()).expect("builds");
    let d = c.get::<Deployment>(Child::Deployment).cloned();
    assert_eq!(d.and_then(|d| d.spec).and_then(|s| s.replicas), Some(0));
    for job in [Child::PlanJob, Child::ShardsJob, Child::MergeJob].map(|j| job_of(&c, j)) {
        assert_eq!(job.and_then(|j| j.spec).and_then(|s| s.suspend), Some(true));
    }
}

#[test]
fn external_endpoint_is_used_by_shards() {
    let mut v = minimal();
    v.spec.inference.endpoint = Some("http://triton.ml:8000".into());
    let mut want = all(false);
    want.children[Child::Deployment] = false;
    want.children[Child::Service] = false;
    let c = build(&v, &want, &OperatorConfig::default()).expect("builds");
    assert!(c[Child::Deployment].is_none() && c[Child::Service].is_none());
    assert_eq!(
        args(&job_of(&c, Child::ShardsJob).expect("shards")).last().map(String::as_str),
        Some("http://triton.ml:8000")
    );
}

#[test]
fn default_inference_is_built_from_the_resolved_defaults() {
    let c = build(&minimal(), &all(false), &OperatorConfig::default()).expect("builds");
    let d = c.get::<Deployment>(Child::Deployment).cloned().expect("deployment");
    let spec = d.spec.expect("spec");
    assert_eq!(spec.replicas, Some(labeljob_api::resolve::DEFAULT_INFERENCE_REPLICAS));
    let args = spec.template.spec.expect("pod").containers[0].args.clone().expect("args");
    // The batching defaults are serve's own flag defaults: no flag, as before resolving.
    assert_eq!(args, ["serve", "--model", "ssd-mobilenet-v2-coco", "--port", "8000", "--device", "cpu"]);
}
