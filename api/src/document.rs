//! Reading a LabelJob document from YAML (the file a user `kubectl apply`s or `labeljob run`s),
//! with errors that say which field is wrong instead of a bare serde message.

use kube::Resource;

use crate::v1alpha1::LabelJob;

/// Why a YAML document is not a LabelJob.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Not YAML, or a field has the wrong type.
    #[error("not a valid LabelJob: {0}")]
    Yaml(#[source] serde_yaml::Error),
    /// `apiVersion` or `kind` name another resource.
    #[error("apiVersion/kind is {found:?}, expected \"labeljob.dev/v1alpha1\"/\"LabelJob\"")]
    WrongKind {
        /// What the document says, as `apiVersion/kind`.
        found: String,
    },
}

/// Parse one LabelJob from YAML. Unknown or mistyped fields are reported with their path.
pub fn parse_labeljob(yaml: &str) -> Result<LabelJob, DocumentError> {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).map_err(DocumentError::Yaml)?;
    let api_version = value.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("");
    let kind = value.get("kind").and_then(|v| v.as_str()).unwrap_or("");
    if api_version != LabelJob::api_version(&()) || kind != LabelJob::kind(&()) {
        return Err(DocumentError::WrongKind { found: format!("{api_version}/{kind}") });
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
