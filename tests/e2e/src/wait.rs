//! Waiting on the cluster: a LabelJob reaching a phase (`await_condition` under
//! `tokio::time::timeout`), a LabelJob disappearing (its finalizer removed), and every child of
//! a LabelJob (label `labeljob.dev/job=NAME`) being deleted.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::ListParams;
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, Resource, ResourceExt};
use labeljob_api::{LabelJob, Phase};

use crate::{Error, Result};

/// The label every child of a LabelJob carries.
pub const JOB_LABEL: &str = "labeljob.dev/job";

/// The phase of a LabelJob, if it has one.
pub fn phase(lj: &LabelJob) -> Option<Phase> {
    lj.status.as_ref().and_then(|s| s.phase)
}

/// Wait until LabelJob `name` is in one of `phases`; returns it. A job that finishes
/// (Succeeded or Failed) in a phase not awaited ends the wait early with an error saying so.
pub async fn wait_for_phase(
    api: &Api<LabelJob>,
    name: &str,
    phases: &[Phase],
    timeout: Duration,
) -> Result<LabelJob> {
    let cond = move |lj: Option<&LabelJob>| {
        lj.and_then(phase).is_some_and(|p| phases.contains(&p) || p.is_finished())
    };
    let what = format!("LabelJob {name} to reach {phases:?}");
    let lj = tokio::time::timeout(timeout, await_condition(api.clone(), name, cond))
        .await
        .map_err(|_| Error::Timeout { what: what.clone(), secs: timeout.as_secs() })??;
    match lj {
        Some(lj) if phase(&lj).is_some_and(|p| phases.contains(&p)) => Ok(lj),
        other => {
            let status = other.and_then(|lj| lj.status).and_then(|s| serde_json::to_string(&s).ok());
            Err(Error::Finished { what, status: status.unwrap_or_default() })
        }
    }
}

/// Wait until the object with `uid` is gone (finalizers removed and deleted).
pub async fn wait_deleted<K>(api: &Api<K>, name: &str, uid: &str, timeout: Duration) -> Result<()>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    tokio::time::timeout(timeout, await_condition(api.clone(), name, conditions::is_deleted(uid)))
        .await
        .map_err(|_| Error::Timeout { what: format!("{name} to be deleted"), secs: timeout.as_secs() })??;
    Ok(())
}

/// Names of the children of LabelJob `job` still present in `ns`, as `Kind/name`.
pub async fn children(client: &Client, ns: &str, job: &str) -> Result<Vec<String>> {
    let lp = ListParams::default().labels(&format!("{JOB_LABEL}={job}"));
    let mut out = Vec::new();
    let names =
        |kind: &str, items: Vec<String>| items.into_iter().map(|n| format!("{kind}/{n}")).collect::<Vec<_>>();
    let d = Api::<Deployment>::namespaced(client.clone(), ns).list(&lp).await?;
    out.extend(names("Deployment", d.items.iter().map(ResourceExt::name_any).collect()));
    let s = Api::<Service>::namespaced(client.clone(), ns).list(&lp).await?;
    out.extend(names("Service", s.items.iter().map(ResourceExt::name_any).collect()));
    let j = Api::<Job>::namespaced(client.clone(), ns).list(&lp).await?;
    out.extend(names("Job", j.items.iter().map(ResourceExt::name_any).collect()));
    let c = Api::<ConfigMap>::namespaced(client.clone(), ns).list(&lp).await?;
    out.extend(names("ConfigMap", c.items.iter().map(ResourceExt::name_any).collect()));
    Ok(out)
}

/// Wait until LabelJob `job` has no children left in `ns`.
pub async fn wait_children_gone(client: &Client, ns: &str, job: &str, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let left = children(client, ns, job).await?;
        if left.is_empty() {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(Error::Timeout {
                what: format!("children of {job} to be deleted, left: {left:?}"),
                secs: timeout.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
