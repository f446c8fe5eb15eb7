//! The operator's error type. Every variant names the step that failed and carries its source;
//! [`Error::category`] is a PascalCase word that becomes the reason of a Warning Event and the
//! `category` label of the failure metric.

use crate::controller::validate::ValidateError;

/// Why a reconcile pass failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec breaks a rule: nothing is created until it is fixed.
    #[error(transparent)]
    InvalidSpec(#[from] ValidateError),
    /// The LabelJob could not be rendered into the ConfigMap's job file.
    #[error("cannot serialise the LabelJob for its ConfigMap")]
    Serialize(#[source] serde_yaml::Error),
    /// Reading a child from the apiserver failed.
    #[error("cannot read {kind} {name}")]
    Observe {
        /// Kind of the child.
        kind: &'static str,
        /// Name of the child.
        name: String,
        /// The apiserver error.
        #[source]
        source: kube::Error,
    },
    /// Server-side apply of a child failed.
    #[error("cannot apply {kind} {name}")]
    Apply {
        /// Kind of the child.
        kind: &'static str,
        /// Name of the child.
        name: String,
        /// The apiserver error.
        #[source]
        source: kube::Error,
    },
    /// Deleting a child failed.
    #[error("cannot delete {kind} {name}")]
    Teardown {
        /// Kind of the child.
        kind: &'static str,
        /// Name of the child.
        name: String,
        /// The apiserver error.
        #[source]
        source: kube::Error,
    },
    /// The watch caches of the children did not get their first listing in time.
    #[error("the watch caches of the children are not ready yet")]
    CacheNotReady,
    /// Writing the status subresource failed.
    #[error("cannot patch the LabelJob status")]
    PatchStatus(#[source] kube::Error),
    /// Deleting the LabelJob after `ttlSecondsAfterFinished` failed.
    #[error("cannot delete the finished LabelJob")]
    DeleteExpired(#[source] kube::Error),
    /// Adding or removing the finalizer failed (the boxed finalizer error wraps the others).
    #[error("the finalizer could not be added or removed")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

/// `Result` with the operator's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A PascalCase word naming what went wrong: an Event reason and a metric label.
    pub fn category(&self) -> &'static str {
        use kube::runtime::finalizer::Error as F;
        match self {
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::Serialize(_) => "SerializeFailed",
            Error::Observe { .. } | Error::CacheNotReady => "ObserveFailed",
            Error::Apply { .. } => "ApplyFailed",
            Error::Teardown { .. } => "TeardownFailed",
            Error::PatchStatus(_) => "StatusPatchFailed",
            Error::DeleteExpired(_) => "TtlDeleteFailed",
            Error::Finalizer(f) => match f.as_ref() {
                F::ApplyFailed(e) | F::CleanupFailed(e) => e.category(),
                _ => "FinalizerFailed",
            },
        }
    }

    /// Whether retrying cannot help until the object changes (an invalid spec).
    pub fn awaits_change(&self) -> bool {
        use kube::runtime::finalizer::Error as F;
        match self {
            Error::InvalidSpec(_) => true,
            Error::Finalizer(f) => match f.as_ref() {
                F::ApplyFailed(e) | F::CleanupFailed(e) => e.awaits_change(),
                _ => false,
            },
            _ => false,
        }
    }

    /// The message for an Event note: this error and its sources, cut to the 1 KiB limit. An
    /// apiserver error is its status message and code (kube's `Display` adds a debug dump).
    pub fn note(&self) -> String {
        let render = |e: &(dyn std::error::Error + 'static)| match e.downcast_ref::<kube::Error>() {
            Some(kube::Error::Api(s)) => Some(format!("{} ({} {})", s.message, s.code, s.reason)),
            _ => None,
        };
        truncate(labeljob_api::error_chain_with(self, render), 1024)
    }

    /// What a failed `finalizer()` pass means: the inner reconcile error itself (no wrapper in
    /// Event notes), nothing when the object is already gone while the finalizer is removed (a
    /// 404 there means the deletion finished), else the finalizer's own error.
    pub fn from_finalizer(e: kube::runtime::finalizer::Error<Error>) -> Option<Error> {
        use kube::runtime::finalizer::Error as F;
        match e {
            F::ApplyFailed(inner) | F::CleanupFailed(inner) => Some(inner),
            F::RemoveFinalizer(kube::Error::Api(s)) if s.code == 404 => None,
            other => Some(Error::Finalizer(Box::new(other))),
        }
    }
}

/// Cut `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use labeljob_api::validate::{FieldError, SpecErrors};

    #[test]
    fn categories_are_pascal_case_and_unwrap_the_finalizer() {
        let invalid = || {
            Error::InvalidSpec(ValidateError::Spec(SpecErrors(vec![FieldError {
                field: "workers.shards",
                message: "must be at least 1".into(),
            }])))
        };
        assert_eq!(invalid().category(), "InvalidSpec");
        assert!(invalid().awaits_change());
        let wrapped = Error::Finalizer(Box::new(kube::runtime::finalizer::Error::ApplyFailed(invalid())));
        assert_eq!(wrapped.category(), "InvalidSpec");
        assert!(wrapped.awaits_change());
        let other = Error::Finalizer(Box::new(kube::runtime::finalizer::Error::UnnamedObject));
        assert_eq!(other.category(), "FinalizerFailed");
        assert!(!other.awaits_change());
        assert!(wrapped.note().contains("spec.workers.shards: must be at least 1"), "{}", wrapped.note());
    }

    #[test]
    fn finalizer_errors_unwrap_and_a_gone_object_is_done() {
        use kube::runtime::finalizer::Error as F;
        let status = |code: u16| {
            let mut s = kube::core::Status::failure("labeljobs.labeljob.dev \"a\" not found", "NotFound");
            s.code = code;
            kube::Error::Api(Box::new(s))
        };
        assert!(Error::from_finalizer(F::RemoveFinalizer(status(404))).is_none(), "404 on removal: done");
        let conflict = Error::from_finalizer(F::RemoveFinalizer(status(409))).expect("an error");
        assert_eq!(conflict.category(), "FinalizerFailed");
        let inner = Error::from_finalizer(F::CleanupFailed(Error::PatchStatus(status(500)))).expect("inner");
        assert_eq!(inner.category(), "StatusPatchFailed");
        let note = inner.note();
        assert!(!note.contains("finalizer") && !note.contains("Status {"), "{note}");
        assert!(note.ends_with("labeljobs.labeljob.dev \"a\" not found (500 NotFound)"), "{note}");
    }

    #[test]
    fn truncates_on_char_boundary() {
        let s = "é".repeat(600);
        let t = truncate(s, 1023);
        assert_eq!(t.len(), 1022);
    }
}
