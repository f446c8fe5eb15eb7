//! Step 6 — status. Derives the whole status from this pass's observation (phase, conditions,
//! image and shard counts, throughput (`throughput.rs`), GPU time and cost (`gpu.rs`), manifest
//! digest) and writes it by server-side apply of
//! the status subresource. `lastTransitionTime` is kept while a condition's status holds; the
//! only facts carried over are those the cluster no longer shows (start and completion time,
//! the terminal phase once the children are torn down).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use labeljob_api::conditions::{self as c, condition, set_condition};
use labeljob_api::v1alpha1::{ImageCounts, ShardCounts};
use labeljob_api::{LabelJob, LabelJobStatus, Phase};
use serde_json::json;

use super::decide::Decision;
use super::observe::Observed;
use super::validate::{ValidateError, ValidatedJob};
use super::{gpu, throughput};
use crate::FIELD_MANAGER;
use crate::error::{Error, Result};

/// Image counts: the shards' progress summed; `processed` never goes below the last status
/// of the same manifest (a retried shard counts from 0 again until it catches up).
fn images(obs: &Observed, prev: &LabelJobStatus) -> Option<ImageCounts> {
    let planned_total = obs.plan.as_ref().map(|p| p.total).or(prev.images.map(|i| i.total));
    match &obs.progress {
        Some(shards) => {
            let seen = shards.iter().flatten();
            let (total, processed, failed) =
                seen.fold((0, 0, 0), |(t, p, f), s| (t + s.total, p + s.processed, f + s.failed));
            let total = planned_total.unwrap_or(total);
            let same_manifest =
                obs.plan.as_ref().is_none_or(|p| Some(&p.manifest_digest) == prev.manifest_digest.as_ref());
            let before = prev.images.filter(|i| same_manifest && i.total == total).map_or(0, |i| i.processed);
            Some(ImageCounts { total, processed: processed.max(before), failed, ..ImageCounts::default() })
        }
        None => prev.images.or(planned_total.map(|total| ImageCounts { total, ..ImageCounts::default() })),
    }
}

/// What the status shows as the model: the builtin name, or the file name of the URI.
fn model_name(v: &ValidatedJob) -> Option<String> {
    let m = &v.spec.model;
    m.builtin.clone().or_else(|| {
        let uri = m.uri.as_deref()?;
        let path = uri.split(['?', '#']).next().unwrap_or(uri);
        path.rsplit('/').find(|s| !s.is_empty()).map(str::to_string)
    })
}

/// The status after this pass (pure).
pub fn compute(
    v: &ValidatedJob,
    prev: &LabelJobStatus,
    obs: &Observed,
    decision: &Decision,
    now: Timestamp,
) -> LabelJobStatus {
    if decision.phase.is_finished() && !decision.finished_now {
        return LabelJobStatus { observed_generation: v.generation, ..prev.clone() };
    }
    let (generation, t) = (v.generation, Time(now));
    let mut conds = prev.conditions.clone();
    let mut set = |type_: &str, ok: bool, reason: &str, msg: String| {
        set_condition(&mut conds, condition(type_, ok, reason, msg, generation, t.clone()));
    };
    set(c::SPEC_VALID, true, "Valid", "the spec passed validation".into());

    let (ok, reason, msg) = match (&v.spec.inference.endpoint, obs.deployment) {
        (Some(ep), _) => (true, "ExternalEndpoint", format!("using {ep}")),
        (None, Some(d)) if d.available >= 1 => {
            (true, "Available", format!("{}/{} inference pods available", d.available, d.replicas))
        }
        (None, Some(_)) if decision.phase == Phase::Suspended => {
            (false, "Suspended", "scaled to zero while suspended".into())
        }
        (None, Some(d)) => (false, "Starting", format!("0/{} inference pods available", d.replicas)),
        (None, None) if decision.phase.is_finished() => (false, "TornDown", "the job has ended".into()),
        (None, None) => (false, "NotCreated", "the inference Deployment does not exist yet".into()),
    };
    set(c::INFERENCE_READY, ok, reason, msg);

    let total = v.spec.workers.shards;
    let shards = obs.shards_job.as_ref().map(|j| ShardCounts {
        total,
        succeeded: j.succeeded,
        failed: j.failed_indexes,
        active: j.active,
    });
    let (ok, reason, msg) = match (&obs.shards_job, shards) {
        (Some(j), _) if j.complete => (true, "AllShardsSucceeded", format!("{total}/{total} shards done")),
        (Some(j), Some(s)) if j.failed.is_some() => {
            (false, "ShardsFailed", format!("{} of {total} shards failed", s.failed))
        }
        (Some(j), Some(_)) if j.suspended && v.kueue() => {
            let queue = v.kueue_labels.get(super::validate::KUEUE_QUEUE_LABEL).cloned().unwrap_or_default();
            (
                false,
                "AwaitingAdmission",
                format!("the shards Job waits for Kueue to admit it (queue {queue})"),
            )
        }
        (Some(_), Some(s)) => {
            (false, "InProgress", format!("{}/{total} shards done, {} running", s.succeeded, s.active))
        }
        _ => (false, "NotStarted", "the shards Job does not exist yet".into()),
    };
    set(c::SHARDS_COMPLETE, ok, reason, msg);

    let output = format!("{}/annotations.json", v.spec.output.uri.trim_end_matches('/'));
    let (ok, reason, msg) = match &obs.merge_job {
        Some(j) if j.complete => (true, "Merged", format!("wrote {output}")),
        Some(j) if j.failed.is_some() => (
            false,
            decision.failure.as_ref().map_or("MergeFailed", |f| f.reason),
            decision.failure.as_ref().map(|f| f.message.clone()).unwrap_or_default(),
        ),
        Some(_) => (false, "InProgress", "the merge Job is running".into()),
        None => (false, "NotStarted", "the merge Job does not exist yet".into()),
    };
    set(c::MERGED, ok, reason, msg);

    let (ok, reason, msg) = match (decision.phase, &decision.failure) {
        (Phase::Succeeded, _) => (true, "Succeeded", format!("wrote {output}")),
        (Phase::Failed, Some(f)) => (false, f.reason, f.message.clone()),
        (phase, _) => (false, "InProgress", format!("phase {phase}")),
    };
    set(c::COMPLETE, ok, reason, msg);
    let (ok, reason, msg) = if decision.phase == Phase::Suspended {
        (true, "Suspended", "spec.suspend is true: Jobs suspended, inference scaled to zero".to_string())
    } else {
        (false, "NotSuspended", "spec.suspend is false".to_string())
    };
    set(c::SUSPENDED, ok, reason, msg);

    let start = prev.start_time.clone().unwrap_or(Time(now));
    let tp = throughput::compute(prev, images(obs, prev), decision.phase, obs.shards_job.as_ref(), now);
    // The merge's report adds where the images went (review set, duplicates).
    let images = tp.images.map(|i| match &obs.report {
        Some(r) => ImageCounts { review: Some(r.review), duplicates: Some(r.duplicates), ..i },
        None => i,
    });
    let completion_time = match (decision.finished_now, decision.phase) {
        (true, Phase::Succeeded) => {
            Some(obs.merge_job.as_ref().and_then(|j| j.completion_time.clone()).unwrap_or(Time(now)))
        }
        (true, _) => Some(Time(now)),
        _ => None,
    };
    let mut status = LabelJobStatus {
        phase: Some(decision.phase),
        progress: images.map(|i| format!("{}/{}", i.processed, i.total)),
        conditions: conds,
        observed_generation: generation,
        images,
        shards: shards.or(prev.shards.filter(|_| decision.phase.is_finished())),
        images_per_second: tp.rate,
        progress_time: tp.progress_time,
        eta: tp.eta,
        model: model_name(v),
        start_time: Some(start),
        completion_time,
        output: (decision.phase == Phase::Succeeded).then_some(output),
        manifest_digest: obs
            .plan
            .as_ref()
            .map(|p| p.manifest_digest.clone())
            .or(prev.manifest_digest.clone()),
        ..LabelJobStatus::default()
    };
    // GPU time: carried over unless the status is written anyway or it must be brought up to date.
    gpu::GpuTime::of(prev).set(&mut status);
    let held = (!decision.phase.is_finished()).then(|| gpu::held(v, obs.deployment));
    let advanced = gpu::advance(v, prev, held, now);
    if decision.finished_now || status != *prev || gpu::due(prev, &advanced, now) {
        advanced.set(&mut status);
    }
    status
}

/// The status of a LabelJob whose spec is invalid: SpecValid=False with the reasons (pure).
pub fn invalid(lj: &LabelJob, err: &ValidateError, now: Timestamp) -> LabelJobStatus {
    let mut s = lj.status.clone().unwrap_or_default();
    s.phase = Some(s.phase.unwrap_or(Phase::Pending));
    s.observed_generation = lj.metadata.generation;
    let msg = crate::error::truncate(labeljob_api::error_chain(err), 1024);
    set_condition(
        &mut s.conditions,
        condition(c::SPEC_VALID, false, "InvalidSpec", msg, lj.metadata.generation, Time(now)),
    );
    s
}

/// Write `status` by server-side apply, unless it equals what the object already shows.
pub async fn patch(api: &Api<LabelJob>, lj: &LabelJob, status: &LabelJobStatus) -> Result<bool> {
    if lj.status.as_ref() == Some(status) {
        return Ok(false);
    }
    let body = json!({"apiVersion": labeljob_api::API_VERSION, "kind": "LabelJob", "status": status});
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&lj.name_any(), &params, &Patch::Apply(&body)).await.map_err(Error::PatchStatus)?;
    Ok(true)
}
