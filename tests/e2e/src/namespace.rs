//! `with_temp_ns`: run one test in a fresh, randomly named namespace on the prepared cluster and
//! delete the namespace afterwards, whether the test passed, failed or panicked. The namespace
//! gets what a user's namespace needs for LabelJobs: the `labeljob-worker` ServiceAccount
//! (what the chart's `workerNamespaces` creates), with no API token and no permissions.
//!
//! On failure the namespace's objects and the operator's log tail are printed first.
//! `LABELJOB_E2E_KEEP_NS=1` keeps failed namespaces for inspection.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use crate::cluster::{RELEASE, RELEASE_NAMESPACE};
use crate::{Cluster, Result, unique_name};

/// Label on every namespace the tests create (to clean up leftovers by hand).
pub const E2E_LABEL: &str = "labeljob.dev/e2e";
/// The worker ServiceAccount every LabelJob namespace needs.
pub const WORKER_SERVICE_ACCOUNT: &str = "labeljob-worker";

/// Run `test(client, namespace)` in a temporary namespace; panics with the error when the test
/// returns one, after cleaning up.
pub async fn with_temp_ns<F, Fut>(test: F)
where
    F: FnOnce(Client, String) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let cluster = match Cluster::get().await {
        Ok(c) => c,
        Err(e) => panic!("preparing the cluster failed: {e}"),
    };
    let client = match cluster.client().await {
        Ok(c) => c,
        Err(e) => panic!("no client for {}: {e}", cluster.context),
    };
    let ns = unique_name("labeljob-e2e");
    if let Err(e) = create(&client, &ns).await {
        panic!("creating namespace {ns}: {e}");
    }

    let outcome = AssertUnwindSafe(test(client.clone(), ns.clone())).catch_unwind().await;
    let failed = !matches!(outcome, Ok(Ok(())));
    if failed {
        dump(&cluster, &ns).await;
    }
    if failed && std::env::var("LABELJOB_E2E_KEEP_NS").as_deref() == Ok("1") {
        eprintln!("keeping namespace {ns} (LABELJOB_E2E_KEEP_NS=1)");
    } else if let Err(e) = Api::<Namespace>::all(client).delete(&ns, &DeleteParams::background()).await {
        eprintln!("deleting namespace {ns}: {e}");
    }
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("test in namespace {ns} failed: {e}"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

async fn create(client: &Client, ns: &str) -> Result<()> {
    let namespace: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ns, "labels": {E2E_LABEL: "true"}},
    }))?;
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await?;
    let sa: ServiceAccount = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": WORKER_SERVICE_ACCOUNT, "labels": {E2E_LABEL: "true"}},
        "automountServiceAccountToken": false,
    }))?;
    Api::<ServiceAccount>::namespaced(client.clone(), ns).create(&PostParams::default(), &sa).await?;
    Ok(())
}

/// Print what is in the namespace and what the operator said, for the CI log.
async fn dump(cluster: &Cluster, ns: &str) {
    let deploy = format!("deployment/{RELEASE}-operator");
    let steps: [&[&str]; 4] = [
        &["get", "labeljobs,deployments,services,jobs,pods,configmaps", "-n", ns, "-o", "wide"],
        &["get", "labeljobs", "-n", ns, "-o", "yaml"],
        &["get", "events", "-n", ns, "--sort-by", ".lastTimestamp"],
        &["logs", "-n", RELEASE_NAMESPACE, &deploy, "--tail", "200"],
    ];
    for args in steps {
        match cluster.kubectl(args).await {
            Ok(out) => eprintln!("$ kubectl {}\n{out}", args.join(" ")),
            Err(e) => eprintln!("$ kubectl {}: {e}", args.join(" ")),
        }
    }
}
