//! An S3 server inside the test namespace, seeded with the fixture photos.
//!
//! The server is RustFS (`rustfs/rustfs`, Apache-2.0): a real S3 implementation (its own
//! erasure-coded object layer, SigV4 auth, conditional PUT with `If-None-Match`/`If-Match`),
//! not a mock such as moto. It runs as one pod with an `emptyDir` and a Service `s3` on port
//! 9000; the worker pods reach it at `http://s3.<ns>.svc.cluster.local:9000` with the
//! credentials of a Secret the LabelJob names. The test host reaches it through
//! `kubectl port-forward` (a child process killed by PID in `stop`/on drop) and talks S3 with
//! `curl --aws-sigv4`. Override the image with `LABELJOB_E2E_S3_IMAGE`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::PostParams;
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::{Cluster, Error, Result, run_raw};

/// Default S3 server image.
pub const DEFAULT_IMAGE: &str = "rustfs/rustfs:1.0.0-alpha.85";
/// Access key of the test server.
pub const ACCESS_KEY: &str = "labeljobe2e";
/// Secret key of the test server.
pub const SECRET_KEY: &str = "labeljob-e2e-secret-key";
/// Region the clients sign for.
pub const REGION: &str = "us-east-1";
const NAME: &str = "s3";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Extensions the worker labels by default (a LabelJob without `include`).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "bmp"];

/// A running S3 server in one namespace, reachable from the test host through `client`.
#[derive(Debug)]
pub struct S3Server {
    namespace: String,
    forward: Child,
    /// S3 client for `http://127.0.0.1:<port>` (the port-forward).
    pub client: S3Client,
}

/// A minimal S3 client on `curl --aws-sigv4` (path-style requests, payload sha256 signed).
#[derive(Debug, Clone)]
pub struct S3Client {
    /// Endpoint, e.g. `http://127.0.0.1:9000`.
    pub url: String,
    access_key: String,
    secret_key: String,
    region: String,
}

impl S3Server {
    /// Deploy the server into `ns`, wait until it serves, and forward a local port to it.
    pub async fn start(cluster: &Cluster, client: &Client, ns: &str) -> Result<S3Server> {
        let image = std::env::var("LABELJOB_E2E_S3_IMAGE").ok().filter(|s| !s.is_empty());
        let image = image.unwrap_or_else(|| DEFAULT_IMAGE.to_string());
        let labels = serde_json::json!({"app.kubernetes.io/name": NAME});
        let deploy: Deployment = serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": NAME, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                    "name": "rustfs",
                    "image": image,
                    "args": ["/data"],
                    "env": [
                        {"name": "RUSTFS_ACCESS_KEY", "value": ACCESS_KEY},
                        {"name": "RUSTFS_SECRET_KEY", "value": SECRET_KEY},
                        {"name": "RUSTFS_ADDRESS", "value": ":9000"},
                        // One emptyDir on the node's root disk: fine for a test.
                        {"name": "RUSTFS_UNSAFE_BYPASS_DISK_CHECK", "value": "true"},
                    ],
                    "ports": [{"name": "s3", "containerPort": 9000}],
                    "readinessProbe": {"httpGet": {"path": "/health", "port": 9000}, "periodSeconds": 2},
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }], "volumes": [{"name": "data", "emptyDir": {}}]}},
            },
        }))?;
        let svc: Service = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": NAME},
            "spec": {"selector": labels, "ports": [{"name": "s3", "port": 9000, "targetPort": "s3"}]},
        }))?;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        deployments.create(&PostParams::default(), &deploy).await?;
        Api::<Service>::namespaced(client.clone(), ns).create(&PostParams::default(), &svc).await?;

        let available = |d: Option<&Deployment>| {
            d.and_then(|d| d.status.as_ref()).and_then(|s| s.available_replicas).unwrap_or(0) >= 1
        };
        tokio::time::timeout(Duration::from_secs(300), await_condition(deployments, NAME, available))
            .await
            .map_err(|_| Error::Timeout {
                what: format!("S3 server {image} to become available"),
                secs: 300,
            })??;

        let (forward, port) = port_forward(cluster, ns, &format!("svc/{NAME}"), 9000).await?;
        let client = S3Client::new(&format!("http://127.0.0.1:{port}"), ACCESS_KEY, SECRET_KEY, REGION);
        let server = S3Server { namespace: ns.to_string(), forward, client };
        server.wait_healthy().await?;
        Ok(server)
    }

    /// The endpoint as seen from pods in the cluster.
    pub fn in_cluster_url(&self) -> String {
        format!("http://{NAME}.{}.svc.cluster.local:9000", self.namespace)
    }

    async fn wait_healthy(&self) -> Result<()> {
        let url = format!("{}/health", self.client.url);
        for _ in 0..60 {
            if run_raw("curl", &["-sf", "-o", "/dev/null", &url], None).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Err(Error::Timeout { what: format!("{url} to answer"), secs: 60 })
    }

    /// Create a Secret whose keys the worker pods get as environment (`envFrom`).
    pub async fn credentials_secret(&self, client: &Client, name: &str) -> Result<()> {
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name},
            "stringData": {
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL": self.in_cluster_url(),
                "AWS_ALLOW_HTTP": "true",
            },
        }))?;
        Api::<Secret>::namespaced(client.clone(), &self.namespace)
            .create(&PostParams::default(), &secret)
            .await?;
        Ok(())
    }

    /// Stop the port-forward (the server goes with the namespace).
    pub async fn stop(mut self) {
        let _ = self.forward.kill().await;
    }
}

impl S3Client {
    /// A client for `url` with static credentials.
    pub fn new(url: &str, access_key: &str, secret_key: &str, region: &str) -> S3Client {
        S3Client {
            url: url.trim_end_matches('/').to_string(),
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            region: region.into(),
        }
    }

    async fn s3(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Vec<u8>> {
        let url = format!("{}/{}", self.url, path.trim_start_matches('/'));
        let sha = body.map(|b| hex::encode(Sha256::digest(b))).unwrap_or_else(|| EMPTY_SHA256.to_string());
        let sha_header = format!("x-amz-content-sha256: {sha}");
        let sigv4 = format!("aws:amz:{}:s3", self.region);
        let user = format!("{}:{}", self.access_key, self.secret_key);
        let mut args = vec![
            "-sS",
            "--fail-with-body",
            "-X",
            method,
            "--aws-sigv4",
            &sigv4,
            "--user",
            &user,
            "-H",
            &sha_header,
        ];
        if body.is_some() {
            args.extend_from_slice(&["--data-binary", "@-"]);
        }
        args.push(&url);
        run_raw("curl", &args, body).await
    }

    /// Create a bucket.
    pub async fn create_bucket(&self, bucket: &str) -> Result<()> {
        self.s3("PUT", bucket, None).await.map(drop)
    }

    /// Upload one object.
    pub async fn put(&self, bucket: &str, key: &str, data: &[u8]) -> Result<()> {
        self.s3("PUT", &format!("{bucket}/{key}"), Some(data)).await.map(drop)
    }

    /// Download one object.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>> {
        self.s3("GET", &format!("{bucket}/{key}"), None).await
    }

    /// Upload every image of `dir` (not recursive) under `prefix`; returns the file names.
    pub async fn seed_images(&self, bucket: &str, prefix: &str, dir: &Path) -> Result<Vec<String>> {
        let mut names = image_files(dir)?;
        names.sort();
        for name in &names {
            let path = dir.join(name);
            let data = std::fs::read(&path).map_err(|source| Error::Io { path, source })?;
            self.put(bucket, &format!("{prefix}{name}"), &data).await?;
        }
        Ok(names)
    }
}

/// File names in `dir` with an image extension the worker picks up by default.
pub fn image_files(dir: &Path) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
        if entry.path().is_file() && IMAGE_EXTENSIONS.contains(&ext.as_str()) {
            names.push(name);
        }
    }
    Ok(names)
}

/// `kubectl port-forward TARGET :PORT`, returning the child and the local port it chose.
pub async fn port_forward(cluster: &Cluster, ns: &str, target: &str, port: u16) -> Result<(Child, u16)> {
    let remote = format!(":{port}");
    let args = ["--context", cluster.context.as_str(), "-n", ns, "port-forward", target, remote.as_str()];
    let cmd = format!("kubectl {}", args.join(" "));
    let mut child = tokio::process::Command::new("kubectl")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| Error::Spawn { cmd, source })?;
    let stdout = child.stdout.take().ok_or_else(|| Error::PortForward { target: target.into() })?;
    let mut lines = BufReader::new(stdout).lines();
    let read_port = async {
        while let Ok(Some(line)) = lines.next_line().await {
            // "Forwarding from 127.0.0.1:41234 -> 9000"
            if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:")
                && let Some(Ok(p)) = rest.split_whitespace().next().map(str::parse::<u16>)
            {
                return Some(p);
            }
        }
        None
    };
    let local = tokio::time::timeout(Duration::from_secs(30), read_port).await.ok().flatten();
    let local = local.ok_or_else(|| Error::PortForward { target: target.into() })?;
    // Keep draining its output ("Handling connection for …") so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_photos_are_found() {
        let names = image_files(&crate::repo_root().join("tests/fixtures/photos")).expect("readable");
        assert!(names.len() >= 10, "{names:?}");
        assert!(names.iter().all(|n| !n.ends_with(".md")), "{names:?}");
    }

    /// The client against a real S3 server here: Ceph radosgw from `scripts/s3-server.sh`,
    /// started in a fresh directory and stopped by the script (by PID) at the end.
    #[tokio::test]
    async fn client_round_trips_against_radosgw() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir_s = dir.path().to_string_lossy().into_owned();
        crate::run("scripts/s3-server.sh", &["start", &dir_s]).await.expect("radosgw starts");
        let result = round_trip(&dir_s).await;
        crate::run("scripts/s3-server.sh", &["stop", &dir_s]).await.expect("radosgw stops");
        result.expect("round trip");
    }

    async fn round_trip(dir: &str) -> Result<()> {
        let env = std::fs::read_to_string(Path::new(dir).join("env"))
            .map_err(|source| Error::Io { path: Path::new(dir).join("env"), source })?;
        let var = |k: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("export {k}=")).map(str::to_string))
                .unwrap_or_else(|| panic!("{k} in env"))
        };
        let c = S3Client::new(
            &var("AWS_ENDPOINT_URL"),
            &var("AWS_ACCESS_KEY_ID"),
            &var("AWS_SECRET_ACCESS_KEY"),
            REGION,
        );
        c.create_bucket("e2e-photos").await?;
        let photos = crate::repo_root().join("tests/fixtures/photos");
        let names = c.seed_images("e2e-photos", "in/", &photos).await?;
        assert_eq!(names, {
            let mut n = image_files(&photos)?;
            n.sort();
            n
        });
        let first = &names[0];
        let got = c.get("e2e-photos", &format!("in/{first}")).await?;
        let want = std::fs::read(photos.join(first))
            .map_err(|source| Error::Io { path: photos.join(first), source })?;
        assert!(got == want, "{first}: downloaded {} bytes, uploaded {}", got.len(), want.len());
        let missing = c.get("e2e-photos", "in/no-such-key").await.expect_err("no such key");
        assert!(missing.to_string().contains("404"), "{missing}");
        Ok(())
    }
}
