//! Reading a LabelJob document from YAML (the file a user `kubectl apply`s or `labeljob run`s),
//! with errors that say which field is wrong instead of a bare serde message.

use kube::Resource;

use crate::schema_check::{SchemaIssue, check_document};
use crate::v1alpha1::LabelJob;

/// The largest LabelJob document read (a Kubernetes object is at most 1.5 MiB in etcd).
pub const MAX_DOCUMENT_BYTES: usize = 1536 * 1024;

/// Why a YAML document is not a LabelJob.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Not YAML, or a field has the wrong type.
    #[error("not a valid LabelJob")]
    Yaml(#[source] serde_yaml::Error),
    /// `apiVersion` or `kind` name another resource.
    #[error("apiVersion/kind is {found:?}, expected \"labeljob.dev/v1alpha1\"/\"LabelJob\"")]
    WrongKind {
        /// What the document says, as `apiVersion/kind`.
        found: String,
    },
    /// Larger than [`MAX_DOCUMENT_BYTES`].
    #[error("the document is {size} bytes, more than the {MAX_DOCUMENT_BYTES} bytes a LabelJob may have")]
    TooLarge {
        /// Its size in bytes.
        size: usize,
    },
    /// Fields the CRD schema does not allow (unknown, out of range, wrong type).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Schema(Vec<SchemaIssue>),
}

/// Parse one LabelJob from YAML. Unknown or mistyped fields are reported with their path.
pub fn parse_labeljob(yaml: &str) -> Result<LabelJob, DocumentError> {
    if yaml.len() > MAX_DOCUMENT_BYTES {
        return Err(DocumentError::TooLarge { size: yaml.len() });
    }
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).map_err(DocumentError::Yaml)?;
    let api_version = value.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("");
    let kind = value.get("kind").and_then(|v| v.as_str()).unwrap_or("");
    if api_version != LabelJob::api_version(&()) || kind != LabelJob::kind(&()) {
        return Err(DocumentError::WrongKind { found: format!("{api_version}/{kind}") });
    }
    // The apiserver's structural checks, from the same schema: unknown fields, types, ranges.
    let json = serde_json::to_value(&value).map_err(|e| {
        DocumentError::Schema(vec![SchemaIssue {
            path: String::new(),
            message: format!("not JSON-compatible YAML: {e}"),
        }])
    })?;
    let issues = check_document(&json);
    if !issues.is_empty() {
        return Err(DocumentError::Schema(issues));
    }
    // Parse the text again (not the Value) so errors carry the field path and line.
    serde_yaml::from_str(yaml).map_err(DocumentError::Yaml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_minimal_job_with_defaults() {
        let lj = parse_labeljob(
            "apiVersion: labeljob.dev/v1alpha1\nkind: LabelJob\nmetadata: {name: a}\nspec:\n  input: {uri: 'file:///in'}\n  model: {builtin: ssd-mobilenet-v2-coco}\n  output: {uri: 'file:///out'}\n",
        )
        .expect("valid");
        assert_eq!(lj.spec.workers.shards, 1);
        assert_eq!(lj.spec.workers.concurrency, 8);
        assert!((lj.spec.postprocess.score_threshold - 0.3).abs() < 1e-6);
    }

    #[test]
    fn refuses_other_kinds() {
        let err = parse_labeljob("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {}\n")
            .expect_err("a Pod is not a LabelJob");
        assert!(err.to_string().contains("v1/Pod"), "{err}");
    }

    #[test]
    fn reports_mistyped_field() {
        let err = parse_labeljob(
            "apiVersion: labeljob.dev/v1alpha1\nkind: LabelJob\nmetadata: {name: a}\nspec:\n  input: {uri: 'file:///in'}\n  model: {builtin: x}\n  output: {uri: 'file:///out'}\n  workers: {shards: many}\n",
        )
        .expect_err("shards is not a number");
        assert!(err.to_string().contains("shards"), "{err}");
    }
}
