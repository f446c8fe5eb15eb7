//! Reconcile tests against the fake apiserver (`fixtures.rs`): the harness, and the edge cases
//! (invalid spec, suspend/resume, restart without duplicates, deletion mid-run, failures of
//! the apiserver, TTL). The happy-path lifecycle is in `tests_lifecycle.rs`.

use std::sync::Arc;
use std::sync::Mutex;

use async_trait::async_trait;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use labeljob_api::{LabelJob, LabelJobStatus, Phase};
use serde_json::{Value, json};

use super::{Context, OperatorConfig, error_policy, reconcile};
use crate::error::Result;
use crate::events::EventRecorder;
use crate::fixtures::{FakeApiServer, labeljob_path, sample, stored};
use crate::metrics::Metrics;
use crate::progress::{PlanInfo, ProgressError, ProgressSource, ReportImages, ShardProgress};

/// Progress the test sets, as if read from the store.
#[derive(Default)]
pub struct FakeProgress {
    pub shards: Mutex<Vec<Option<ShardProgress>>>,
    pub plan: Mutex<Option<PlanInfo>>,
    pub report: Mutex<Option<ReportImages>>,
}

#[async_trait]
impl ProgressSource for FakeProgress {
    async fn read(&self, _lj: &LabelJob) -> Result<Vec<Option<ShardProgress>>, ProgressError> {
        Ok(self.shards.lock().expect("lock").clone())
    }
    async fn plan(&self, _lj: &LabelJob) -> Result<Option<PlanInfo>, ProgressError> {
        Ok(self.plan.lock().expect("lock").clone())
    }
    async fn report(&self, _lj: &LabelJob) -> Result<Option<ReportImages>, ProgressError> {
        Ok(*self.report.lock().expect("lock"))
    }
}

pub fn shard(index: u32, total: u64, processed: u64, failed: u64, done: bool) -> Option<ShardProgress> {
    Some(ShardProgress { index, total, processed, failed, elapsed_seconds: 10.0, done })
}

pub struct Harness {
    pub fake: FakeApiServer,
    pub client: kube::Client,
    pub ctx: Arc<Context>,
    pub progress: Arc<FakeProgress>,
    pub name: String,
}

pub const NS: &str = "ns";

fn context(client: &kube::Client, progress: Arc<FakeProgress>) -> Arc<Context> {
    let recorder = EventRecorder::new(client.clone(), "labeljob-operator", None);
    let (_registry, metrics) = Metrics::new_registry();
    Arc::new(Context::new(client.clone(), recorder, Arc::new(metrics), OperatorConfig::default(), progress))
}

impl Harness {
    pub fn new(lj: LabelJob) -> Self {
        let (fake, client) = FakeApiServer::start();
        let lj = stored(lj, NS);
        let name = lj.metadata.name.clone().expect("name");
        fake.insert(&labeljob_path(NS, &name), serde_json::to_value(&lj).expect("json"));
        let progress = Arc::new(FakeProgress::default());
        let ctx = context(&client, progress.clone());
        Harness { fake, client, ctx, progress, name }
    }

    pub fn minimal() -> Self {
        Self::new(sample("labeljob-minimal.yaml"))
    }

    /// A new operator process: fresh context (no caches, no counters), same cluster.
    pub fn restart(&mut self) {
        self.ctx = context(&self.client, self.progress.clone());
    }

    pub fn lj_path(&self) -> String {
        labeljob_path(NS, &self.name)
    }

    pub fn lj(&self) -> LabelJob {
        serde_json::from_value(self.fake.object(&self.lj_path())).expect("labeljob")
    }

    pub fn status(&self) -> LabelJobStatus {
        self.lj().status.unwrap_or_default()
    }

    pub fn phase(&self) -> Option<Phase> {
        self.status().phase
    }

    /// Edit the stored LabelJob's spec (as `kubectl edit` would), bumping its generation.
    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut obj = self.fake.object(&self.lj_path());
        f(&mut obj["spec"]);
        let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
        obj["metadata"]["generation"] = json!(generation);
        self.fake.insert(&self.lj_path(), obj);
    }

    pub async fn pass(&self) -> Result<Action> {
        let lj = Arc::new(self.lj());
        tokio::time::timeout(std::time::Duration::from_secs(5), reconcile(lj, self.ctx.clone()))
            .await
            .expect("reconcile finished in time")
    }

    /// Passes until the finalizer is on and the first real pass ran.
    pub async fn start(&self) {
        assert_eq!(self.pass().await.expect("adds finalizer"), Action::await_change());
        self.pass().await.expect("first pass");
    }

    pub fn job(&self, suffix: &str) -> String {
        format!("/apis/batch/v1/namespaces/{NS}/jobs/{}-{suffix}", self.name)
    }
    pub fn deployment(&self) -> String {
        format!("/apis/apps/v1/namespaces/{NS}/deployments/{}-inference", self.name)
    }
    pub fn service(&self) -> String {
        format!("/api/v1/namespaces/{NS}/services/{}-inference", self.name)
    }
    pub fn config_map(&self) -> String {
        format!("/api/v1/namespaces/{NS}/configmaps/{}-job", self.name)
    }
    pub fn children(&self) -> Vec<String> {
        [
            self.config_map(),
            self.job("plan"),
            self.deployment(),
            self.service(),
            self.job("shards"),
            self.job("merge"),
        ]
        .into_iter()
        .filter(|p| self.fake.get(p).is_some())
        .collect()
    }

    pub fn complete(&self, suffix: &str) {
        self.fake.set_status(
            &self.job(suffix),
            json!({"succeeded": 1, "completionTime": "2026-01-01T01:00:00Z",
                   "conditions": [{"type": "Complete", "status": "True"}]}),
        );
    }
    pub fn fail(&self, suffix: &str, reason: &str, message: &str) {
        self.fake.set_status(
            &self.job(suffix),
            json!({"failed": 3, "conditions": [{"type": "Failed", "status": "True", "reason": reason, "message": message}]}),
        );
    }
    pub fn inference_available(&self, n: i32) {
        self.fake.set_status(
            &self.deployment(),
            json!({"replicas": n, "availableReplicas": n, "readyReplicas": n}),
        );
    }

    /// Move the status' `progressTime` `secs` into the past, as if that long passed since.
    pub fn backdate_progress(&self, secs: i64) {
        let mut obj = self.fake.object(&self.lj_path());
        let t: Timestamp =
            obj["status"]["progressTime"].as_str().expect("progressTime").parse().expect("time");
        obj["status"]["progressTime"] =
            json!((t - k8s_openapi::jiff::SignedDuration::from_secs(secs)).to_string());
        self.fake.insert(&self.lj_path(), obj);
    }

    /// Drive a new job to Running (plan done, inference ready, shards Job created).
    pub async fn to_running(&self) {
        self.start().await;
        self.complete("plan");
        self.inference_available(1);
        self.pass().await.expect("running pass");
        assert_eq!(self.phase(), Some(Phase::Running));
    }
}

#[tokio::test]
async fn invalid_spec_sets_spec_valid_false_and_creates_nothing() {
    let h = Harness::new(sample("invalid-parallelism.yaml"));
    h.pass().await.expect("adds finalizer");
    let err = h.pass().await.expect_err("invalid");
    assert_eq!(err.category(), "InvalidSpec");
    assert_eq!(error_policy(Arc::new(h.lj()), &err, h.ctx.clone()), Action::await_change(), "no hot loop");
    let s = h.status();
    let c = labeljob_api::conditions::find(&s.conditions, "SpecValid").expect("condition");
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "InvalidSpec"));
    assert!(c.message.contains("workers.parallelism"), "{}", c.message);
    assert_eq!(s.phase, Some(Phase::Pending));
    assert!(h.children().is_empty(), "nothing created: {:?}", h.children());
    assert_eq!(h.fake.event_reasons(), ["InvalidSpec"]);

    // Another pass (e.g. a resync) writes no new status: nothing changes, nothing loops.
    h.fake.clear_requests();
    h.pass().await.expect_err("still invalid");
    assert!(
        !h.fake.requests().iter().any(|r| r.path.ends_with("/status")),
        "status unchanged, not re-patched"
    );

    // Fixing the spec recovers.
    h.edit(|spec| spec["workers"]["parallelism"] = json!(1));
    h.pass().await.expect("valid now");
    assert_eq!(h.phase(), Some(Phase::Provisioning));
    let s = h.status();
    assert_eq!(
        labeljob_api::conditions::find(&s.conditions, "SpecValid").map(|c| c.status.as_str()),
        Some("True")
    );
    assert_eq!(s.observed_generation, Some(2));
    h.fake.assert_requests_allowed_by_rbac();
}

#[tokio::test]
async fn a_253_character_name_still_gets_its_invalid_spec_event() {
    // The longest name the apiserver allows: cut at the Event name's limit it would end in `-`.
    let name: String = "job-".repeat(64).chars().take(253).collect();
    let mut lj = sample("labeljob-minimal.yaml");
    lj.metadata.name = Some(name.clone());
    let h = Harness::new(lj);
    h.pass().await.expect("adds finalizer");
    let err = h.pass().await.expect_err("invalid");
    assert_eq!(err.category(), "InvalidSpec");
    let events = h.fake.events(NS);
    assert_eq!(events.len(), 1, "the apiserver accepted the Event: {:?}", h.fake.requests().last());
    let e = &events[0];
    assert_eq!((e["reason"].as_str(), e["type"].as_str()), (Some("InvalidSpec"), Some("Warning")));
    assert_eq!(e["regarding"]["name"].as_str(), Some(name.as_str()), "regarding names the LabelJob in full");
    let event_name = e["metadata"]["name"].as_str().expect("name");
    assert!(event_name.len() <= 253 && super::validate::is_dns_subdomain(event_name), "{event_name}");
    assert!(e["note"].as_str().is_some_and(|n| n.contains("at most 53 fit")), "{}", e["note"]);

    // The same failure again is counted on that Event, not published anew.
    h.pass().await.expect_err("still invalid");
    let events = h.fake.events(NS);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["series"]["count"], 2);
    h.fake.assert_requests_allowed_by_rbac();
}

#[tokio::test]
async fn suspend_scales_down_and_resume_scales_back() {
    let h = Harness::minimal();
    h.to_running().await;
    h.edit(|spec| spec["suspend"] = json!(true));
    h.pass().await.expect("suspends");
    assert_eq!(h.phase(), Some(Phase::Suspended));
    assert_eq!(h.fake.object(&h.job("shards"))["spec"]["suspend"], true);
    assert_eq!(h.fake.object(&h.job("plan"))["spec"]["suspend"], true);
    assert_eq!(h.fake.object(&h.deployment())["spec"]["replicas"], 0);
    let s = h.status();
    assert_eq!(
        labeljob_api::conditions::find(&s.conditions, "Suspended").map(|c| c.status.as_str()),
        Some("True")
    );

    h.edit(|spec| spec["suspend"] = json!(false));
    h.pass().await.expect("resumes");
    assert_eq!(h.phase(), Some(Phase::Running));
    assert_eq!(h.fake.object(&h.job("shards"))["spec"]["suspend"], false);
    assert_eq!(h.fake.object(&h.deployment())["spec"]["replicas"], 1);
    assert_eq!(h.fake.event_reasons(), ["Provisioning", "Running", "Suspended", "Running"]);
    h.fake.assert_requests_allowed_by_rbac();
}

#[tokio::test]
async fn restart_mid_running_creates_no_duplicates_and_writes_only_what_differs() {
    let mut h = Harness::minimal();
    h.to_running().await;
    let objects_before = h.fake.paths("/api");
    let child_patches = |h: &Harness| -> Vec<crate::fixtures::Recorded> {
        h.fake
            .requests()
            .into_iter()
            .filter(|r| r.method == "PATCH" && !r.path.contains("labeljobs"))
            .collect()
    };

    h.restart();
    h.fake.clear_requests();
    h.pass().await.expect("pass after restart");
    let after = h.fake.requests();
    assert!(!after.iter().any(|r| r.method == "POST"), "no create: {after:?}");
    assert!(!after.iter().any(|r| r.method == "DELETE"), "no delete");
    assert!(child_patches(&h).is_empty(), "every child is as wanted: nothing applied");
    assert_eq!(h.fake.paths("/api"), objects_before, "same objects, no duplicates");
    assert_eq!(h.phase(), Some(Phase::Running));

    // Someone scales the inference Deployment by hand: the next pass puts back just that.
    let mut d = h.fake.object(&h.deployment());
    d["spec"]["replicas"] = json!(3);
    h.fake.insert(&h.deployment(), d);
    h.fake.clear_requests();
    h.pass().await.expect("pass");
    let patches = child_patches(&h);
    assert_eq!(patches.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), [h.deployment()]);
    let b = &patches[0];
    assert!(b.content_type.starts_with("application/apply-patch"));
    assert!(
        b.query.contains("fieldManager=labeljob-operator") && b.query.contains("force=true"),
        "{}",
        b.query
    );
    assert_eq!(h.fake.object(&h.deployment())["spec"]["replicas"], 1);
}

#[tokio::test]
async fn deletion_mid_run_deletes_children_and_removes_finalizer() {
    let h = Harness::minimal();
    h.to_running().await;
    assert_eq!(h.children().len(), 5);
    // `kubectl delete`: the finalizer holds the object with a deletionTimestamp.
    let api: kube::Api<LabelJob> = kube::Api::namespaced(h.client.clone(), NS);
    api.delete(&h.name, &Default::default()).await.expect("delete accepted");
    assert!(h.lj().metadata.deletion_timestamp.is_some());
    h.fake.clear_requests();
    h.pass().await.expect("cleanup");
    assert!(h.children().is_empty(), "left: {:?}", h.children());
    assert!(h.fake.get(&h.lj_path()).is_none(), "finalizer removed, LabelJob gone");
    let deletes: Vec<_> = h.fake.requests().into_iter().filter(|r| r.method == "DELETE").collect();
    assert_eq!(deletes.len(), 5, "the five that existed (no merge Job yet): {deletes:?}");
    assert!(deletes.iter().all(|r| r.body["propagationPolicy"] == "Background"), "{deletes:?}");
    h.fake.assert_requests_allowed_by_rbac();
}

#[tokio::test]
async fn apiserver_failure_is_categorised_evented_and_backed_off() {
    let h = Harness::minimal();
    h.pass().await.expect("adds finalizer");
    h.fake.fail("PATCH", &h.deployment(), 500);
    let err = h.pass().await.expect_err("apply fails");
    assert_eq!(err.category(), "ApplyFailed");
    assert!(err.note().contains("street-photos-inference"), "{}", err.note());
    assert_eq!(h.fake.event_reasons(), ["ApplyFailed"]);
    let lj = Arc::new(h.lj());
    for _ in 0..3 {
        error_policy(lj.clone(), &err, h.ctx.clone());
    }
    let failures = h.ctx.failures.lock().expect("lock").values().copied().collect::<Vec<_>>();
    assert_eq!(failures, [3], "each error counts towards the next delay");
    let secs = std::time::Duration::from_secs;
    let curve: Vec<_> = (1..=4).map(|n| super::ERROR_BACKOFF.delay(n)).collect();
    assert_eq!(curve, [secs(5), secs(10), secs(20), secs(40)]);
    assert_eq!(super::ERROR_BACKOFF.delay(30), secs(300));
    for n in 1..=30 {
        let (d, full) = (super::backoff(n), super::ERROR_BACKOFF.delay(n));
        assert!(d >= full / 2 && d <= full, "jittered delay {d:?} within [{:?}, {full:?}]", full / 2);
    }
}

#[tokio::test]
async fn ttl_deletes_the_finished_labeljob() {
    let mut lj = sample("labeljob-minimal.yaml");
    lj.spec.ttl_seconds_after_finished = Some(0);
    let h = Harness::new(lj);
    h.to_running().await;
    h.complete("shards");
    h.pass().await.expect("merging");
    h.complete("merge");
    h.pass().await.expect("succeeds, tears down and expires");
    let lj = h.lj();
    assert!(lj.metadata.deletion_timestamp.is_some(), "deleted after ttl 0");
    assert_eq!(lj.status.and_then(|s| s.phase), Some(Phase::Succeeded));
    h.pass().await.expect("finalizer cleanup");
    assert!(h.fake.get(&h.lj_path()).is_none());
    h.fake.assert_requests_allowed_by_rbac();
}

#[tokio::test]
async fn deadline_fails_the_job() {
    let mut lj = sample("labeljob-minimal.yaml");
    lj.spec.active_deadline_seconds = Some(60);
    let h = Harness::new(lj);
    h.to_running().await;
    let mut obj = h.fake.object(&h.lj_path());
    let started = Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(120);
    obj["status"]["startTime"] = json!(started.to_string());
    h.fake.insert(&h.lj_path(), obj);
    h.pass().await.expect("fails");
    let s = h.status();
    assert_eq!(s.phase, Some(Phase::Failed));
    let c = labeljob_api::conditions::find(&s.conditions, "Complete").expect("complete");
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "DeadlineExceeded"));
    assert!(h.children().is_empty());
    assert!(h.fake.event_reasons().contains(&"DeadlineExceeded".to_string()));
}
