//! `kubectl labeljob logs NAME [--shard N]`: the logs of a LabelJob's pods through the API.
//! The pods are those labelled `labeljob.dev/job=NAME` (every child's pod template carries
//! it); a shard's pods are the shard component's with the Job's completion-index annotation
//! `N`, and the latest of them (the last retry) is shown. Without `--shard`, every pod's log
//! is shown under a `==> pod <==` header, oldest pod first.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use kube::{Api, Client, ResourceExt};
use labeljob_operator::JOB_LABEL;

/// The annotation of an Indexed Job's pods naming their index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// What to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Only this shard's latest pod.
    pub shard: Option<u32>,
    /// Lines from the end.
    pub tail: Option<i64>,
    /// The previous container run.
    pub previous: bool,
}

/// Why logs could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// The pods could not be listed.
    #[error("cannot list the pods of LabelJob {name}: {source}")]
    List {
        /// The LabelJob.
        name: String,
        /// The apiserver's error.
        #[source]
        source: kube::Error,
    },
    /// No pod matches.
    #[error("LabelJob {name} has no {what} pod (not started yet, or torn down)")]
    NoPod {
        /// The LabelJob.
        name: String,
        /// Which pod was looked for.
        what: String,
    },
    /// A pod's log could not be read.
    #[error("cannot read the log of pod {pod}: {source}")]
    Log {
        /// The pod.
        pod: String,
        /// The apiserver's error.
        #[source]
        source: kube::Error,
    },
}

/// The label selector of the pods of LabelJob `name` (of one component when given).
pub fn selector(name: &str, component: Option<&str>) -> String {
    match component {
        Some(c) => format!("{JOB_LABEL}={name},app.kubernetes.io/component={c}"),
        None => format!("{JOB_LABEL}={name}"),
    }
}

/// The pods to show, oldest first (pure): every pod, or the latest one of shard `shard`.
pub fn pick(mut pods: Vec<Pod>, shard: Option<u32>) -> Vec<Pod> {
    pods.sort_by(|a, b| {
        let t = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        t(a).cmp(&t(b)).then_with(|| a.name_any().cmp(&b.name_any()))
    });
    match shard {
        None => pods,
        Some(n) => {
            let index = n.to_string();
            let mut of_shard =
                pods.into_iter().filter(|p| p.annotations().get(COMPLETION_INDEX) == Some(&index));
            of_shard.next_back().into_iter().collect()
        }
    }
}

/// The logs of LabelJob `name`'s pods in `namespace`, as `opts` asks.
pub async fn logs(
    client: &Client,
    namespace: &str,
    name: &str,
    opts: &LogOptions,
) -> Result<String, LogsError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let component = opts.shard.map(|_| "shard");
    let listed = api
        .list(&ListParams::default().labels(&selector(name, component)))
        .await
        .map_err(|source| LogsError::List { name: name.to_string(), source })?;
    let pods = pick(listed.items, opts.shard);
    if pods.is_empty() {
        let what = opts.shard.map_or_else(|| "running or finished".to_string(), |n| format!("shard {n}"));
        return Err(LogsError::NoPod { name: name.to_string(), what });
    }
    let params = LogParams { tail_lines: opts.tail, previous: opts.previous, ..LogParams::default() };
    let mut out = String::new();
    let headers = pods.len() > 1 || opts.shard.is_none();
    for pod in pods {
        let pod_name = pod.name_any();
        let text = api
            .logs(&pod_name, &params)
            .await
            .map_err(|source| LogsError::Log { pod: pod_name.clone(), source })?;
        if headers {
            out.push_str(&format!("==> {pod_name} <==\n"));
        }
        out.push_str(&text);
        if !text.is_empty() && !text.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}
