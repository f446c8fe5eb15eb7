//! The condition vocabulary of `LabelJob.status.conditions`: types, reasons, and a merge that
//! keeps `lastTransitionTime` when a condition's status did not change. The operator writes
//! every type in [`ALL`] on every pass of a valid job (an invalid spec gets only `SpecValid`).
//! There is no `Ready` condition: a LabelJob is a batch job, and like a `batch/v1` Job it ends
//! `Complete` (True on success); wait with
//! `kubectl wait --for=jsonpath='{.status.phase}'=Succeeded` or `--for=condition=Complete`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The spec passed validation.
pub const SPEC_VALID: &str = "SpecValid";
/// The inference service answers ready (or an external endpoint is used).
pub const INFERENCE_READY: &str = "InferenceReady";
/// Every shard finished.
pub const SHARDS_COMPLETE: &str = "ShardsComplete";
/// The merged output is written.
pub const MERGED: &str = "Merged";
/// The job reached a terminal phase (True: Succeeded, False with a reason: Failed).
pub const COMPLETE: &str = "Complete";
/// The job is suspended.
pub const SUSPENDED: &str = "Suspended";

/// Every condition type the operator writes, sorted as in the status.
pub const ALL: [&str; 6] = [COMPLETE, INFERENCE_READY, MERGED, SHARDS_COMPLETE, SPEC_VALID, SUSPENDED];

/// Build a condition at `now` for `generation`.
pub fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: now,
    }
}

/// Replace or add `new` in `conditions`; keep the old `lastTransitionTime` when the status is
/// unchanged. Conditions stay sorted by type so the status is stable across passes.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) {
    if let Some(old) = conditions.iter_mut().find(|c| c.type_ == new.type_) {
        if old.status == new.status {
            new.last_transition_time = old.last_transition_time.clone();
        }
        *old = new;
    } else {
        conditions.push(new);
    }
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

/// Find a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn t(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).expect("valid"))
    }

    #[test]
    fn keeps_transition_time_when_status_unchanged() {
        let mut cs = vec![condition(SPEC_VALID, true, "Valid", "", Some(1), t(10))];
        set_condition(&mut cs, condition(SPEC_VALID, true, "Valid", "again", Some(2), t(20)));
        assert_eq!(cs[0].last_transition_time, t(10));
        assert_eq!(cs[0].message, "again");
        set_condition(&mut cs, condition(SPEC_VALID, false, "Bad", "x", Some(3), t(30)));
        assert_eq!(cs[0].last_transition_time, t(30));
        set_condition(&mut cs, condition(MERGED, false, "Waiting", "", Some(3), t(30)));
        assert_eq!(cs.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(), [MERGED, SPEC_VALID]);
    }
}
