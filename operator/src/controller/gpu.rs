//! GPU time and cost for the status (pure): `gpuSeconds`, `estimatedCost`, `gpus`, `gpuTime`.
//!
//! What the operator can observe without asking for more: the GPUs each inference pod requests
//! (the pod template's resources) and the inference Deployment's `availableReplicas` (its Ready
//! pods), which the controller watches — every change of it starts a pass. So each pass adds
//! the GPUs held since the last one, `gpus × (now − gpuTime)`, where `gpus` is what the last pass
//! observed, and records what it observes now for the next. Pod readiness times would be exact
//! too, but need the pods listed or watched (more apiserver requests per job, and the time of a
//! pod already deleted is lost); the Deployment status holds all the operator needs.
//!
//! The figures are brought up to date when the status is written anyway, when the GPUs held
//! change, when the job ends, or at least every [`REFRESH`]: a steady pass writes nothing new.
//! They are unset for a job that requests no GPU or uses `inference.endpoint`.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use labeljob_api::LabelJobStatus;

use super::observe::DeploymentState;
use super::validate::ValidatedJob;

/// The longest the figures go without being brought up to date while GPUs are held.
pub const REFRESH: Duration = Duration::from_secs(60);

/// The GPU part of the status.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GpuTime {
    /// `gpuSeconds`.
    pub seconds: Option<f64>,
    /// `estimatedCost`.
    pub cost: Option<f64>,
    /// `gpus`.
    pub gpus: Option<u32>,
    /// `gpuTime`.
    pub time: Option<MicroTime>,
}

impl GpuTime {
    /// The figures as the status shows them.
    pub fn of(status: &LabelJobStatus) -> Self {
        GpuTime {
            seconds: status.gpu_seconds,
            cost: status.estimated_cost,
            gpus: status.gpus,
            time: status.gpu_time.clone(),
        }
    }

    /// Write the figures into `status`.
    pub fn set(self, status: &mut LabelJobStatus) {
        status.gpu_seconds = self.seconds;
        status.estimated_cost = self.cost;
        status.gpus = self.gpus;
        status.gpu_time = self.time;
    }
}

/// GPUs each inference pod requests: the `nvidia.com/gpu` (or any other `…/gpu`) resources of
/// its limits, else of its requests (extended resources must have equal limits and requests).
/// 0 with `inference.endpoint` (no pods of ours).
pub fn gpus_per_pod(v: &ValidatedJob) -> u32 {
    let inf = &v.spec.inference;
    if inf.endpoint.is_some() {
        return 0;
    }
    let Some(r) = &inf.resources else { return 0 };
    let count = |m: &BTreeMap<String, Quantity>| {
        m.iter()
            .filter(|(k, _)| k.as_str() == labeljob_api::resolve::GPU_RESOURCE || k.ends_with("/gpu"))
            .filter_map(|(_, q)| q.0.trim().parse::<u32>().ok())
            .sum::<u32>()
    };
    match (&r.limits, &r.requests) {
        (Some(l), _) if count(l) > 0 => count(l),
        (_, Some(q)) => count(q),
        _ => 0,
    }
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// The figures after this pass (pure): `prev`'s brought up to date at `now`, with the GPUs
/// held now (`held`, None once the job has ended: nothing held from now on).
pub fn advance(v: &ValidatedJob, prev: &LabelJobStatus, held: Option<u32>, now: Timestamp) -> GpuTime {
    let per_pod = gpus_per_pod(v);
    if per_pod == 0 {
        return GpuTime::default();
    }
    let since = prev.gpu_time.as_ref().map(|t| t.0);
    let elapsed = since.map_or(0.0, |t| now.duration_since(t).as_secs_f64().max(0.0));
    let seconds = prev.gpu_seconds.unwrap_or(0.0) + f64::from(prev.gpus.unwrap_or(0)) * elapsed;
    let seconds = round(seconds, 1);
    GpuTime {
        seconds: Some(seconds),
        cost: v.spec.inference.cost_per_gpu_hour().map(|price| round(seconds / 3600.0 * price, 4)),
        gpus: Some(held.unwrap_or(0)),
        time: Some(MicroTime(now)),
    }
}

/// GPUs held by the available inference pods.
pub fn held(v: &ValidatedJob, deployment: Option<DeploymentState>) -> u32 {
    let available = deployment.map_or(0, |d| u32::try_from(d.available).unwrap_or(0));
    available.saturating_mul(gpus_per_pod(v))
}

/// Whether this pass must bring the figures up to date (the rest of the status changes, or
/// the job just ended, are the caller's other reasons).
pub fn due(prev: &LabelJobStatus, advanced: &GpuTime, now: Timestamp) -> bool {
    let stale = prev
        .gpu_time
        .as_ref()
        .is_none_or(|t| Duration::try_from(now.duration_since(t.0)).unwrap_or(Duration::ZERO) >= REFRESH);
    advanced.seconds.is_some() && (advanced.gpus != prev.gpus || (stale && prev.gpus.unwrap_or(0) > 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::validate::validate;
    use crate::fixtures::{sample, stored};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_767_225_600 + secs).expect("valid")
    }

    fn kueue_sample() -> ValidatedJob {
        validate(&stored(sample("labeljob-kueue.yaml"), "ns")).expect("valid")
    }

    fn after(g: GpuTime) -> LabelJobStatus {
        let mut s = LabelJobStatus::default();
        g.set(&mut s);
        s
    }

    #[test]
    fn gpus_are_counted_from_limits_else_requests() {
        let v = kueue_sample();
        assert_eq!(gpus_per_pod(&v), 1);
        let minimal = validate(&stored(sample("labeljob-minimal.yaml"), "ns")).expect("valid");
        assert_eq!(gpus_per_pod(&minimal), 0, "CPU inference");
        let mut two = v.clone();
        if let Some(r) = two.spec.inference.resources.as_mut() {
            r.limits = None;
            r.requests.get_or_insert_default().insert("amd.com/gpu".into(), Default::default());
            r.requests.get_or_insert_default().insert("nvidia.com/gpu".into(), Quantity("2".into()));
        }
        assert_eq!(gpus_per_pod(&two), 2, "requests when no limits; an unparsable quantity counts 0");
        assert_eq!(held(&two, Some(DeploymentState { replicas: 3, available: 2 })), 4);
        assert_eq!(held(&two, None), 0);
    }

    #[test]
    fn seconds_add_what_was_held_between_observations_and_cost_follows() {
        let v = kueue_sample(); // 1 GPU per pod at 2.48 per GPU-hour
        let first = advance(&v, &LabelJobStatus::default(), Some(0), at(0));
        assert_eq!((first.seconds, first.cost, first.gpus), (Some(0.0), Some(0.0), Some(0)));
        // Pods starting for 30 s held nothing; then 2 pods (2 GPUs) become available.
        let ready = advance(&v, &after(first), Some(2), at(30));
        assert_eq!((ready.seconds, ready.gpus), (Some(0.0), Some(2)));
        // 2 GPUs for 900 s: 1800 GPU-seconds = 0.5 GPU-hours = 1.24.
        let later = advance(&v, &after(ready.clone()), Some(1), at(930));
        assert_eq!((later.seconds, later.cost, later.gpus), (Some(1800.0), Some(1.24), Some(1)));
        // The job ends 100 s later: 1 GPU for 100 s more, nothing held from then on.
        let end = advance(&v, &after(later), None, at(1030));
        assert_eq!((end.seconds, end.gpus), (Some(1900.0), Some(0)));
        let mut free = v.clone();
        free.spec.inference.cost_per_gpu_hour = None;
        assert_eq!(advance(&free, &after(ready), Some(2), at(930)).cost, None, "no price, no cost");
    }

    #[test]
    fn a_steady_pass_is_not_due_but_a_change_or_a_minute_is() {
        let v = kueue_sample();
        let prev = after(advance(&v, &LabelJobStatus::default(), Some(1), at(0)));
        let next = |secs, held| advance(&v, &prev, Some(held), at(secs));
        assert!(!due(&prev, &next(10, 1), at(10)), "same GPUs, 10 s later");
        assert!(due(&prev, &next(10, 2), at(10)), "another pod became available");
        assert!(due(&prev, &next(60, 1), at(60)), "a minute later");
        let idle = after(advance(&v, &LabelJobStatus::default(), Some(0), at(0)));
        assert!(!due(&idle, &advance(&v, &idle, Some(0), at(600)), at(600)), "nothing held, nothing grows");
        let minimal = validate(&stored(sample("labeljob-minimal.yaml"), "ns")).expect("valid");
        let none = advance(&minimal, &LabelJobStatus::default(), Some(0), at(0));
        assert_eq!(none, GpuTime::default(), "no GPU requested: unset");
        assert!(!due(&LabelJobStatus::default(), &none, at(0)));
    }
}
