//! LabelJob API types: the `labeljob.dev/v1alpha1` custom resource, its condition vocabulary,
//! and the pure checks shared by `kubectl apply` (CEL in the schema), the operator (condition
//! `SpecValid`) and `labeljob run` (refused before anything is created). No I/O here.

pub mod chain;
pub mod coco;
pub mod conditions;
pub mod crd;
pub mod document;
pub mod resolve;
pub mod schema_check;
pub mod v1alpha1;
pub mod validate;

pub use chain::{error_chain, error_chain_with};
pub use crd::{crd, crd_yaml};
pub use document::{DocumentError, MAX_DOCUMENT_BYTES, parse_labeljob};
pub use resolve::{Resolved, resolve};
pub use schema_check::{SchemaIssue, check_document};
pub use v1alpha1::{LabelJob, LabelJobSpec, LabelJobStatus, Phase};
pub use validate::{FieldError, SpecErrors, validate_spec};

/// The API group of every LabelJob resource.
pub const GROUP: &str = "labeljob.dev";
/// The served version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in YAML.
pub const API_VERSION: &str = "labeljob.dev/v1alpha1";
/// The builtin model shipped with LabelJob.
pub const DEFAULT_BUILTIN_MODEL: &str = "ssd-mobilenet-v2-coco";
/// Every `model.builtin` name the worker image ships (the worker's table of their files and
/// defaults is checked against this list by a test): validated before anything is created.
pub const BUILTIN_MODELS: &[&str] = &[DEFAULT_BUILTIN_MODEL];
