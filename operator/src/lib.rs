//! LabelJob operator: a kube-runtime controller that turns a `LabelJob` into a plan Job, an
//! inference Deployment + Service, an Indexed shards Job and a merge Job, reports progress in
//! the LabelJob's status and tears the infrastructure down when the job ends.
//!
//! `main.rs` is a thin shell over [`runtime::run`]; everything else is a library so that the
//! reconcile pipeline can be tested against a mocked apiserver.

pub mod admin;
pub mod args;
pub mod controller;
pub mod error;
pub mod events;
pub mod leader;
pub mod metrics;
pub mod progress;
pub mod rbac;
pub mod runtime;

#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;

pub use controller::{Context, OperatorConfig, error_policy, reconcile};
pub use error::{Error, Result};

/// The finalizer that guarantees teardown when a LabelJob is deleted mid-run.
pub const FINALIZER: &str = "labeljob.dev/teardown";
/// Field manager of every server-side apply the operator makes (children and status).
pub const FIELD_MANAGER: &str = "labeljob-operator";
/// Label carried by every child, naming its LabelJob.
pub const JOB_LABEL: &str = "labeljob.dev/job";
