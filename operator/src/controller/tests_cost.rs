//! What a LabelJob costs the apiserver. The kube-runtime `Controller`, wired as the operator
//! runs it (`runtime::controller`: watch caches, trigger filter), runs against the fake
//! apiserver while a stand-in for the Job and Deployment controllers moves the children along
//! (pods start, the plan and the shards finish, the store gets `plan.json` and the progress
//! files), and the test counts reconcile passes and apiserver requests over a 2-image job's
//! whole life, the credentials Secret read through the real `StoreProgress` included, and checks
//! that the operator's own metrics (`rest_client_requests_total`, `controller_runtime_reconcile_total`)
//! saw the same. Now: 15 passes, 38 requests (28 besides the start-up LIST+WATCH); with the wiring before the watch
//! caches (a GET of every child and an apply of every wanted child each pass, status writes
//! echoing back as passes): 17 passes, 187 requests.
//!
//! Time is tokio's paused clock: it moves only when every task waits, straight to the next
//! timer. The stand-in's durations (the plan takes 5 s, inference 30 s to become available, the
//! shards 20 s, the merge 5 s) are the scenario's timeline, so the operator's requeues within
//! them happen — and are counted — as they would on a cluster, without the test waiting.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use labeljob_api::{LabelJob, Phase};
use serde_json::{Value, json};

use super::tests::NS;
use super::{Context, OperatorConfig};
use crate::events::EventRecorder;
use crate::fixtures::{FakeApiServer, labeljob_path, sample, stored};
use crate::metrics::Metrics;

/// The targets of issue 14 for a 2-image job.
const MAX_PASSES: u64 = 15;
const MAX_REQUESTS: usize = 60;

fn job_status(fake: &FakeApiServer, path: &str, status: Value) -> bool {
    if fake.get(path).is_none() {
        return false;
    }
    fake.set_status(path, status);
    true
}

/// Play the Job or Deployment controller for the child at `path`.
async fn play(fake: Arc<FakeApiServer>, path: String, out: std::path::PathBuf) {
    let started = "2026-01-01T00:00:00Z";
    if path.contains("/deployments/") {
        job_status(&fake, &path, json!({"replicas": 1, "availableReplicas": 0}));
        tokio::time::sleep(Duration::from_secs(30)).await;
        job_status(&fake, &path, json!({"replicas": 1, "availableReplicas": 1, "readyReplicas": 1}));
        return;
    }
    if fake.get(&path).is_some_and(|j| j["spec"]["suspend"] == true) {
        return;
    }
    job_status(&fake, &path, json!({"active": 1, "startTime": started}));
    let (secs, done) = match path.rsplit('-').next() {
        Some("plan") => (5, json!({"succeeded": 1})),
        Some("shards") => (20, json!({"succeeded": 2, "completedIndexes": "0-1"})),
        _ => (5, json!({"succeeded": 1})),
    };
    tokio::time::sleep(Duration::from_secs(secs)).await;
    if path.ends_with("-plan") {
        std::fs::write(
            out.join("plan.json"),
            r#"{"manifestDigest":"ab","total":2,"shards":2,"inputDigest":"cd"}"#,
        )
        .expect("plan.json");
    }
    if path.ends_with("-shards") {
        std::fs::create_dir_all(out.join("progress")).expect("mkdir");
        for i in 0..2 {
            let p = json!({"index": i, "total": 1, "processed": 1, "failed": 0, "elapsedSeconds": 1.0, "done": true});
            std::fs::write(out.join(format!("progress/shard-{i:05}.json")), p.to_string()).expect("progress");
        }
    }
    let mut status = done;
    status["startTime"] = json!(started);
    status["completionTime"] = json!("2026-01-01T00:01:00Z");
    status["conditions"] = json!([{"type": "Complete", "status": "True"}]);
    job_status(&fake, &path, status);
}

#[tokio::test(start_paused = true)]
async fn a_two_image_job_costs_few_passes_and_requests() {
    let (registry, metrics) = Metrics::new_registry();
    let metrics = Arc::new(metrics);
    let (fake, client) = FakeApiServer::start_counted(metrics.rest.clone());
    let fake = Arc::new(fake);
    let out = std::env::temp_dir().join(format!("labeljob-op-cost-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("mkdir");
    let mut lj = sample("labeljob-minimal.yaml");
    lj.spec.output.uri = format!("file://{}", out.display());
    lj.spec.workers.shards = 2;
    let lj = stored(lj, NS);
    let name = lj.metadata.name.clone().expect("name");
    let lj_path = labeljob_path(NS, &name);
    fake.insert(&lj_path, serde_json::to_value(&lj).expect("json"));
    let secret = lj.spec.input.credentials.as_ref().expect("credentials").secret_name.clone();
    fake.insert(
        &format!("/api/v1/namespaces/{NS}/secrets/{secret}"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret}, "stringData": {"AWS_REGION": "eu-west-1"}}),
    );

    let c = client.clone();
    let m = metrics.clone();
    let make = move |stores| {
        let recorder = EventRecorder::new(c.clone(), "labeljob-operator", None);
        let progress = crate::progress::store_source(c.clone());
        Context::new(c, recorder, m, OperatorConfig::default(), progress).with_stores(stores)
    };
    let (ctx, results) = crate::runtime::controller(&client, Some(NS), make, false);
    let controller = tokio::spawn(results.for_each(|_| async {}));

    let mut changes = fake.changes();
    let mut seen = HashSet::new();
    let lifecycle = async {
        loop {
            let children: Vec<String> = [
                format!("/apis/batch/v1/namespaces/{NS}/jobs/"),
                format!("/apis/apps/v1/namespaces/{NS}/deployments/"),
            ]
            .iter()
            .flat_map(|prefix| fake.paths(prefix))
            .collect();
            for path in &children {
                if seen.insert(path.clone()) {
                    tokio::spawn(play(fake.clone(), path.clone(), out.clone()));
                }
            }
            let lj: LabelJob = serde_json::from_value(fake.object(&lj_path)).expect("labeljob");
            let phase = lj.status.and_then(|s| s.phase);
            if phase == Some(Phase::Succeeded)
                && fake.paths(&format!("/apis/batch/v1/namespaces/{NS}/")).is_empty()
            {
                return;
            }
            changes.changed().await.expect("fake alive");
        }
    };
    tokio::time::timeout(Duration::from_secs(3600), lifecycle)
        .await
        .expect("the job succeeded and was torn down");
    let (passes, counts) = (ctx.passes(), fake.count());
    // Ten idle minutes after: what the deletions and requeues still cost.
    tokio::time::sleep(Duration::from_secs(600)).await;
    controller.abort();

    let total = |c: &BTreeMap<String, usize>| c.values().sum::<usize>();
    let requests = total(&counts);
    let per_job = counts.iter().filter(|(k, _)| !k.starts_with("LIST ") && !k.starts_with("WATCH "));
    println!(
        "2-image LabelJob, creation to teardown: {passes} reconcile passes, {requests} apiserver requests \
         ({} besides the start-up LIST+WATCH of the 5 watched kinds)",
        per_job.map(|(_, n)| n).sum::<usize>()
    );
    for (k, n) in &counts {
        println!("  {n:4}  {k}");
    }
    let later = fake.count();
    let idle: Vec<_> =
        later.iter().filter(|(k, n)| counts.get(*k) != Some(n) && !k.starts_with("WATCH ")).collect();
    println!(
        "then 10 idle minutes: {} passes, {} requests (watches renewed: {})",
        ctx.passes() - passes,
        total(&later) - requests,
        later.iter().filter(|(k, _)| k.starts_with("WATCH ")).map(|(_, n)| n).sum::<usize>()
            - counts.iter().filter(|(k, _)| k.starts_with("WATCH ")).map(|(_, n)| n).sum::<usize>()
    );
    assert!(idle.is_empty(), "an idle finished job costs nothing but watch renewals: {idle:?}");
    let lj: LabelJob = serde_json::from_value(fake.object(&lj_path)).expect("labeljob");
    let s = lj.status.expect("status");
    assert_eq!((s.phase, s.progress.as_deref()), (Some(Phase::Succeeded), Some("2/2")));
    assert!(
        fake.paths("/apis/apps/").is_empty() && fake.paths("/api/v1/namespaces/ns/configmaps").is_empty(),
        "torn down"
    );
    assert!(ctx.passes() <= MAX_PASSES, "{} passes", ctx.passes());
    // The operator's metrics saw the same: every request by verb and code, every pass by result.
    let text = crate::metrics::encode(&registry).expect("metrics");
    let sum = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(sum("rest_client_requests_total{") as usize, total(&later), "{text}");
    assert_eq!(
        metrics.rest.get("patch", "200"),
        later.iter().filter(|(k, _)| k.starts_with("PATCH ")).map(|(_, n)| *n as u64).sum::<u64>()
    );
    assert_eq!(sum("controller_runtime_reconcile_total{") as u64, ctx.passes(), "{text}");
    assert_eq!(sum("controller_runtime_reconcile_errors_total{"), 0.0);
    assert!(text.contains("workqueue_depth{name=\"labeljob\"} 0"), "nothing waits: {text}");
    println!(
        "metrics: rest_client_requests_total {} (patch/200: {}), controller_runtime_reconcile_total {}",
        sum("rest_client_requests_total{"),
        metrics.rest.get("patch", "200"),
        sum("controller_runtime_reconcile_total{")
    );
    assert!(requests <= MAX_REQUESTS, "{requests} requests: {counts:?}");
    fake.assert_requests_allowed_by_rbac();
    std::fs::remove_dir_all(&out).expect("cleanup");
}
