//! `kubectl labeljob`: a kubectl plugin (the binary `kubectl-labeljob` on the PATH) for
//! LabelJobs. `status NAME` prints the status with every shard's progress, read from the
//! output store the way the operator reads it (`labeljob_operator::progress::StoreProgress`,
//! the job's credentials Secret included); `logs NAME [--shard N]` prints the logs of the job's
//! pods, or of one shard's latest pod; `preview NAME` fetches the merged `annotations.json` and
//! draws it onto its images with the worker's contact sheet (`labeljob_worker::preview`).
//! `main.rs` only parses and prints; everything here is testable against the operator's fake
//! apiserver.

pub mod logs;
pub mod status;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use kube::config::KubeConfigOptions;
use kube::{Api, Client};
use labeljob_api::LabelJob;
use labeljob_operator::progress::{ProgressSource, StoreProgress};

/// kubectl labeljob: the status of a LabelJob with each shard's progress, its pods' logs, and
/// a preview of its labels.
#[derive(Debug, Parser)]
#[command(name = "kubectl-labeljob", bin_name = "kubectl labeljob", version)]
pub struct Args {
    /// Namespace of the LabelJob (default: the namespace of the kubeconfig context).
    #[arg(short, long, env = "KUBECTL_LABELJOB_NAMESPACE", global = true)]
    pub namespace: Option<String>,
    /// The kubeconfig context to use (default: the current context, or the in-cluster config).
    #[arg(long, env = "KUBECTL_LABELJOB_CONTEXT", global = true)]
    pub context: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand, PartialEq)]
pub enum Command {
    /// Phase, progress, conditions, and every shard's progress from the output store.
    Status {
        /// The LabelJob's name.
        #[arg(env = "KUBECTL_LABELJOB_NAME")]
        name: String,
    },
    /// Logs of the LabelJob's pods (plan, inference, shards, merge), or of one shard.
    Logs {
        /// The LabelJob's name.
        #[arg(env = "KUBECTL_LABELJOB_NAME")]
        name: String,
        /// Only this shard (its latest pod: the retry, if it was retried).
        #[arg(long, env = "KUBECTL_LABELJOB_SHARD")]
        shard: Option<u32>,
        /// Lines from the end of each log (all when unset).
        #[arg(long, env = "KUBECTL_LABELJOB_TAIL")]
        tail: Option<i64>,
        /// The log of the previous container run (after a restart).
        #[arg(long, env = "KUBECTL_LABELJOB_PREVIOUS")]
        previous: bool,
    },
    /// Fetch the merged annotations.json and draw its boxes onto its images (PNG contact sheet).
    Preview {
        /// The LabelJob's name.
        #[arg(env = "KUBECTL_LABELJOB_NAME")]
        name: String,
        /// The PNG to write.
        #[arg(long, env = "KUBECTL_LABELJOB_PREVIEW_OUT", default_value = "preview.png")]
        out: PathBuf,
        /// Most images on the sheet.
        #[arg(long, env = "KUBECTL_LABELJOB_PREVIEW_MAX_IMAGES", default_value_t = 24)]
        max_images: usize,
        /// Width of each tile in pixels.
        #[arg(long, env = "KUBECTL_LABELJOB_PREVIEW_TILE", default_value_t = 320)]
        tile: u32,
    },
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// No usable kubeconfig (or in-cluster config).
    #[error("cannot find a Kubernetes configuration: {0}")]
    Infer(#[source] kube::config::InferConfigError),
    /// The kubeconfig (or the context asked for) cannot be used.
    #[error("cannot use the kubeconfig: {0}")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    /// The client could not be built.
    #[error("cannot create a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// There is no such LabelJob.
    #[error("there is no LabelJob {name:?} in namespace {namespace}")]
    NotFound {
        /// Its name.
        name: String,
        /// The namespace looked in.
        namespace: String,
    },
    /// The LabelJob could not be read.
    #[error("cannot read LabelJob {name}: {source}")]
    Get {
        /// Its name.
        name: String,
        /// The apiserver's error.
        #[source]
        source: kube::Error,
    },
    /// Pods or their logs could not be read.
    #[error(transparent)]
    Logs(#[from] logs::LogsError),
    /// The contact sheet could not be drawn.
    #[error("cannot preview {uri}: {source}")]
    Preview {
        /// The annotations' URI.
        uri: String,
        /// The worker's error.
        #[source]
        source: labeljob_worker::preview::PreviewError,
    },
}

/// A client for `context` (the current one when None).
pub async fn client(context: Option<&str>) -> Result<Client, PluginError> {
    let config = match context {
        Some(c) => {
            let options = KubeConfigOptions { context: Some(c.to_string()), ..KubeConfigOptions::default() };
            kube::Config::from_kubeconfig(&options).await.map_err(PluginError::Kubeconfig)?
        }
        None => kube::Config::infer().await.map_err(PluginError::Infer)?,
    };
    Client::try_from(config).map_err(PluginError::Client)
}

/// The LabelJob `name` in `namespace`.
pub async fn labeljob(client: &Client, namespace: &str, name: &str) -> Result<LabelJob, PluginError> {
    let api: Api<LabelJob> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(lj)) => Ok(lj),
        Ok(None) => Err(PluginError::NotFound { name: name.to_string(), namespace: namespace.to_string() }),
        Err(source) => Err(PluginError::Get { name: name.to_string(), source }),
    }
}

/// Where a LabelJob's merged annotations are: `status.output`, else under `spec.output.uri`.
pub fn annotations_uri(lj: &LabelJob) -> String {
    lj.status.as_ref().and_then(|s| s.output.clone()).unwrap_or_else(|| {
        format!("{}/{}", lj.spec.output.uri.trim_end_matches('/'), labeljob_store::layout::ANNOTATIONS)
    })
}

/// Run `command` for LabelJobs in `namespace` and return what to print.
pub async fn run(client: &Client, namespace: &str, command: Command) -> Result<String, PluginError> {
    match command {
        Command::Status { name } => {
            let lj = labeljob(client, namespace, &name).await?;
            let source = StoreProgress::new(client.clone());
            let progress = source.read(&lj).await.map_err(|e| labeljob_api::error_chain(&e));
            Ok(status::render(&lj, &progress))
        }
        Command::Logs { name, shard, tail, previous } => {
            labeljob(client, namespace, &name).await?;
            let opts = logs::LogOptions { shard, tail, previous };
            Ok(logs::logs(client, namespace, &name, &opts).await?)
        }
        Command::Preview { name, out, max_images, tile } => {
            let lj = labeljob(client, namespace, &name).await?;
            let uri = annotations_uri(&lj);
            labeljob_store::init_crypto();
            let n = labeljob_worker::preview::contact_sheet(&uri, &out, max_images, tile)
                .await
                .map_err(|source| PluginError::Preview { uri: uri.clone(), source })?;
            Ok(format!("wrote {} ({n} images from {uri})\n", out.display()))
        }
    }
}

#[cfg(test)]
mod tests;
