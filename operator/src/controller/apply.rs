//! Step 6 — apply, and teardown: the steps that write children. Server-side apply of each
//! wanted child under the one field manager `labeljob-operator` (forced: the operator owns these
//! fields) — only when the live child (from the watch cache) lacks it or differs from it in a
//! field the operator sets ([`covers`]: fields the apiserver or other controllers add do not
//! count), so a steady pass writes nothing and a child edited by hand is put back. Applying is
//! idempotent, so a restarted operator never creates duplicates. Teardown deletes the children
//! that exist (Jobs with propagationPolicy Background so their pods go too, the Deployment, the
//! Service, the ConfigMap) when a job ends with the `Delete` policy, and from the finalizer when
//! the LabelJob is deleted mid-run; a child already gone is fine, one already deleted by this
//! process (still in a lagging cache) is not deleted again; the LabelJob and the output are
//! never touched.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::build::Children;
use super::observe::Live;
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

/// Whether `live` already has every field `wanted` sets, with the same value: objects may
/// carry more keys (defaults, status, fields of other managers), lists must match item by
/// item (each item covered). Pure.
pub fn covers(live: &Value, wanted: &Value) -> bool {
    match (live, wanted) {
        (_, Value::Null) => true,
        (Value::Object(l), Value::Object(w)) => {
            w.iter().all(|(k, wv)| l.get(k).is_some_and(|lv| covers(lv, wv)) || wv.is_null())
        }
        (Value::Array(l), Value::Array(w)) => {
            l.len() == w.len() && l.iter().zip(w).all(|(a, b)| covers(a, b))
        }
        (l, w) => l == w,
    }
}

/// Whether `wanted` must be applied over `live`.
fn differs<K: Serialize>(live: &Option<K>, wanted: &K) -> bool {
    let Some(live) = live else { return true };
    match (serde_json::to_value(live), serde_json::to_value(wanted)) {
        (Ok(l), Ok(w)) => !covers(&l, &w),
        _ => true,
    }
}

/// Apply the `children` that `live` lacks or shows differently, in namespace `ns`: the
/// ConfigMap first (pods mount it), then the rest. Returns how many were applied.
pub async fn apply(client: &Client, ns: &str, children: Children, live: &Live) -> Result<usize> {
    let Children { config_map, plan_job, deployment, service, shards_job, merge_job } = children;
    let mut applied = 0;
    if let Some(c) = config_map.filter(|c| differs(&live.config_map, c)) {
        ssa(client, ns, "ConfigMap", c).await?;
        applied += 1;
    }
    if let Some(j) = plan_job.filter(|j| differs(&live.plan_job, j)) {
        ssa(client, ns, "Job", j).await?;
        applied += 1;
    }
    if let Some(s) = service.filter(|s| differs(&live.service, s)) {
        ssa(client, ns, "Service", s).await?;
        applied += 1;
    }
    if let Some(d) = deployment.filter(|d| differs(&live.deployment, d)) {
        ssa(client, ns, "Deployment", d).await?;
        applied += 1;
    }
    if let Some(j) = shards_job.filter(|j| differs(&live.shards_job, j)) {
        ssa(client, ns, "Job", j).await?;
        applied += 1;
    }
    if let Some(j) = merge_job.filter(|j| differs(&live.merge_job, j)) {
        ssa(client, ns, "Job", j).await?;
        applied += 1;
    }
    Ok(applied)
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

/// Delete the children in `live` whose uid is not in `deleted` (those this process deleted
/// already, which a lagging cache may still show); the uids deleted are added to it. Returns
/// how many were deleted.
pub async fn delete_children(
    client: &Client,
    ns: &str,
    live: &Live,
    deleted: &mut std::collections::HashSet<String>,
) -> Result<usize> {
    let mut n = 0;
    for (kind, name, uid) in live.existing() {
        if deleted.contains(&uid) {
            continue;
        }
        let gone = match kind {
            "Job" => delete::<Job>(client, ns, kind, name).await?,
            "Deployment" => delete::<Deployment>(client, ns, kind, name).await?,
            "Service" => delete::<Service>(client, ns, kind, name).await?,
            _ => delete::<ConfigMap>(client, ns, kind, name).await?,
        };
        n += usize::from(gone);
        deleted.insert(uid);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::covers;
    use serde_json::json;

    #[test]
    fn covers_ignores_added_fields_but_not_changed_ones() {
        let wanted = json!({"metadata": {"name": "a", "labels": {"x": "1"}},
            "spec": {"replicas": 1, "ports": [{"port": 8000}], "suspend": null}});
        let live = json!({"metadata": {"name": "a", "uid": "u", "labels": {"x": "1", "y": "2"}},
            "spec": {"replicas": 1, "ports": [{"port": 8000, "protocol": "TCP"}]}, "status": {}});
        assert!(covers(&live, &wanted));
        let mut scaled = live.clone();
        scaled["spec"]["replicas"] = json!(0);
        assert!(!covers(&scaled, &wanted), "a changed field is put back");
        let mut more_ports = live.clone();
        more_ports["spec"]["ports"] = json!([{"port": 8000}, {"port": 9000}]);
        assert!(!covers(&more_ports, &wanted));
        let mut unlabelled = live;
        unlabelled["metadata"]["labels"] = json!({"y": "2"});
        assert!(!covers(&unlabelled, &wanted));
    }
}
