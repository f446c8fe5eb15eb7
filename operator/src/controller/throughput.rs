//! Throughput for the status (pure): `imagesPerSecond`, `progressTime` and `eta`.
//!
//! While Running the rate is recent, not an average since the start: the change of
//! `images.processed` since `progressTime` (when it last changed), smoothed exponentially with
//! time constant [`TAU`] (so the weight of an observation is its interval, and sampling at
//! uneven passes does not bias it). The first rate of a run needs an interval of at least
//! [`MIN_INTERVAL`]; with no progress for [`STALL`] the rate decays toward zero instead of
//! showing the last value forever. Between changes nothing is rewritten. Once the shards are
//! done (Merging, Succeeded, Failed) the rate is their average over the Running phase only:
//! images processed over the shards Job's start to completion.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use labeljob_api::v1alpha1::ImageCounts;
use labeljob_api::{LabelJobStatus, Phase};

use super::observe::JobState;

/// Smoothing time constant of the recent rate, seconds.
pub const TAU: f64 = 30.0;
/// The shortest interval (seconds) the first rate of a run is measured over.
pub const MIN_INTERVAL: f64 = 5.0;
/// With no progress for this long (seconds), the rate is observed (and decays) anyway.
pub const STALL: f64 = 30.0;

/// The throughput part of the status after this pass.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Throughput {
    /// Image counts.
    pub images: Option<ImageCounts>,
    /// `imagesPerSecond`.
    pub rate: Option<f64>,
    /// `progressTime`.
    pub progress_time: Option<MicroTime>,
    /// `eta`.
    pub eta: Option<String>,
}

fn round(r: f64) -> f64 {
    (r * 10.0).round() / 10.0
}

/// `1h02m`, `4m10s`, `35s`.
pub fn format_eta(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64()
}

/// The recent rate while Running.
fn running(prev: &LabelJobStatus, images: Option<ImageCounts>, now: Timestamp) -> Throughput {
    let Some(counts) = images else { return Throughput::default() };
    let base = match (prev.phase, &prev.progress_time, prev.images) {
        (Some(Phase::Running), Some(t), Some(i)) => Some((t.0, i)),
        _ => None,
    };
    let (rate, time) = match base {
        // The first observation of this run: a base for the next one.
        None => (None, Some(MicroTime(now))),
        Some((t, before)) => {
            let dt = seconds(t, now);
            let delta = counts.processed.saturating_sub(before.processed);
            match prev.images_per_second {
                _ if dt <= 0.0 || (delta == 0 && dt < STALL) => (prev.images_per_second, Some(MicroTime(t))),
                None if dt < MIN_INTERVAL => (None, Some(MicroTime(now))),
                None => (Some(round(delta as f64 / dt)), Some(MicroTime(now))),
                Some(r) => {
                    let alpha = 1.0 - (-dt / TAU).exp();
                    (Some(round(r + alpha * (delta as f64 / dt - r))), Some(MicroTime(now)))
                }
            }
        }
    };
    let images = Some(counts);
    let eta = match (images, rate) {
        (Some(i), Some(r)) if r > 0.0 => Some(format_eta(i.total.saturating_sub(i.processed) as f64 / r)),
        _ => None,
    };
    Throughput { images, rate, progress_time: time, eta }
}

/// The throughput after this pass in `phase` (pure).
pub fn compute(
    prev: &LabelJobStatus,
    images: Option<ImageCounts>,
    phase: Phase,
    shards_job: Option<&JobState>,
    now: Timestamp,
) -> Throughput {
    if phase == Phase::Running {
        return running(prev, images, now);
    }
    let average = shards_job.filter(|_| phase != Phase::Suspended).and_then(|j| {
        let start = j.start_time.as_ref()?.0;
        let end = j.completion_time.as_ref().map_or(now, |t| t.0);
        let secs = seconds(start, end);
        images.filter(|_| secs > 0.0).map(|i| round(i.processed as f64 / secs))
    });
    Throughput { images, rate: average, progress_time: None, eta: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_767_225_600 + secs).expect("valid")
    }

    fn counts(processed: u64) -> Option<ImageCounts> {
        Some(ImageCounts { total: 1200, processed, failed: 0, ..ImageCounts::default() })
    }

    fn after(t: &Throughput) -> LabelJobStatus {
        LabelJobStatus {
            phase: Some(Phase::Running),
            images: t.images,
            images_per_second: t.rate,
            progress_time: t.progress_time.clone(),
            ..LabelJobStatus::default()
        }
    }

    #[test]
    fn recent_rate_smooths_and_decays() {
        let first = compute(&LabelJobStatus::default(), counts(0), Phase::Running, None, at(0));
        assert_eq!((first.rate, first.eta.as_deref()), (None, None), "unknown after one observation");
        // 2 s is too short for a first rate: the counts move, the rate stays unknown.
        let soon = compute(&after(&first), counts(20), Phase::Running, None, at(2));
        assert_eq!((soon.images, soon.rate, soon.progress_time), (counts(20), None, Some(MicroTime(at(2)))));
        // 100 images in 10 s: 10 img/s, 1100 left → 1m50s.
        let second = compute(&after(&first), counts(100), Phase::Running, None, at(10));
        assert_eq!((second.rate, second.eta.as_deref()), (Some(10.0), Some("1m50s")));
        // 20 img/s for 2 s weighs 1 - e^(-2/30) ≈ 0.06; for 10 s, 1 - e^(-1/3) ≈ 0.28.
        let next = compute(&after(&second), counts(140), Phase::Running, None, at(12));
        assert_eq!((next.images, next.rate), (counts(140), Some(10.6)));
        let third = compute(&after(&second), counts(300), Phase::Running, None, at(20));
        assert_eq!(third.rate, Some(12.8));
        // No progress for 20 s: nothing new to write; for 30 s: the rate decays.
        let unchanged = compute(&after(&third), counts(300), Phase::Running, None, at(40));
        assert_eq!(unchanged, third, "nothing new to write");
        let stalled = compute(&after(&third), counts(300), Phase::Running, None, at(50));
        assert_eq!((stalled.rate, stalled.progress_time), (Some(4.7), Some(MicroTime(at(50)))));
    }

    #[test]
    fn after_running_the_average_covers_the_shards_job_only() {
        let shards = JobState {
            start_time: Some(Time(at(100))),
            completion_time: Some(Time(at(160))),
            complete: true,
            ..JobState::default()
        };
        let done = Some(ImageCounts { total: 1200, processed: 1200, failed: 3, ..ImageCounts::default() });
        // 1200 images in the 60 s the shards ran, not in the 160 s since the job started.
        let t = compute(&LabelJobStatus::default(), done, Phase::Succeeded, Some(&shards), at(200));
        assert_eq!((t.rate, t.eta, t.progress_time), (Some(20.0), None, None));
        let t = compute(&LabelJobStatus::default(), done, Phase::Failed, None, at(200));
        assert_eq!(t.rate, None, "no shards ran");
        let t = compute(&LabelJobStatus::default(), done, Phase::Suspended, Some(&shards), at(200));
        assert_eq!(t.rate, None);
    }

    #[test]
    fn eta_reads_like_kubectl_ages() {
        assert_eq!(format_eta(35.4), "35s");
        assert_eq!(format_eta(250.0), "4m10s");
        assert_eq!(format_eta(3720.0), "1h02m");
        assert_eq!(format_eta(-1.0), "0s");
    }
}
