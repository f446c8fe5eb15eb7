//! Reconcile tests of the lifecycle against the fake apiserver: Provisioning → Running →
//! Merging → Succeeded with teardown, shard failures with either teardown policy, and an
//! external inference endpoint.

use kube::runtime::controller::Action;
use labeljob_api::Phase;
use labeljob_api::conditions::find;
use labeljob_api::v1alpha1::TeardownPolicy;
use serde_json::json;

use super::decide::RUNNING_REQUEUE;
use super::tests::{Harness, NS, shard};
use crate::fixtures::sample;
use crate::progress::PlanInfo;

fn gpu_job() -> labeljob_api::LabelJob {
    let mut lj = sample("labeljob-minimal.yaml");
    lj.spec.inference.resources =
        serde_json::from_value(json!({"limits": {"nvidia.com/gpu": "1"}})).expect("resources");
    lj.spec.inference.tolerations = serde_json::from_value(
        json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]),
    )
    .expect("tolerations");
    lj
}

#[tokio::test]
async fn new_job_gets_inference_with_owner_refs_and_gpu() {
    let h = Harness::new(gpu_job());
    assert_eq!(h.pass().await.expect("finalizer"), Action::await_change());
    assert_eq!(h.lj().metadata.finalizers, Some(vec!["labeljob.dev/teardown".to_string()]));
    assert!(h.children().is_empty(), "nothing before the finalizer is on");

    h.pass().await.expect("provisions");
    assert_eq!(h.children(), [h.config_map(), h.job("plan"), h.deployment(), h.service()]);
    let uid = h.lj().metadata.uid.expect("uid");
    for path in h.children() {
        let owner = &h.fake.object(&path)["metadata"]["ownerReferences"][0];
        assert_eq!(
            (owner["kind"].as_str(), owner["uid"].as_str(), owner["controller"].as_bool()),
            (Some("LabelJob"), Some(uid.as_str()), Some(true)),
            "{path}"
        );
        assert_eq!(h.fake.object(&path)["metadata"]["labels"]["labeljob.dev/job"], "street-photos");
    }
    let d = h.fake.object(&h.deployment());
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"], "1");
    assert_eq!(pod["tolerations"][0]["key"], "nvidia.com/gpu");
    assert_eq!(pod["serviceAccountName"], "labeljob-worker");
    assert_eq!(pod["automountServiceAccountToken"], false);
    let args = pod["containers"][0]["args"].as_array().expect("args");
    assert!(args.iter().any(|a| a == "cuda"), "{args:?}");
    assert_eq!(h.fake.object(&h.service())["spec"]["ports"][0]["port"], 8000);
    let cm = h.fake.object(&h.config_map());
    assert!(cm["data"]["job.yaml"].as_str().is_some_and(|y| y.contains("kind: LabelJob")));

    let s = h.status();
    assert_eq!(s.phase, Some(Phase::Provisioning));
    assert_eq!(find(&s.conditions, "SpecValid").map(|c| c.status.as_str()), Some("True"));
    assert_eq!(find(&s.conditions, "InferenceReady").map(|c| c.reason.as_str()), Some("NotCreated"));
    assert!(s.start_time.is_some());
    assert_eq!(h.fake.event_reasons(), ["Provisioning"]);
    h.pass().await.expect("observes the Deployment");
    let c = find(&h.status().conditions, "InferenceReady").cloned().expect("condition");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
        ("False", "Starting", "0/1 inference pods available")
    );
    h.fake.assert_requests_allowed_by_rbac();
}

#[tokio::test]
async fn ready_inference_starts_indexed_shards_and_progress_moves() {
    let h = Harness::minimal();
    h.start().await;
    h.complete("plan");
    h.pass().await.expect("still provisioning");
    assert_eq!(h.phase(), Some(Phase::Provisioning), "inference not ready yet");
    assert!(h.fake.get(&h.job("shards")).is_none());

    h.inference_available(1);
    *h.progress.plan.lock().expect("lock") =
        Some(PlanInfo { manifest_digest: "ab12".into(), total: 400, shards: 4, input_digest: String::new() });
    assert_eq!(h.pass().await.expect("runs"), Action::requeue(RUNNING_REQUEUE));
    let job = h.fake.object(&h.job("shards"));
    let spec = &job["spec"];
    assert_eq!((spec["completionMode"].as_str(), spec["completions"].as_i64()), (Some("Indexed"), Some(4)));
    assert_eq!((spec["parallelism"].as_i64(), spec["backoffLimitPerIndex"].as_i64()), (Some(2), Some(2)));
    assert_eq!(spec["podFailurePolicy"]["rules"][0]["action"], "FailIndex");
    let c = &spec["template"]["spec"]["containers"][0];
    assert_eq!(
        c["args"],
        json!([
            "shard",
            "--job",
            "/etc/labeljob/job.yaml",
            "--index",
            "$(JOB_COMPLETION_INDEX)",
            "--endpoint",
            format!("http://street-photos-inference.{NS}.svc:8000")
        ])
    );
    assert_eq!(c["envFrom"][0]["secretRef"]["name"], "photos-s3");
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
    let s = h.status();
    assert_eq!(s.phase, Some(Phase::Running));
    assert_eq!(s.manifest_digest.as_deref(), Some("ab12"));

    // Shards report progress: the status follows it pass by pass.
    *h.progress.shards.lock().expect("lock") =
        vec![shard(0, 100, 40, 1, false), shard(1, 100, 20, 0, false), None, None];
    h.fake.set_status(&h.job("shards"), json!({"active": 2}));
    h.backdate_progress(10);
    h.pass().await.expect("observes");
    let s = h.status();
    assert_eq!(s.progress.as_deref(), Some("60/400"));
    assert_eq!(s.images.map(|i| (i.total, i.processed, i.failed)), Some((400, 60, 1)));
    assert_eq!(s.images_per_second, Some(6.0));
    assert_eq!(s.shards.map(|c| (c.total, c.active, c.succeeded)), Some((4, 2, 0)));
    *h.progress.shards.lock().expect("lock") =
        vec![shard(0, 100, 100, 1, true), shard(1, 100, 70, 0, false), shard(2, 100, 10, 0, false), None];
    h.fake.set_status(&h.job("shards"), json!({"active": 2, "succeeded": 1, "completedIndexes": "0"}));
    h.pass().await.expect("observes");
    let s = h.status();
    assert_eq!(s.progress.as_deref(), Some("180/400"));
    assert_eq!(s.shards.map(|c| c.succeeded), Some(1));
    assert_eq!(
        find(&s.conditions, "ShardsComplete").map(|c| c.message.as_str()),
        Some("1/4 shards done, 2 running")
    );
    h.fake.assert_requests_allowed_by_rbac();
}

#[tokio::test]
async fn shards_done_merge_then_succeeded_and_torn_down() {
    let h = Harness::minimal();
    h.to_running().await;
    h.complete("shards");
    h.pass().await.expect("merging");
    assert_eq!(h.phase(), Some(Phase::Merging));
    let merge = h.fake.object(&h.job("merge"));
    assert_eq!(
        merge["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["merge", "--job", "/etc/labeljob/job.yaml"])
    );
    assert_eq!(find(&h.status().conditions, "ShardsComplete").map(|c| c.status.as_str()), Some("True"));

    h.complete("merge");
    *h.progress.report.lock().expect("lock") = Some(crate::progress::ReportImages {
        total: 4,
        labelled: 4,
        main: 1,
        review: 3,
        duplicates: 1,
        model_runs: 3,
        ..Default::default()
    });
    h.fake.clear_requests();
    h.pass().await.expect("succeeds");
    let s = h.status();
    assert_eq!(s.phase, Some(Phase::Succeeded));
    let images = s.images.expect("counts");
    assert_eq!((images.review, images.duplicates), (Some(3), Some(1)), "the REVIEW column, from report.json");
    assert_eq!(s.output.as_deref(), Some("s3://labels/street/annotations.json"));
    assert_eq!(s.completion_time.map(|t| t.0.to_string()), Some("2026-01-01T01:00:00Z".into()));
    assert_eq!(
        find(&s.conditions, "Complete").map(|c| (c.status.as_str(), c.reason.as_str())),
        Some(("True", "Succeeded"))
    );
    assert_eq!(find(&s.conditions, "Merged").map(|c| c.status.as_str()), Some("True"));
    let types: Vec<&str> = s.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, labeljob_api::conditions::ALL, "the conditions the CRD documents");
    assert!(h.children().is_empty(), "left: {:?}", h.children());
    let reqs = h.fake.requests();
    let status_at = reqs.iter().position(|r| r.path.ends_with("/status")).expect("status patched");
    let first_delete = reqs.iter().position(|r| r.method == "DELETE").expect("deleted");
    assert!(status_at < first_delete, "terminal phase recorded before teardown");
    assert!(
        reqs.iter().filter(|r| r.method == "DELETE").all(|r| r.body["propagationPolicy"] == "Background")
    );
    assert!(h.lj().metadata.deletion_timestamp.is_none(), "the LabelJob is kept");
    assert_eq!(h.fake.event_reasons(), ["Succeeded", "TornDown"]);

    // Later passes create nothing again and keep the phase.
    h.fake.clear_requests();
    h.pass().await.expect("idle");
    assert!(
        h.fake.requests().iter().all(|r| r.method == "GET" || r.path.contains("/events")),
        "{:?}",
        h.fake.requests()
    );
    assert_eq!(h.phase(), Some(Phase::Succeeded));
    assert!(h.fake.event_reasons().is_empty());
    h.fake.assert_requests_allowed_by_rbac();
}

#[tokio::test]
async fn shard_failures_fail_and_tear_down() {
    let h = Harness::minimal();
    h.to_running().await;
    h.fake.set_status(
        &h.job("shards"),
        json!({"failed": 9, "completedIndexes": "0-2", "failedIndexes": "3",
               "conditions": [{"type": "Failed", "status": "True", "reason": "FailedIndexes", "message": "Job has failed indexes"}]}),
    );
    h.pass().await.expect("fails");
    let s = h.status();
    assert_eq!(s.phase, Some(Phase::Failed));
    assert_eq!(s.shards.map(|c| (c.succeeded, c.failed)), Some((3, 1)));
    let c = find(&s.conditions, "Complete").expect("complete");
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "ShardsFailed"));
    assert!(s.completion_time.is_some());
    assert!(h.children().is_empty());
    assert!(h.fake.event_reasons().contains(&"ShardsFailed".to_string()));
}

#[tokio::test]
async fn failure_with_retain_keeps_children() {
    let mut lj = sample("labeljob-minimal.yaml");
    lj.spec.teardown.on_failure = TeardownPolicy::Retain;
    let h = Harness::new(lj);
    h.to_running().await;
    h.complete("shards");
    h.pass().await.expect("merging");
    h.fail(
        "merge",
        "PodFailurePolicy",
        "Container merge for pod ns/x failed with exit code 3 matching FailJob rule at index 0",
    );
    h.pass().await.expect("fails");
    let s = h.status();
    assert_eq!(s.phase, Some(Phase::Failed));
    assert_eq!(find(&s.conditions, "Complete").map(|c| c.reason.as_str()), Some("ErrorBudgetExceeded"));
    assert_eq!(h.children().len(), 6, "retained for inspection");
    h.fake.clear_requests();
    h.pass().await.expect("idle");
    assert!(!h.fake.requests().iter().any(|r| r.method == "DELETE" || r.method == "PATCH"));
}

#[tokio::test]
async fn external_endpoint_skips_deployment_and_service() {
    let mut lj = sample("labeljob-minimal.yaml");
    lj.spec.inference.endpoint = Some("http://triton.ml:8000".into());
    let h = Harness::new(lj);
    h.start().await;
    assert_eq!(h.children(), [h.config_map(), h.job("plan")]);
    h.complete("plan");
    h.pass().await.expect("runs");
    assert_eq!(h.phase(), Some(Phase::Running));
    let args = &h.fake.object(&h.job("shards"))["spec"]["template"]["spec"]["containers"][0]["args"];
    assert_eq!(args[6], "http://triton.ml:8000");
    assert!(h.fake.get(&h.deployment()).is_none() && h.fake.get(&h.service()).is_none());
    assert_eq!(
        find(&h.status().conditions, "InferenceReady").map(|c| c.reason.as_str()),
        Some("ExternalEndpoint")
    );
}

#[tokio::test]
async fn empty_input_fails_fast_without_shards_or_merge() {
    let h = Harness::minimal();
    h.start().await;
    h.complete("plan");
    *h.progress.plan.lock().expect("lock") =
        Some(PlanInfo { manifest_digest: "e3b0".into(), total: 0, shards: 4, input_digest: String::new() });
    h.inference_available(1);
    h.pass().await.expect("fails");
    let s = h.status();
    assert_eq!(s.phase, Some(Phase::Failed));
    let c = find(&s.conditions, "Complete").expect("complete");
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "EmptyInput"));
    assert!(c.message.contains("s3://photos/street/"), "names the input: {}", c.message);
    assert_eq!(s.progress.as_deref(), Some("0/0"));
    let created: Vec<_> =
        h.fake.requests().into_iter().filter(|r| r.method == "PATCH").map(|r| r.path).collect();
    assert!(
        !created.iter().any(|p| p.ends_with("-shards") || p.ends_with("-merge")),
        "no shards or merge Job: {created:?}"
    );
    assert!(h.children().is_empty(), "inference torn down: {:?}", h.children());
    assert_eq!(h.fake.event_reasons(), ["Provisioning", "EmptyInput", "TornDown"]);
}

#[tokio::test]
async fn progress_never_goes_back_on_a_shard_retry_and_the_rate_is_recent() {
    let h = Harness::minimal();
    *h.progress.plan.lock().expect("lock") = Some(PlanInfo {
        manifest_digest: "ab12".into(),
        total: 1200,
        shards: 4,
        input_digest: String::new(),
    });
    h.to_running().await;
    let set = |p: [u64; 2]| {
        *h.progress.shards.lock().expect("lock") =
            vec![shard(0, 300, p[0], 0, false), shard(1, 300, p[1], 0, false), None, None];
    };
    set([200, 155]);
    h.backdate_progress(10);
    h.pass().await.expect("observes");
    let s = h.status();
    assert_eq!((s.progress.as_deref(), s.images_per_second), (Some("355/1200"), Some(35.5)));
    assert_eq!(s.eta.as_deref(), Some("24s"), "845 images left at 35.5 img/s");
    assert_eq!(s.model.as_deref(), Some("ssd-mobilenet-v2-coco"));

    // Shard 1's pod dies and its retry counts from 100 again: 300 in all, but 355 were shown.
    set([200, 100]);
    h.fake.clear_requests();
    h.pass().await.expect("observes");
    assert_eq!(h.status().progress.as_deref(), Some("355/1200"), "PROGRESS does not go back");
    assert!(!h.fake.requests().iter().any(|r| r.path.ends_with("/status")), "nothing new to write");
    // 10 s later the retry passed its old count: +100 images, 10 img/s, smoothed.
    set([200, 255]);
    h.backdate_progress(10);
    h.pass().await.expect("observes");
    let s = h.status();
    assert_eq!((s.progress.as_deref(), s.images_per_second), (Some("455/1200"), Some(28.3)));

    // Shards done in 60 s: the average over the Running phase, start-up excluded; no ETA.
    *h.progress.shards.lock().expect("lock") = (0..4).map(|i| shard(i, 300, 300, 0, true)).collect();
    h.fake.set_status(
        &h.job("shards"),
        json!({"succeeded": 4, "completedIndexes": "0-3", "startTime": "2026-01-01T00:10:00Z",
               "completionTime": "2026-01-01T00:11:00Z", "conditions": [{"type": "Complete", "status": "True"}]}),
    );
    h.pass().await.expect("merging");
    let s = h.status();
    assert_eq!(s.phase, Some(Phase::Merging));
    assert_eq!((s.progress.as_deref(), s.images_per_second, s.eta), (Some("1200/1200"), Some(20.0), None));
}
