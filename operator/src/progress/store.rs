//! The store-backed [`ProgressSource`]: reads `<output>/progress/shard-NNNNN.json` and
//! `<output>/plan.json` with `labeljob-store`. Credentials: the Secret named in
//! `spec.output.credentials` (else `spec.input.credentials`) in the LabelJob's namespace, whose
//! keys (`AWS_*`, `GOOGLE_*`, `AZURE_*`) become the store options (the operator's own
//! environment is then ignored); without a Secret, the operator's environment (workload
//! identity, IRSA, instance metadata). Store errors name the Secret as the credentials' origin.
//! The Secret is read once per [`SECRET_TTL`] per LabelJob, not every pass (a rotated key is
//! picked up within that time, and at once after a store error).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};
use labeljob_api::LabelJob;
use labeljob_store::{Location, StoreOptions, read_plan_info, read_progress, read_report_images};

use super::{PlanInfo, ProgressError, ProgressSource, ReportImages, ShardProgress};

/// How long a credentials Secret read is reused.
pub const SECRET_TTL: Duration = Duration::from_secs(60);

/// `(namespace, Secret name)` → when it was read and its variables.
type SecretCache = HashMap<(String, String), (Instant, Vec<(String, String)>)>;

/// Reads progress from the LabelJob's output store.
#[derive(Clone)]
pub struct StoreProgress {
    client: Client,
    secrets: Arc<Mutex<SecretCache>>,
}

impl StoreProgress {
    /// A reader that fetches credentials Secrets with `client`.
    pub fn new(client: Client) -> Self {
        StoreProgress { client, secrets: Arc::default() }
    }

    /// The Secret key of `lj`'s credentials, if it names a Secret.
    fn secret_key(lj: &LabelJob) -> Result<Option<(String, String)>, ProgressError> {
        let creds = lj.spec.output.credentials.as_ref().or(lj.spec.input.credentials.as_ref());
        match creds {
            Some(c) => Ok(Some((lj.namespace().ok_or(ProgressError::NoNamespace)?, c.secret_name.clone()))),
            None => Ok(None),
        }
    }

    async fn secret(&self, ns: &str, name: &str) -> Result<Vec<(String, String)>, ProgressError> {
        let key = (ns.to_string(), name.to_string());
        if let Ok(cache) = self.secrets.lock()
            && let Some((at, vars)) = cache.get(&key)
            && at.elapsed() < SECRET_TTL
        {
            return Ok(vars.clone());
        }
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let secret = secrets
            .get(name)
            .await
            .map_err(|source| ProgressError::Secret { name: name.to_string(), source })?;
        let vars = secret_vars(&secret);
        if let Ok(mut cache) = self.secrets.lock() {
            cache.retain(|_, (at, _)| at.elapsed() < SECRET_TTL);
            cache.insert(key, (Instant::now(), vars.clone()));
        }
        Ok(vars)
    }

    async fn location(&self, lj: &LabelJob) -> Result<Location, ProgressError> {
        let options = match Self::secret_key(lj)? {
            Some((ns, name)) => StoreOptions::from_vars(self.secret(&ns, &name).await?)
                .with_origin(format!("Secret {ns}/{name}")),
            None => StoreOptions::default(),
        };
        Location::parse_with(&lj.spec.output.uri, &options).map_err(ProgressError::Store)
    }

    /// After a store error, read the Secret again next time (the key may have been rotated).
    fn forget_secret<T>(&self, lj: &LabelJob, r: Result<T, ProgressError>) -> Result<T, ProgressError> {
        if r.is_err()
            && let Ok(Some(key)) = Self::secret_key(lj)
            && let Ok(mut cache) = self.secrets.lock()
        {
            cache.remove(&key);
        }
        r
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
        let r = read_progress(&location, lj.spec.workers.shards).await.map_err(ProgressError::Store);
        self.forget_secret(lj, r)
    }

    async fn plan(&self, lj: &LabelJob) -> Result<Option<PlanInfo>, ProgressError> {
        let location = self.location(lj).await?;
        let r = read_plan_info(&location).await.map_err(ProgressError::Store);
        self.forget_secret(lj, r)
    }

    async fn report(&self, lj: &LabelJob) -> Result<Option<ReportImages>, ProgressError> {
        let location = self.location(lj).await?;
        let r = read_report_images(&location).await.map_err(ProgressError::Store);
        self.forget_secret(lj, r)
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
        std::fs::write(
            dir.join("plan.json"),
            r#"{"manifestDigest":"ab","total":100,"shards":2,"inputDigest":"cd"}"#,
        )
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

    #[tokio::test]
    async fn the_credentials_secret_is_read_once_per_ttl_not_every_pass() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("plan.json"),
            r#"{"manifestDigest":"ab","total":4,"shards":1,"inputDigest":"cd"}"#,
        )
        .expect("write");
        let mut lj = crate::fixtures::stored(crate::fixtures::sample("labeljob-minimal.yaml"), "ns");
        lj.spec.output.uri = format!("file://{}", dir.path().display());
        lj.spec.output.credentials =
            Some(labeljob_api::v1alpha1::CredentialsSpec { secret_name: "creds".into() });
        let (fake, client) = crate::fixtures::FakeApiServer::start();
        let path = "/api/v1/namespaces/ns/secrets/creds";
        fake.insert(
            path,
            serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "creds"}, "stringData": {"AWS_REGION": "eu-west-1"}}),
        );
        let source = StoreProgress::new(client);
        for _ in 0..3 {
            source.read(&lj).await.expect("progress");
            assert!(source.plan(&lj).await.expect("plan").is_some());
            assert_eq!(source.report(&lj).await.expect("report"), None);
        }
        let gets = fake.requests().iter().filter(|r| r.method == "GET" && r.path == path).count();
        assert_eq!(gets, 1, "9 reads, one Secret GET");
        // Another LabelJob's Secret is its own entry.
        lj.metadata.namespace = Some("other".into());
        assert!(source.read(&lj).await.is_err(), "no Secret creds in namespace other");
    }
}
