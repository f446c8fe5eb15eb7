//! The reconcile loop for `LabelJob`. [`reconcile`] wraps the pipeline in `finalizer()`:
//! validate (pure) → observe (children, progress) → decide (pure: phase and wanted children) →
//! build (pure) → apply (SSA, owner references) → status (SSA of the status subresource) →
//! teardown (in `apply`) and TTL. The children are one table (`children.rs`) that observe,
//! build, apply and teardown iterate. Errors carry a category that becomes a Warning Event
//! reason and a metric label; [`error_policy`] waits for a change on invalid specs and backs
//! off otherwise.

pub mod apply;
pub mod build;
pub mod children;
pub mod decide;
pub mod gpu;
pub mod observe;
pub mod status;
pub mod throughput;
pub mod validate;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cost;
#[cfg(test)]
mod tests_lifecycle;
#[cfg(test)]
mod tests_scale;
#[cfg(test)]
mod tests_stores;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::api::DeleteParams;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, Client, Resource, ResourceExt};
use labeljob_api::{LabelJob, Phase};
use labeljob_store::Backoff;

pub use build::OperatorConfig;
pub use observe::ChildStores;

/// How long a pass waits for the watch caches' first listing before it gives up (and retries).
pub const CACHE_SYNC_TIMEOUT: Duration = Duration::from_secs(30);

use crate::FINALIZER;
use crate::error::{Error, Result};
use crate::events::EventRecorder;
use crate::metrics::{Metrics, Outcome};
use crate::progress::ProgressSource;

/// Shared state of the reconcilers.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Publishes Events about LabelJobs.
    pub recorder: EventRecorder,
    /// Controller metrics.
    pub metrics: Arc<Metrics>,
    /// Operator settings that shape the children.
    pub config: OperatorConfig,
    /// Reads shard progress from the output store.
    pub progress: Arc<dyn ProgressSource>,
    /// The watch caches of the children (None: read them by GET).
    pub stores: Option<ChildStores>,
    /// Consecutive failures per LabelJob (`namespace/name`), for the backoff.
    pub(crate) failures: Mutex<HashMap<String, u32>>,
    /// Uids of the children deleted per LabelJob, until the cache no longer shows them.
    deleted: Mutex<HashMap<String, HashSet<String>>>,
    /// Reconcile passes so far.
    passes: AtomicU64,
}

impl Context {
    /// A context for the controller.
    pub fn new(
        client: Client,
        recorder: EventRecorder,
        metrics: Arc<Metrics>,
        config: OperatorConfig,
        progress: Arc<dyn ProgressSource>,
    ) -> Self {
        Context {
            client,
            recorder,
            metrics,
            config,
            progress,
            stores: None,
            failures: Mutex::default(),
            deleted: Mutex::default(),
            passes: AtomicU64::new(0),
        }
    }

    /// Read the children from these watch caches instead of GETting them.
    pub fn with_stores(self, stores: ChildStores) -> Self {
        Context { stores: Some(stores), ..self }
    }

    /// Reconcile passes so far.
    pub fn passes(&self) -> u64 {
        self.passes.load(Ordering::Relaxed)
    }

    /// The children of `lj`, from the caches once they hold their first listing.
    async fn children(&self, ns: &str, name: &str) -> Result<children::Objects> {
        if let Some(stores) = &self.stores
            && !stores.ready(CACHE_SYNC_TIMEOUT).await
        {
            return Err(Error::CacheNotReady);
        }
        observe::children(&self.client, self.stores.as_ref(), ns, name).await
    }

    /// Delete the children in `live` not deleted already (by uid), forgetting uids the cache
    /// no longer shows.
    async fn delete_children(&self, lj: &LabelJob, live: &children::Objects) -> Result<usize> {
        let k = key(lj);
        let mut done = self.deleted.lock().ok().and_then(|mut d| d.remove(&k)).unwrap_or_default();
        let shown: HashSet<String> = live.existing().into_iter().map(|(_, _, uid)| uid).collect();
        done.retain(|uid| shown.contains(uid));
        let ns = lj.namespace().unwrap_or_default();
        let result = apply::delete_children(&self.client, &ns, live, &mut done).await;
        if let Ok(mut d) = self.deleted.lock()
            && !done.is_empty()
        {
            d.insert(k, done);
        }
        result
    }

    async fn publish(&self, lj: &LabelJob, type_: EventType, reason: &str, action: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(crate::error::truncate(note, 1024)),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &lj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "cannot publish event");
        }
    }
}

/// `namespace/name` of a LabelJob: the key of its failures, phase and queue entry.
pub fn key(lj: &LabelJob) -> String {
    format!("{}/{}", lj.namespace().unwrap_or_default(), lj.name_any())
}

/// Reconcile one LabelJob.
#[tracing::instrument(skip(lj, ctx), fields(job = %key(&lj)))]
pub async fn reconcile(lj: Arc<LabelJob>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    ctx.passes.fetch_add(1, Ordering::Relaxed);
    ctx.metrics.started(&key(&lj));
    let ns = lj.namespace().unwrap_or_default();
    let api: Api<LabelJob> = Api::namespaced(ctx.client.clone(), &ns);
    let (api_ref, ctx_ref) = (&api, ctx.as_ref());
    let result = finalizer(&api, FINALIZER, lj.clone(), |event| async move {
        match event {
            Finalizer::Apply(lj) => apply_labeljob(&lj, api_ref, ctx_ref).await,
            Finalizer::Cleanup(lj) => cleanup(&lj, ctx_ref).await,
        }
    })
    .await
    .or_else(|e| Error::from_finalizer(e).map_or(Ok(Action::await_change()), Err));
    let outcome = match &result {
        Ok(a) if *a == Action::await_change() => Outcome::Success,
        Ok(_) => Outcome::RequeueAfter,
        Err(_) => Outcome::Error,
    };
    ctx.metrics.reconciled(outcome, started.elapsed());
    match &result {
        Ok(_) => {
            if let Ok(mut f) = ctx.failures.lock() {
                f.remove(&key(&lj));
            }
        }
        Err(e) => {
            ctx.metrics.failed(e.category());
            tracing::warn!(error = %e.note(), category = e.category(), "reconcile failed");
            ctx.publish(&lj, EventType::Warning, e.category(), "Reconcile", e.note()).await;
        }
    }
    result
}

/// After a failed pass: wait for a change when the spec is invalid, else back off
/// exponentially (5 s doubling, at most 5 min).
pub fn error_policy(lj: Arc<LabelJob>, err: &Error, ctx: Arc<Context>) -> Action {
    if err.awaits_change() {
        return Action::await_change();
    }
    let n = match ctx.failures.lock() {
        Ok(mut f) => {
            let n = f.entry(key(&lj)).or_insert(0);
            *n = n.saturating_add(1);
            *n
        }
        Err(_) => 1,
    };
    ctx.metrics.queue.requeued(&key(&lj), backoff(n));
    Action::requeue(backoff(n))
}

/// Requeue delays after consecutive errors: 5 s doubling to 5 min (the shared backoff).
pub const ERROR_BACKOFF: Backoff = Backoff { initial: Duration::from_secs(5), max: Duration::from_secs(300) };

/// Delay before retry `n` (1-based), with jitter so that many failing jobs spread out.
pub fn backoff(n: u32) -> Duration {
    ERROR_BACKOFF.jittered(n)
}

async fn apply_labeljob(lj: &LabelJob, api: &Api<LabelJob>, ctx: &Context) -> Result<Action> {
    let now = Timestamp::now();
    let v = match validate::validate(lj) {
        Ok(v) => v,
        Err(e) => {
            if lj.namespace().is_some() {
                status::patch(api, lj, &status::invalid(lj, &e, now)).await?;
            }
            ctx.metrics.set_phase(&key(lj), Some(Phase::Pending));
            return Err(e.into());
        }
    };
    let prev = lj.status.clone().unwrap_or_default();
    let reads = observe::Reads {
        plan_summary: prev.manifest_digest.is_none(),
        // Once Merging (or finished) the final counts are in the status: the store is not read
        // again (nor the credentials Secret it needs).
        progress: !matches!(prev.phase, Some(Phase::Merging | Phase::Succeeded | Phase::Failed)),
        report: !matches!(prev.phase, Some(Phase::Succeeded | Phase::Failed)),
    };
    if let Some(stores) = &ctx.stores
        && !stores.ready(CACHE_SYNC_TIMEOUT).await
    {
        return Err(Error::CacheNotReady);
    }
    let obs =
        observe::observe(&ctx.client, ctx.stores.as_ref(), ctx.progress.as_ref(), lj, &v, reads).await?;
    let decision = decide::decide(&v, &prev, &obs, now);
    let children = build::build(&v, &decision.want, &ctx.config).map_err(|e| match e {
        build::BuildError::JobFile(s) => Error::Serialize(s),
    })?;
    apply::apply(&ctx.client, &v.namespace, children, &obs.live).await?;
    let new_status = status::compute(&v, &prev, &obs, &decision, now);
    // The terminal phase is recorded before any teardown, so a crash in between cannot make
    // a finished job look new.
    status::patch(api, lj, &new_status).await?;
    ctx.metrics.set_phase(&key(lj), Some(decision.phase));

    if prev.phase != Some(decision.phase) {
        let from = prev.phase.map_or("none".to_string(), |p| p.to_string());
        match &decision.failure {
            Some(f) if decision.finished_now => {
                ctx.publish(lj, EventType::Warning, f.reason, "Fail", f.message.clone()).await;
            }
            _ => {
                let note = format!("phase {from} → {}", decision.phase);
                ctx.publish(lj, EventType::Normal, &decision.phase.to_string(), "Transition", note).await;
            }
        }
    }
    if decision.teardown {
        let n = ctx.delete_children(lj, &obs.live).await?;
        if n > 0 {
            ctx.publish(lj, EventType::Normal, "TornDown", "Teardown", format!("deleted {n} children")).await;
        }
    }
    if decision.expired {
        tracing::info!("ttlSecondsAfterFinished elapsed: deleting the LabelJob");
        api.delete(&v.name, &DeleteParams::background()).await.map_err(Error::DeleteExpired)?;
        return Ok(Action::await_change());
    }
    if let Some(after) = decision.requeue {
        ctx.metrics.queue.requeued(&key(lj), after);
    }
    Ok(decision.requeue.map_or_else(Action::await_change, Action::requeue))
}

/// The LabelJob is being deleted: delete every child, then `finalizer()` drops the finalizer.
async fn cleanup(lj: &LabelJob, ctx: &Context) -> Result<Action> {
    let ns = lj.namespace().unwrap_or_default();
    let live = ctx.children(&ns, &lj.name_any()).await?;
    let n = ctx.delete_children(lj, &live).await?;
    if let Ok(mut d) = ctx.deleted.lock() {
        d.remove(&key(lj));
    }
    if n > 0 {
        ctx.publish(lj, EventType::Normal, "TornDown", "Cleanup", format!("deleted {n} children")).await;
    }
    ctx.metrics.set_phase(&key(lj), None);
    Ok(Action::await_change())
}
