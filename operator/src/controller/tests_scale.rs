//! Reconcile tests of the operator at cluster scale (issue 14): preemption-aware Jobs, Kueue
//! admission, GPU-seconds and cost on the status — each against the fake apiserver, asserting
//! the objects it stores.

use k8s_openapi::api::batch::v1::Job;
use labeljob_api::Phase;
use labeljob_api::conditions::find;

use super::tests::Harness;

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
                && r.on_pod_conditions.as_ref().is_some_and(|c| {
                    c.iter().any(|c| c.type_ == "DisruptionTarget" && c.status == "True")
                })
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
