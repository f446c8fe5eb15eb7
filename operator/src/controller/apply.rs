//! Step 5 — apply, and teardown: the steps that write children, row by row of the child table
//! (`children.rs`). Server-side apply of each wanted child under the one field manager
//! `labeljob-operator` (forced: the operator owns these fields) — only when the live child
//! (from the watch cache) lacks it or differs from it in a field the operator sets ([`covers`]:
//! fields the apiserver or other controllers add do not count), so a steady pass writes nothing
//! and a child edited by hand is put back. Applying is idempotent, so a restarted operator never
//! creates duplicates. Teardown deletes the children that exist, in the reverse of apply order
//! (Jobs with propagationPolicy Background so their pods go too, then the Deployment, the
//! Service, the ConfigMap), when a job ends with the `Delete` policy, and from the finalizer
//! when the LabelJob is deleted mid-run; a child already gone is fine, one already deleted by
//! this process (still in a lagging cache) is not deleted again; the LabelJob and the output
//! are never touched.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::children::{ChildObject, Kind, Object, Objects};
use crate::FIELD_MANAGER;
use crate::error::{Error, Result};

async fn ssa<K>(client: &Client, ns: &str, obj: K) -> Result<()>
where
    K: ChildObject<Scope = NamespaceResourceScope> + Serialize + DeserializeOwned + Clone + std::fmt::Debug,
{
    let (kind, name) = (K::KIND.as_str(), obj.meta().name.clone().unwrap_or_default());
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

/// Server-side apply of one child, whatever its kind.
async fn ssa_object(client: &Client, ns: &str, obj: Object) -> Result<()> {
    match obj {
        Object::ConfigMap(o) => ssa(client, ns, *o).await,
        Object::Job(o) => ssa(client, ns, *o).await,
        Object::Deployment(o) => ssa(client, ns, *o).await,
        Object::Service(o) => ssa(client, ns, *o).await,
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
fn differs(live: Option<&Object>, wanted: &Object) -> bool {
    let Some(live) = live else { return true };
    match (serde_json::to_value(live), serde_json::to_value(wanted)) {
        (Ok(l), Ok(w)) => !covers(&l, &w),
        _ => true,
    }
}

/// Apply the `children` that `live` lacks or shows differently, in namespace `ns`, in the
/// table's apply order (the ConfigMap first: pods mount it). Returns how many were applied.
pub async fn apply(client: &Client, ns: &str, children: Objects, live: &Objects) -> Result<usize> {
    let mut applied = 0;
    for (c, obj) in children.into_present() {
        if differs(live[c].as_ref(), &obj) {
            ssa_object(client, ns, obj).await?;
            applied += 1;
        }
    }
    Ok(applied)
}

async fn delete<K>(client: &Client, ns: &str, name: String) -> Result<bool>
where
    K: ChildObject<Scope = NamespaceResourceScope> + DeserializeOwned + Clone + std::fmt::Debug,
{
    let kind = K::KIND.as_str();
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
/// already, which a lagging cache may still show), in teardown order; the uids deleted are
/// added to it. Returns how many were deleted.
pub async fn delete_children(
    client: &Client,
    ns: &str,
    live: &Objects,
    deleted: &mut std::collections::HashSet<String>,
) -> Result<usize> {
    let mut n = 0;
    for (c, name, uid) in live.existing() {
        if deleted.contains(&uid) {
            continue;
        }
        let gone = match c.kind() {
            Kind::ConfigMap => delete::<ConfigMap>(client, ns, name).await?,
            Kind::Job => delete::<Job>(client, ns, name).await?,
            Kind::Deployment => delete::<Deployment>(client, ns, name).await?,
            Kind::Service => delete::<Service>(client, ns, name).await?,
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
