//! The cluster under test, prepared once per test binary: a kind cluster (`$KIND_CLUSTER`, or
//! `labeljob-e2e` created from `tests/e2e/kind-config.yaml` when missing), the operator and
//! worker images built from `docker/` and loaded into its nodes, the CRD applied, and the chart
//! installed with those images.
//!
//! Environment: `KIND_CLUSTER` (cluster name), `LABELJOB_E2E_SKIP_BUILD=1` (images already
//! loaded), `LABELJOB_E2E_IMAGE_TAG` (default `e2e`).

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::config::KubeConfigOptions;
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, Config};
use tokio::sync::OnceCell;

use crate::{Error, Result, run};

/// Repository of the operator image.
pub const OPERATOR_IMAGE: &str = "ghcr.io/labeljob/labeljob-operator";
/// Repository of the worker image.
pub const WORKER_IMAGE: &str = "ghcr.io/labeljob/labeljob-worker";
/// Helm release of the operator.
pub const RELEASE: &str = "labeljob";
/// Namespace of the operator.
pub const RELEASE_NAMESPACE: &str = "labeljob-system";
/// Default kind cluster name.
pub const DEFAULT_CLUSTER: &str = "labeljob-e2e";

static READY: OnceCell<Cluster> = OnceCell::const_new();

/// A prepared cluster: its kind name and kubeconfig context.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// kind cluster name.
    pub name: String,
    /// kubeconfig context (`kind-<name>`).
    pub context: String,
}

impl Cluster {
    /// The prepared cluster; the first call creates/reuses it, loads images, installs the chart.
    pub async fn get() -> Result<Cluster> {
        READY.get_or_try_init(Self::prepare).await.cloned()
    }

    async fn prepare() -> Result<Cluster> {
        let name = std::env::var("KIND_CLUSTER").ok().filter(|s| !s.is_empty());
        let name = name.unwrap_or_else(|| DEFAULT_CLUSTER.to_string());
        let cluster = Cluster { context: format!("kind-{name}"), name };
        cluster.ensure_kind().await?;
        if std::env::var("LABELJOB_E2E_SKIP_BUILD").as_deref() != Ok("1") {
            cluster.build_and_load_images().await?;
        }
        cluster.apply_crd().await?;
        cluster.install_chart().await?;
        Ok(cluster)
    }

    /// The image tag the tests build and install.
    pub fn image_tag() -> String {
        std::env::var("LABELJOB_E2E_IMAGE_TAG").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "e2e".into())
    }

    async fn ensure_kind(&self) -> Result<()> {
        let clusters = run("kind", &["get", "clusters"]).await?;
        if clusters.lines().any(|l| l.trim() == self.name) {
            // Make sure the kubeconfig has the context (another shell may have created it).
            run("kind", &["export", "kubeconfig", "--name", &self.name]).await?;
            return Ok(());
        }
        let config = crate::repo_root().join("tests/e2e/kind-config.yaml");
        let config = config.to_string_lossy().into_owned();
        run("kind", &["create", "cluster", "--name", &self.name, "--config", &config, "--wait", "120s"])
            .await?;
        Ok(())
    }

    async fn build_and_load_images(&self) -> Result<()> {
        let tag = Self::image_tag();
        for (repo, dockerfile) in
            [(OPERATOR_IMAGE, "docker/operator.Dockerfile"), (WORKER_IMAGE, "docker/worker.Dockerfile")]
        {
            let image = format!("{repo}:{tag}");
            run("docker", &["build", "-f", dockerfile, "-t", &image, "."]).await?;
            run("kind", &["load", "docker-image", &image, "--name", &self.name]).await?;
        }
        Ok(())
    }

    /// Helm installs `crds/` once and never upgrades it: apply the current CRD explicitly so a
    /// reused cluster tests this checkout's schema.
    async fn apply_crd(&self) -> Result<()> {
        self.kubectl(&["apply", "--server-side", "--force-conflicts", "-f", "crds/labeljob.yaml"]).await?;
        let crds: Api<CustomResourceDefinition> = Api::all(self.client().await?);
        let established = await_condition(crds, "labeljobs.labeljob.dev", conditions::is_crd_established());
        tokio::time::timeout(Duration::from_secs(60), established)
            .await
            .map_err(|_| Error::Timeout { what: "the LabelJob CRD to be established".into(), secs: 60 })??;
        Ok(())
    }

    async fn install_chart(&self) -> Result<()> {
        let tag = Self::image_tag();
        let values = serde_json::json!({
            "operator": {
                "image": {"repository": OPERATOR_IMAGE, "tag": tag, "pullPolicy": "Never"},
                "logLevel": "info,labeljob_operator=debug",
            },
            "worker": {"image": {"repository": WORKER_IMAGE, "tag": tag, "pullPolicy": "Never"}},
            // kind nodes have no GPU taints or labels.
            "inference": {"nodeSelector": {}, "tolerations": []},
        });
        let values_file = tempfile::Builder::new()
            .suffix(".json")
            .tempfile()
            .map_err(|source| Error::Io { path: std::env::temp_dir(), source })?;
        std::fs::write(values_file.path(), serde_json::to_vec(&values)?)
            .map_err(|source| Error::Io { path: values_file.path().to_path_buf(), source })?;
        let values_path = values_file.path().to_string_lossy().into_owned();
        run(
            "helm",
            &[
                "upgrade",
                "--install",
                RELEASE,
                "charts/labeljob",
                "--kube-context",
                &self.context,
                "--namespace",
                RELEASE_NAMESPACE,
                "--create-namespace",
                "--values",
                &values_path,
                "--wait",
                "--timeout",
                "5m",
            ],
        )
        .await?;
        // A reinstall with the same tag does not restart pods: make them pick up new images.
        self.kubectl(&[
            "-n",
            RELEASE_NAMESPACE,
            "rollout",
            "restart",
            &format!("deployment/{RELEASE}-operator"),
        ])
        .await?;
        self.kubectl(&[
            "-n",
            RELEASE_NAMESPACE,
            "rollout",
            "status",
            &format!("deployment/{RELEASE}-operator"),
            "--timeout",
            "180s",
        ])
        .await?;
        Ok(())
    }

    /// A client for this cluster's context.
    pub async fn client(&self) -> Result<Client> {
        let options = KubeConfigOptions { context: Some(self.context.clone()), ..Default::default() };
        let config = Config::from_kubeconfig(&options).await?;
        Ok(Client::try_from(config)?)
    }

    /// Run `kubectl --context <context> ARGS…` and return its output.
    pub async fn kubectl(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["--context", self.context.as_str()];
        all.extend_from_slice(args);
        run("kubectl", &all).await
    }
}
