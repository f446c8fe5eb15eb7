//! The store-backed [`ProgressSource`]: reads `<output>/progress/shard-NNNNN.json` and
//! `<output>/plan.json` with `labeljob-store`. Credentials: the Secret named in
//! `spec.output.credentials` (else `spec.input.credentials`) in the LabelJob's namespace, whose
//! keys (`AWS_*`, `GOOGLE_*`, `AZURE_*`) become the store options (the operator's own
//! environment is then ignored); without a Secret, the operator's environment (workload
//! identity, IRSA, instance metadata). Store errors name the Secret as the credentials' origin.

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};
use labeljob_api::LabelJob;
use labeljob_store::{Location, StoreOptions, layout, read_progress};

use super::{PlanSummary, ProgressError, ProgressSource, ShardProgress};

/// Reads progress from the LabelJob's output store.
#[derive(Clone)]
pub struct StoreProgress {
    client: Client,
}

impl StoreProgress {
    /// A reader that fetches credentials Secrets with `client`.
    pub fn new(client: Client) -> Self {
        StoreProgress { client }
    }

    async fn location(&self, lj: &LabelJob) -> Result<Location, ProgressError> {
        let creds = lj.spec.output.credentials.as_ref().or(lj.spec.input.credentials.as_ref());
        let options = match creds {
            Some(c) => {
                let ns = lj.namespace().ok_or(ProgressError::NoNamespace)?;
                let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
                let secret = secrets
                    .get(&c.secret_name)
                    .await
                    .map_err(|source| ProgressError::Secret { name: c.secret_name.clone(), source })?;
                StoreOptions::from_vars(secret_vars(&secret))
                    .with_origin(format!("Secret {ns}/{}", c.secret_name))
            }
            None => StoreOptions::default(),
        };
        Location::parse_with(&lj.spec.output.uri, &options).map_err(ProgressError::Store)
    }
}

/// The Secret's keys and UTF-8 values (`data`, then `stringData`); other values are skipped.
pub fn secret_vars(secret: &Secret) -> Vec<(String, String)> {
    let data = secret
        .data
        .iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), String::from_utf8(v.0.clone()).ok()?)));
    let string_data = secret.string_data.iter().flatten().map(|(k, v)| (k.clone(), v.clone()));
    data.chain(string_data).collect()
}

#[async_trait]
impl ProgressSource for StoreProgress {
    async fn read(&self, lj: &LabelJob) -> Result<Vec<Option<ShardProgress>>, ProgressError> {
        let location = self.location(lj).await?;
        read_progress(&location, lj.spec.workers.shards).await.map_err(ProgressError::Store)
    }

    async fn plan(&self, lj: &LabelJob) -> Result<Option<PlanSummary>, ProgressError> {
        let location = self.location(lj).await?;
        match location.get_opt(layout::PLAN).await.map_err(ProgressError::Store)? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(ProgressError::PlanJson),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    #[test]
    fn secret_keys_become_variables() {
        let secret = Secret {
            data: Some(BTreeMap::from([
                ("AWS_ACCESS_KEY_ID".to_string(), ByteString(b"AK".to_vec())),
                ("BINARY".to_string(), ByteString(vec![0xff, 0xfe])),
            ])),
            string_data: Some(BTreeMap::from([("AWS_REGION".to_string(), "eu-west-1".to_string())])),
            ..Secret::default()
        };
        let vars = secret_vars(&secret);
        assert_eq!(
            vars,
            [
                ("AWS_ACCESS_KEY_ID".to_string(), "AK".to_string()),
                ("AWS_REGION".to_string(), "eu-west-1".to_string())
            ]
        );
    }

    #[tokio::test]
    async fn reads_progress_and_plan_from_a_file_store() {
        let dir = std::env::temp_dir().join(format!("labeljob-op-progress-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("progress")).expect("mkdir");
        std::fs::write(
            dir.join("progress/shard-00001.json"),
            r#"{"index":1,"total":50,"processed":20,"failed":2,"elapsedSeconds":4.0,"done":false}"#,
        )
        .expect("write");
        std::fs::write(dir.join("plan.json"), r#"{"manifestDigest":"ab","total":100,"shards":2}"#)
            .expect("write");
        let mut lj = crate::fixtures::stored(crate::fixtures::sample("labeljob-minimal.yaml"), "ns");
        lj.spec.output.uri = format!("file://{}", dir.display());
        lj.spec.input.credentials = None;
        lj.spec.workers.shards = 2;
        let (_fake, client) = crate::fixtures::FakeApiServer::start();
        let source = StoreProgress::new(client);
        let read = source.read(&lj).await.expect("reads");
        assert_eq!(read.len(), 2);
        assert!(read[0].is_none());
        assert_eq!(read[1].as_ref().map(|p| (p.processed, p.failed)), Some((20, 2)));
        let plan = source.plan(&lj).await.expect("reads").expect("planned");
        assert_eq!((plan.manifest_digest.as_str(), plan.total, plan.shards), ("ab", 100, 2));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
