//! Reconcile tests of the operator at cluster scale (issue 14): preemption-aware Jobs, Kueue
//! admission, GPU-seconds and cost on the status — each against the fake apiserver, asserting
//! the objects it stores.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use labeljob_api::Phase;
use labeljob_api::conditions::find;
use serde_json::json;

use super::tests::Harness;
use crate::fixtures::sample;

fn job(h: &Harness, suffix: &str) -> Job {
    serde_json::from_value(h.fake.object(&h.job(suffix))).expect("job")
}

/// Whether `job` ignores pod failures with the `DisruptionTarget` condition, which needs
/// `restartPolicy: Never`.
fn ignores_disruptions(job: &Job) -> bool {
    let spec = job.spec.as_ref().expect("spec");
    let never = spec.template.spec.as_ref().and_then(|p| p.restart_policy.as_deref()) == Some("Never");
    let rules = spec.pod_failure_policy.as_ref().map(|p| p.rules.clone()).unwrap_or_default();
    never
        && rules.iter().any(|r| {
            r.action == "Ignore"
                && r.on_exit_codes.is_none()
                && r.on_pod_conditions
                    .as_ref()
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "DisruptionTarget" && c.status == "True"))
        })
}

#[tokio::test]
async fn evicted_or_preempted_shards_are_retried_without_counting() {
    let h = Harness::minimal();
    h.to_running().await;
    let shards = job(&h, "shards");
    assert!(ignores_disruptions(&shards), "{:?}", shards.spec.and_then(|s| s.pod_failure_policy));
    let spec = job(&h, "shards").spec.expect("spec");
    assert_eq!(spec.backoff_limit_per_index, Some(2), "real failures still count");
    let rules = spec.pod_failure_policy.expect("policy").rules;
    assert_eq!(
        (rules[0].action.as_str(), rules[0].on_exit_codes.as_ref().map(|e| e.values.clone())),
        ("FailIndex", Some(vec![i32::from(labeljob_store::exit::INVALID_JOB)])),
        "a bad job file fails its index at once"
    );
    assert!(ignores_disruptions(&job(&h, "plan")));
    h.complete("shards");
    h.pass().await.expect("merging");
    assert!(ignores_disruptions(&job(&h, "merge")));
}

#[tokio::test]
async fn a_pod_failure_policy_exit_code_names_the_failure() {
    let h = Harness::minimal();
    h.to_running().await;
    h.complete("shards");
    h.pass().await.expect("merging");
    // Another code than the error budget's, in the same wording: not a budget failure.
    h.fail(
        "merge",
        "PodFailurePolicy",
        "Container merge for pod ns/x failed with exit code 2 matching FailJob rule at index 0",
    );
    h.pass().await.expect("fails");
    let c = find(&h.status().conditions, "Complete").cloned().expect("complete");
    assert_eq!((c.reason.as_str(), h.phase()), ("MergeFailed", Some(Phase::Failed)));
    assert!(c.message.contains("exit code 2"), "{}", c.message);
}

const QUEUE: &str = "kueue.x-k8s.io/queue-name";

/// Do what Kueue does to a Job: admit (`suspend: false`) or preempt (`suspend: true`) it, with
/// an update of its own (the operator does not own the field afterwards).
fn kueue_sets_suspend(h: &Harness, suffix: &str, suspend: bool) {
    let mut obj = h.fake.object(&h.job(suffix));
    obj["spec"]["suspend"] = json!(suspend);
    h.fake.insert(&h.job(suffix), obj);
}

fn suspended(h: &Harness, suffix: &str) -> bool {
    h.fake.object(&h.job(suffix))["spec"]["suspend"] == true
}

fn writes_to(h: &Harness, path: &str) -> usize {
    h.fake.requests().iter().filter(|r| r.method != "GET" && r.path == path).count()
}

#[tokio::test]
async fn kueue_admits_the_jobs_and_the_operator_never_unsuspends_them() {
    let h = Harness::new(sample("labeljob-kueue.yaml"));
    h.start().await;
    // Every child carries the queue name and the priority class; the inference pod template too.
    for path in h.children() {
        let labels = &h.fake.object(&path)["metadata"]["labels"];
        assert_eq!(labels[QUEUE], "gpu-queue", "{path}");
        assert_eq!(labels["kueue.x-k8s.io/priority-class"], "batch-low", "{path}");
    }
    let d: Deployment = serde_json::from_value(h.fake.object(&h.deployment())).expect("deployment");
    let template = d.spec.as_ref().and_then(|s| s.template.metadata.clone()).expect("template");
    assert_eq!(template.labels.as_ref().and_then(|l| l.get(QUEUE)).map(String::as_str), Some("gpu-queue"));
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(1), "Kueue gates the pods, not the replicas");
    // The plan Job waits for admission; Job pods carry no queue label (the Job is the workload).
    assert!(suspended(&h, "plan"), "created suspended for Kueue");
    let plan_pod_labels = &h.fake.object(&h.job("plan"))["spec"]["template"]["metadata"]["labels"];
    assert!(plan_pod_labels[QUEUE].is_null(), "{plan_pod_labels}");

    // Kueue admits the plan Job; the next passes leave it running.
    kueue_sets_suspend(&h, "plan", false);
    h.fake.clear_requests();
    h.pass().await.expect("pass");
    assert!(!suspended(&h, "plan"));
    assert_eq!(writes_to(&h, &h.job("plan")), 0, "the operator does not touch spec.suspend");

    h.complete("plan");
    h.inference_available(1);
    h.pass().await.expect("running");
    assert_eq!(h.phase(), Some(Phase::Running));
    assert!(suspended(&h, "shards"), "created suspended for Kueue");
    h.pass().await.expect("the pass its creation triggers");
    let c = find(&h.status().conditions, "ShardsComplete").cloned().expect("condition");
    assert_eq!(c.reason, "AwaitingAdmission");
    assert!(c.message.contains("gpu-queue"), "{}", c.message);

    // Admitted, then preempted by Kueue: each time the operator leaves the Job as Kueue set it.
    for admitted in [true, false, true] {
        kueue_sets_suspend(&h, "shards", !admitted);
        h.fake.clear_requests();
        h.pass().await.expect("pass");
        assert_eq!(suspended(&h, "shards"), !admitted);
        assert_eq!(writes_to(&h, &h.job("shards")), 0, "no fight with Kueue (admitted: {admitted})");
    }
    h.complete("shards");
    h.pass().await.expect("merging");
    assert!(suspended(&h, "merge"), "the merge Job waits for admission too");
    assert_eq!(h.fake.object(&h.job("merge"))["metadata"]["labels"][QUEUE], "gpu-queue");
    h.fake.assert_requests_allowed_by_rbac();
}

#[tokio::test]
async fn without_kueue_the_operator_owns_suspend() {
    // The contrast: a Job suspended by someone else is put back to `spec.suspend: false`.
    let h = Harness::minimal();
    h.to_running().await;
    kueue_sets_suspend(&h, "shards", true);
    h.pass().await.expect("pass");
    assert!(!suspended(&h, "shards"));
    assert!(h.fake.object(&h.job("shards"))["metadata"]["labels"][QUEUE].is_null());
}

#[tokio::test]
async fn suspend_is_refused_on_a_job_kueue_admits() {
    let mut lj = sample("labeljob-kueue.yaml");
    lj.spec.suspend = true;
    let h = Harness::new(lj);
    h.pass().await.expect("adds finalizer");
    let err = h.pass().await.expect_err("invalid");
    assert_eq!(err.category(), "InvalidSpec");
    let c = find(&h.status().conditions, "SpecValid").cloned().expect("condition");
    assert!(c.message.contains("spec.suspend") && c.message.contains("Kueue"), "{}", c.message);
    assert!(h.children().is_empty(), "nothing created");
}

#[tokio::test]
async fn gpu_seconds_and_cost_follow_the_available_inference_pods() {
    // 1 GPU per inference pod at 2.48 per GPU-hour (the Kueue sample).
    let h = Harness::new(sample("labeljob-kueue.yaml"));
    h.start().await;
    let s = h.status();
    assert_eq!(
        (s.gpu_seconds, s.gpus, s.estimated_cost),
        (Some(0.0), Some(0), Some(0.0)),
        "nothing ready yet"
    );
    kueue_sets_suspend(&h, "plan", false);
    h.complete("plan");
    h.inference_available(2);
    h.pass().await.expect("running");
    assert_eq!(h.status().gpus, Some(2), "2 pods available now");
    // 900 s later (as if: the status' gpuTime moved back), one pod left.
    backdate_gpu_time(&h, 900);
    h.inference_available(1);
    h.pass().await.expect("pass");
    let s = h.status();
    assert_eq!(s.gpus, Some(1));
    let secs = s.gpu_seconds.expect("gpuSeconds");
    assert!((1800.0..1810.0).contains(&secs), "2 GPUs × 900 s: {secs}");
    let cost = s.estimated_cost.expect("cost");
    assert!((cost - secs / 3600.0 * 2.48).abs() < 1e-3, "{cost} for {secs} GPU-s");
    // A steady pass soon after writes no status (nothing else changed, same GPUs held).
    h.fake.clear_requests();
    h.pass().await.expect("pass");
    assert!(!h.fake.requests().iter().any(|r| r.path.ends_with("/status")), "nothing new to write");
    // The job ends 100 s later: the last interval is counted, then nothing is held.
    backdate_gpu_time(&h, 100);
    kueue_sets_suspend(&h, "shards", false);
    h.complete("shards");
    h.pass().await.expect("merging");
    h.complete("merge");
    h.pass().await.expect("succeeded");
    let s = h.status();
    assert_eq!((s.phase, s.gpus), (Some(Phase::Succeeded), Some(0)));
    let end = s.gpu_seconds.expect("gpuSeconds");
    assert!(end >= secs + 100.0 && end < secs + 110.0, "1 GPU × 100 s more: {end}");
    // CPU inference: no GPU time at all.
    let cpu = Harness::minimal();
    cpu.to_running().await;
    let s = cpu.status();
    assert_eq!((s.gpu_seconds, s.gpus, s.estimated_cost, s.gpu_time), (None, None, None, None));
}

/// Move the status' `gpuTime` `secs` into the past, as if that long passed since.
fn backdate_gpu_time(h: &Harness, secs: i64) {
    let mut obj = h.fake.object(&h.lj_path());
    let t: k8s_openapi::jiff::Timestamp =
        obj["status"]["gpuTime"].as_str().expect("gpuTime").parse().expect("time");
    obj["status"]["gpuTime"] = json!((t - k8s_openapi::jiff::SignedDuration::from_secs(secs)).to_string());
    h.fake.insert(&h.lj_path(), obj);
}
