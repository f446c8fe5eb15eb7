//! [`StoreProgress`] against real object stores: Azurite (`az://`) and fake-gcs-server
//! (`gs://`), started by `scripts/az-server.sh` / `scripts/gcs-server.sh` on 127.0.0.1 and
//! stopped by PID when the guard drops. The LabelJob's credentials Secret lives in the fake
//! apiserver with the keys a user would put there (`AZURE_STORAGE_ACCOUNT_NAME`,
//! `AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_ENDPOINT`; `GOOGLE_SERVICE_ACCOUNT_KEY`,
//! `GOOGLE_BASE_URL`); the progress objects are written by `labeljob-store` as the shards write
//! them (Azure) or through GCS's JSON upload API (fake-gcs-server serves no XML uploads, see
//! store/tests/gcs.rs). A Secret with a wrong key gives an error naming the output URI and the
//! Secret, without the key.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use k8s_openapi::ByteString;
use labeljob_api::LabelJob;
use labeljob_api::v1alpha1::CredentialsSpec;
use labeljob_store::{Location, ShardProgress, StoreOptions, write_progress};
use serde_json::json;

use super::{ProgressSource, StoreProgress};
use crate::fixtures::{FakeApiServer, sample, stored};

/// A server started by one of the scripts; stopped (by its PID file) on drop.
struct ScriptServer {
    script: PathBuf,
    dir: tempfile::TempDir,
    vars: BTreeMap<String, String>,
}

impl ScriptServer {
    fn start(script: &str) -> ScriptServer {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts").join(script);
        let dir = tempfile::Builder::new().prefix("labeljob-op-").tempdir().expect("tempdir");
        let mut server = ScriptServer { script, dir, vars: BTreeMap::new() };
        let out = Command::new("bash").arg(&server.script).arg("start").arg(server.dir.path()).output();
        let stderr =
            out.as_ref().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_default();
        assert!(
            out.as_ref().is_ok_and(|o| o.status.success()),
            "{} start: {stderr}",
            server.script.display()
        );
        let env = std::fs::read_to_string(server.dir.path().join("env")).expect("env file");
        server.vars = env
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
        server
    }

    fn var(&self, key: &str) -> &str {
        self.vars.get(key).map(String::as_str).unwrap_or_else(|| panic!("{key} not in env"))
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(&self.script).arg("stop").arg(self.dir.path()).status();
    }
}

/// Put the Secret `name` with `keys` (as `data`, base64 on the wire) into namespace `ns`.
fn put_secret(fake: &FakeApiServer, ns: &str, name: &str, keys: &[(&str, &str)]) {
    let data: BTreeMap<String, ByteString> =
        keys.iter().map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec()))).collect();
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data});
    fake.insert(&format!("/api/v1/namespaces/{ns}/secrets/{name}"), secret);
}

/// A LabelJob in `ns` writing to `output` with the Secret `secret`, in 2 shards.
fn job(output: &str, secret: &str) -> LabelJob {
    let mut lj = stored(sample("labeljob-minimal.yaml"), "ns");
    lj.spec.input.credentials = None;
    lj.spec.output.uri = output.to_string();
    lj.spec.output.credentials = Some(CredentialsSpec { secret_name: secret.into() });
    lj.spec.workers.shards = 2;
    lj
}

fn shard_one() -> ShardProgress {
    ShardProgress { index: 1, total: 50, processed: 20, failed: 2, elapsed_seconds: 4.0, done: false }
}

const PLAN: &str = r#"{"manifestDigest":"ab","total":100,"shards":2,"inputDigest":"cd"}"#;

#[tokio::test]
#[ignore = "needs Azurite (scripts/az-server.sh install); run by make test"]
async fn reads_progress_from_azurite_with_the_secret() {
    let server = ScriptServer::start("az-server.sh");
    let keys = ["AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_ENDPOINT"];
    let vars: Vec<(&str, &str)> = keys.iter().map(|k| (*k, server.var(k))).collect();
    let output = format!("az://{}/jobs/x", server.var("AZURE_CONTAINER"));
    // what the shards and the planner write
    let loc = Location::parse_with(&output, &StoreOptions::from_vars(vars.clone())).expect("location");
    write_progress(&loc, &shard_one()).await.expect("write progress");
    loc.put("plan.json", bytes::Bytes::from_static(PLAN.as_bytes())).await.expect("put plan");

    let (fake, client) = FakeApiServer::start();
    put_secret(&fake, "ns", "az-creds", &vars);
    let source = StoreProgress::new(client);
    let lj = job(&output, "az-creds");
    let read = source.read(&lj).await.expect("reads");
    assert_eq!(read, vec![None, Some(shard_one())]);
    let plan = source.plan(&lj).await.expect("reads").expect("planned");
    assert_eq!((plan.manifest_digest.as_str(), plan.total, plan.shards), ("ab", 100, 2));

    let wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3I=";
    let mut bad = vars.clone();
    bad[1].1 = wrong;
    put_secret(&fake, "ns", "az-wrong", &bad);
    let err = source.read(&job(&output, "az-wrong")).await.expect_err("wrong key");
    let text = labeljob_api::error_chain(&err);
    assert!(text.contains("az://labeljob/jobs/x/progress"), "names the URI: {text}");
    assert!(
        text.contains("account key AZURE_STORAGE_ACCOUNT_KEY (account labeljob), from Secret ns/az-wrong"),
        "{text}"
    );
    assert!(!text.contains(wrong) && !text.contains(server.var("AZURE_STORAGE_ACCOUNT_KEY")), "{text}");
    fake.assert_requests_allowed_by_rbac();
}

/// Upload `body` as `name` through the JSON API (curl; fake-gcs-server ignores credentials).
fn gcs_upload(server: &ScriptServer, name: &str, body: &str) {
    let url = format!(
        "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}",
        server.var("GOOGLE_BASE_URL"),
        server.var("GCS_BUCKET"),
        name.replace('/', "%2F")
    );
    let out = Command::new("curl").args(["-sS", "-f", "-X", "POST", "--data-binary", body, &url]).output();
    assert!(out.as_ref().is_ok_and(|o| o.status.success()), "upload {name}: {out:?}");
}

#[tokio::test]
#[ignore = "needs fake-gcs-server (scripts/gcs-server.sh install); run by make test"]
async fn reads_progress_from_fake_gcs_with_the_secret() {
    let server = ScriptServer::start("gcs-server.sh");
    let progress = serde_json::to_string(&shard_one()).expect("json");
    gcs_upload(&server, "jobs/y/progress/shard-00001.json", &progress);
    gcs_upload(&server, "jobs/y/plan.json", PLAN);

    let key = std::fs::read_to_string(server.var("GOOGLE_APPLICATION_CREDENTIALS")).expect("key file");
    let (fake, client) = FakeApiServer::start();
    put_secret(
        &fake,
        "ns",
        "gcs-creds",
        &[("GOOGLE_SERVICE_ACCOUNT_KEY", key.as_str()), ("GOOGLE_BASE_URL", server.var("GOOGLE_BASE_URL"))],
    );
    let source = StoreProgress::new(client);
    let lj = job(&format!("gs://{}/jobs/y", server.var("GCS_BUCKET")), "gcs-creds");
    assert_eq!(source.read(&lj).await.expect("reads"), vec![None, Some(shard_one())]);
    let plan = source.plan(&lj).await.expect("reads").expect("planned");
    assert_eq!((plan.total, plan.shards), (100, 2));

    // a Secret whose key is not a service-account key: named, not shown
    put_secret(&fake, "ns", "gcs-bad", &[("GOOGLE_SERVICE_ACCOUNT_KEY", "{\"private_key\": \"s3cr3t\"}")]);
    let err = source.read(&job("gs://labeljob/jobs/y", "gcs-bad")).await.expect_err("bad key");
    let text = labeljob_api::error_chain(&err);
    assert!(text.contains("gs://labeljob/jobs/y"), "{text}");
    assert!(
        text.contains("service-account key in GOOGLE_SERVICE_ACCOUNT_KEY, from Secret ns/gcs-bad"),
        "{text}"
    );
    assert!(!text.contains("s3cr3t"), "{text}");
}
