//! Step 6 — apply, and teardown: the steps that write children. Server-side apply of every
//! wanted child under the one field manager `labeljob-operator` (forced: the operator owns these
//! fields). Applying an unchanged child is a no-op on the apiserver, so a restarted operator
//! re-applies the same objects and never creates duplicates. Teardown deletes every child
//! (Jobs with propagationPolicy Background so their pods go too, the Deployment, the Service,
//! the ConfigMap) when a job ends with the `Delete` policy, and from the finalizer when the
//! LabelJob is deleted mid-run; a child already gone is fine, the LabelJob and the output are
//! never touched.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::build::{Child, Children, child_name};
use crate::FIELD_MANAGER;
use crate::error::{Error, Result};

async fn ssa<K>(client: &Client, ns: &str, kind: &'static str, obj: K) -> Result<()>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Serialize
        + DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api.patch(&name, &params, &Patch::Apply(&obj)).await {
        Ok(_) => {
            tracing::debug!(kind, name, "applied");
            Ok(())
        }
        Err(source) => Err(Error::Apply { kind, name, source }),
    }
}

/// Apply `children` in namespace `ns`: the ConfigMap first (pods mount it), then the rest.
pub async fn apply(client: &Client, ns: &str, children: Children) -> Result<()> {
    let Children { config_map, plan_job, deployment, service, shards_job, merge_job } = children;
    if let Some(c) = config_map {
        ssa(client, ns, "ConfigMap", c).await?;
    }
    if let Some(j) = plan_job {
        ssa(client, ns, "Job", j).await?;
    }
    if let Some(s) = service {
        ssa(client, ns, "Service", s).await?;
    }
    if let Some(d) = deployment {
        ssa(client, ns, "Deployment", d).await?;
    }
    if let Some(j) = shards_job {
        ssa(client, ns, "Job", j).await?;
    }
    if let Some(j) = merge_job {
        ssa(client, ns, "Job", j).await?;
    }
    Ok(())
}

async fn delete<K>(client: &Client, ns: &str, kind: &'static str, name: String) -> Result<bool>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    match api.delete(&name, &DeleteParams::background()).await {
        Ok(_) => {
            tracing::info!(kind, name, "deleted");
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(false),
        Err(source) => Err(Error::Teardown { kind, name, source }),
    }
}

/// Delete every child of LabelJob `name`; returns how many existed.
pub async fn delete_children(client: &Client, ns: &str, name: &str) -> Result<usize> {
    let n = |c| child_name(name, c);
    let deleted = [
        delete::<Job>(client, ns, "Job", n(Child::ShardsJob)).await?,
        delete::<Job>(client, ns, "Job", n(Child::MergeJob)).await?,
        delete::<Job>(client, ns, "Job", n(Child::PlanJob)).await?,
        delete::<Deployment>(client, ns, "Deployment", n(Child::Deployment)).await?,
        delete::<Service>(client, ns, "Service", n(Child::Service)).await?,
        delete::<ConfigMap>(client, ns, "ConfigMap", n(Child::ConfigMap)).await?,
    ];
    Ok(deleted.into_iter().filter(|d| *d).count())
}
