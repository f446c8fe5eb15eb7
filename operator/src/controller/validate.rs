//! Step 1 — validate (pure). Runs `labeljob_api::resolve` (the spec checks, and every default
//! filled in once) plus what only the operator
//! cares about (child names fit DNS labels, Secret names are Kubernetes names, an inference
//! Deployment that can become ready, no `spec.suspend` on a job Kueue admits) and returns a
//! [`ValidatedJob`]: the only input `build` accepts, so nothing is built from an unchecked spec.
//! It also picks up the LabelJob's Kueue labels, which its children carry.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};
use labeljob_api::validate::{FieldError, SpecErrors};
use labeljob_api::{LabelJob, LabelJobSpec, Resolved, resolve};

use super::children::Child;

/// The label Kueue admits a workload by: the name of its LocalQueue.
pub const KUEUE_QUEUE_LABEL: &str = "kueue.x-k8s.io/queue-name";
/// Kueue's label naming a WorkloadPriorityClass.
pub const KUEUE_PRIORITY_LABEL: &str = "kueue.x-k8s.io/priority-class";

/// Longest LabelJob name: its child names (the longest suffix is `-inference`) must fit a
/// 63-character DNS label.
pub const MAX_NAME_LEN: usize = 63 - Child::LONGEST_SUFFIX;

/// Why a LabelJob cannot be reconciled until it changes.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// The spec breaks one or more rules.
    #[error(transparent)]
    Spec(#[from] SpecErrors),
    /// A metadata field the children need is missing.
    #[error("metadata.{0} is missing")]
    MissingMetadata(&'static str),
    /// Child names would exceed 63 characters.
    #[error(
        "metadata.name {name:?} has {len} characters; at most {MAX_NAME_LEN} fit the child names (NAME-inference)"
    )]
    NameTooLong {
        /// The name.
        name: String,
        /// Its length.
        len: usize,
    },
}

/// A LabelJob that passed validation, with what building its children needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedJob {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// The controller owner reference every child carries.
    pub owner: OwnerReference,
    /// The checked spec.
    pub spec: LabelJobSpec,
    /// Its settings with every default filled in: what `build` reads wherever the spec leaves
    /// a value open.
    pub resolved: Resolved,
    /// The LabelJob's Kueue labels ([`KUEUE_QUEUE_LABEL`], [`KUEUE_PRIORITY_LABEL`]): its
    /// children carry them, and with a queue name Kueue admits (unsuspends) its Jobs.
    pub kueue_labels: BTreeMap<String, String>,
}

impl ValidatedJob {
    /// Whether Kueue admits this job (it names a LocalQueue): its Jobs are created suspended
    /// and only Kueue unsuspends them.
    pub fn kueue(&self) -> bool {
        self.kueue_labels.contains_key(KUEUE_QUEUE_LABEL)
    }
}

/// Whether `s` is a DNS subdomain (what the apiserver requires of most object names).
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Checks of the spec that only the operator needs.
fn operator_checks(spec: &LabelJobSpec, kueue: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if kueue && spec.suspend {
        errs.push(FieldError {
            field: "suspend",
            message: format!(
                "a LabelJob labelled {KUEUE_QUEUE_LABEL} is suspended and resumed by Kueue, which unsuspends \
                 the Jobs it admits: stop its LocalQueue (spec.stopPolicy) or deactivate its Workloads \
                 (spec.active: false) instead"
            ),
        });
    }
    if spec.inference.endpoint.is_none() && spec.inference.replicas == Some(0) {
        errs.push(FieldError {
            field: "inference.replicas",
            message: "0 replicas never become ready; use spec.suspend to pause the job".into(),
        });
    }
    let secrets = [
        ("input.credentials.secretName", &spec.input.credentials),
        ("output.credentials.secretName", &spec.output.credentials),
    ];
    for (field, creds) in secrets {
        if let Some(c) = creds
            && !is_dns_subdomain(&c.secret_name)
        {
            errs.push(FieldError {
                field,
                message: format!("{:?} is not a valid Secret name (lowercase DNS subdomain)", c.secret_name),
            });
        }
    }
    errs
}

/// Validate `lj` (pure).
pub fn validate(lj: &LabelJob) -> Result<ValidatedJob, ValidateError> {
    let name = lj.metadata.name.clone().ok_or(ValidateError::MissingMetadata("name"))?;
    let namespace = lj.namespace().ok_or(ValidateError::MissingMetadata("namespace"))?;
    if lj.metadata.uid.is_none() {
        return Err(ValidateError::MissingMetadata("uid"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(ValidateError::NameTooLong { len: name.len(), name });
    }
    let (resolved, mut errs) = match resolve(&lj.spec) {
        Ok(r) => (Some(r), Vec::new()),
        Err(SpecErrors(errs)) => (None, errs),
    };
    let kueue_labels: BTreeMap<String, String> = lj
        .labels()
        .iter()
        .filter(|(k, _)| [KUEUE_QUEUE_LABEL, KUEUE_PRIORITY_LABEL].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    errs.extend(operator_checks(&lj.spec, kueue_labels.contains_key(KUEUE_QUEUE_LABEL)));
    let Some(resolved) = resolved.filter(|_| errs.is_empty()) else {
        return Err(SpecErrors(errs).into());
    };
    let owner = lj.controller_owner_ref(&()).ok_or(ValidateError::MissingMetadata("uid"))?;
    Ok(ValidatedJob {
        name,
        namespace,
        generation: lj.metadata.generation,
        owner,
        spec: lj.spec.clone(),
        resolved,
        kueue_labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{sample, stored};

    fn fields(err: ValidateError) -> Vec<&'static str> {
        match err {
            ValidateError::Spec(SpecErrors(errs)) => errs.iter().map(|e| e.field).collect(),
            other => panic!("expected spec errors, got {other}"),
        }
    }

    #[test]
    fn minimal_sample_is_valid() {
        let v = validate(&stored(sample("labeljob-minimal.yaml"), "ns")).expect("valid");
        assert_eq!((v.name.as_str(), v.namespace.as_str()), ("street-photos", "ns"));
        assert_eq!(v.owner.controller, Some(true));
        assert_eq!(v.owner.kind, "LabelJob");
        assert_eq!(v.owner.uid, "uid-lj-street-photos");
        assert_eq!(v.spec.workers.shards, 4);
    }

    #[test]
    fn invalid_samples_name_their_fields() {
        let check = |file| validate(&stored(sample(file), "ns")).expect_err(file);
        assert_eq!(fields(check("invalid-parallelism.yaml")), ["workers.parallelism"]);
        assert_eq!(fields(check("invalid-zero-replicas.yaml")), ["inference.replicas"]);
        assert_eq!(
            fields(check("invalid-class-names.yaml")),
            ["postprocess.classThresholds", "postprocess.classMap"]
        );
        assert_eq!(
            fields(check("invalid-output-scheme.yaml")),
            ["output.uri", "output.credentials.secretName"]
        );
        match check("invalid-long-name.yaml") {
            ValidateError::NameTooLong { len, .. } => assert_eq!(len, 59),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn kueue_labels_are_picked_up_and_suspend_is_refused_with_them() {
        let v = validate(&stored(sample("labeljob-kueue.yaml"), "ns")).expect("valid");
        assert!(v.kueue());
        assert_eq!(v.kueue_labels.get(KUEUE_QUEUE_LABEL).map(String::as_str), Some("gpu-queue"));
        assert_eq!(v.kueue_labels.len(), 2, "queue name and priority class, nothing else");
        assert!(!minimal().kueue());
        let mut lj = stored(sample("labeljob-kueue.yaml"), "ns");
        lj.spec.suspend = true;
        assert_eq!(fields(validate(&lj).expect_err("suspend with Kueue")), ["suspend"]);
        let mut lj = stored(sample("labeljob-minimal.yaml"), "ns");
        lj.spec.suspend = true;
        validate(&lj).expect("suspend without Kueue");
    }

    fn minimal() -> ValidatedJob {
        validate(&stored(sample("labeljob-minimal.yaml"), "ns")).expect("valid")
    }

    #[test]
    fn needs_namespace_and_uid() {
        let lj = sample("labeljob-minimal.yaml");
        assert!(matches!(validate(&lj), Err(ValidateError::MissingMetadata("namespace"))));
        let mut lj = stored(lj, "ns");
        lj.metadata.uid = None;
        assert!(matches!(validate(&lj), Err(ValidateError::MissingMetadata("uid"))));
    }

    #[test]
    fn dns_names() {
        assert!(is_dns_subdomain("photos-s3"));
        assert!(is_dns_subdomain("a.b-c.d"));
        assert!(!is_dns_subdomain("Not_A_Name"));
        assert!(!is_dns_subdomain("-x"));
        assert!(!is_dns_subdomain(""));
        assert!(!is_dns_subdomain("a..b"));
    }
}
