//! Reconcile tests for every object store a LabelJob can name: a job on `az://` or `gs://`
//! (the samples `labeljob-azure.yaml`, `labeljob-gcs.yaml`) and one that reads from one store
//! and writes to another, each with its credentials Secret. Every pod that touches the store
//! (plan, shards, merge) gets the Secret as `envFrom`, so its keys (`AZURE_STORAGE_*`,
//! `GOOGLE_SERVICE_ACCOUNT_KEY`, `AWS_*`) are the variables the worker reads; a job without
//! credentials gets no `envFrom` (workload identity). The inference pod gets none unless its
//! model is in object storage. That the same Secret's keys configure the operator's progress
//! reader against real servers is `progress/store_tests.rs`. No Secret value is ever copied into
//! a child, a status or an Event.

use labeljob_api::Phase;
use labeljob_api::v1alpha1::CredentialsSpec;
use serde_json::{Value, json};

use super::tests::Harness;
use crate::fixtures::sample;

/// The `envFrom` Secret names of the first container of the pod template of `obj`.
fn secret_refs(obj: &Value) -> Vec<String> {
    obj["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        .as_array()
        .map(|refs| refs.iter().filter_map(|r| r["secretRef"]["name"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// Drive `h` through plan, shards and merge; the Secrets each store-touching Job got.
async fn secrets_of_each_job(h: &Harness) -> Vec<(&'static str, Vec<String>)> {
    h.to_running().await;
    h.complete("shards");
    h.pass().await.expect("merging");
    assert_eq!(h.phase(), Some(Phase::Merging));
    ["plan", "shards", "merge"].into_iter().map(|j| (j, secret_refs(&h.fake.object(&h.job(j))))).collect()
}

#[tokio::test]
async fn azure_job_maps_its_secret_into_every_store_pod() {
    let h = Harness::new(sample("labeljob-azure.yaml"));
    let want = vec!["azure-credentials".to_string()];
    for (job, secrets) in secrets_of_each_job(&h).await {
        assert_eq!(secrets, want, "{job} Job");
    }
    let job_file =
        h.fake.object(&h.config_map())["data"]["job.yaml"].as_str().unwrap_or_default().to_string();
    assert!(job_file.contains("uri: az://photos/incoming/"), "{job_file}");
    assert!(secret_refs(&h.fake.object(&h.deployment())).is_empty(), "builtin model: no credentials");
    h.fake.assert_requests_allowed_by_rbac();
}

#[tokio::test]
async fn gcs_job_maps_its_secret_into_every_store_pod() {
    let h = Harness::new(sample("labeljob-gcs.yaml"));
    for (job, secrets) in secrets_of_each_job(&h).await {
        assert_eq!(secrets, ["gcs-credentials"], "{job} Job");
    }
}

#[tokio::test]
async fn input_and_output_in_different_stores_get_both_secrets() {
    let mut lj = sample("labeljob-azure.yaml");
    lj.spec.output.uri = "gs://labels/from-azure/".into();
    lj.spec.output.credentials = Some(CredentialsSpec { secret_name: "gcs-credentials".into() });
    // a model in object storage: the inference pod reads it with the job's credentials
    lj.spec.model = serde_json::from_value(json!({"uri": "az://models/ssd.onnx", "format": "ssd-tflite",
        "inputSize": {"width": 300, "height": 300}}))
    .expect("model");
    let h = Harness::new(lj);
    for (job, secrets) in secrets_of_each_job(&h).await {
        assert_eq!(secrets, ["azure-credentials", "gcs-credentials"], "{job} Job: input's, then output's");
    }
    assert_eq!(secret_refs(&h.fake.object(&h.deployment())), ["azure-credentials", "gcs-credentials"]);
}

#[tokio::test]
async fn no_credentials_means_no_env_from_for_workload_identity() {
    let mut lj = sample("labeljob-gcs.yaml");
    lj.spec.input.credentials = None;
    lj.spec.output.credentials = None;
    let h = Harness::new(lj);
    for (job, secrets) in secrets_of_each_job(&h).await {
        assert!(secrets.is_empty(), "{job} Job: {secrets:?}");
        let pod = &h.fake.object(&h.job(job))["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], json!("labeljob-worker"), "the identity to bind");
    }
}

#[tokio::test]
async fn secret_values_never_reach_children_or_events() {
    let h = Harness::new(sample("labeljob-azure.yaml"));
    let key = "c2VjcmV0LWFjY291bnQta2V5LXZhbHVlLTEyMzQ1Njc4OTA=";
    h.fake.insert(
        &format!("/api/v1/namespaces/{}/secrets/azure-credentials", super::tests::NS),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "azure-credentials"},
               "stringData": {"AZURE_STORAGE_ACCOUNT_NAME": "photosacct", "AZURE_STORAGE_ACCOUNT_KEY": key}}),
    );
    secrets_of_each_job(&h).await;
    h.complete("merge");
    h.pass().await.expect("succeeds");
    assert_eq!(h.phase(), Some(Phase::Succeeded));
    // the pods get the Secret by reference only: no value is copied into what the operator writes
    for r in h.fake.requests().iter().filter(|r| !r.path.contains("/secrets/")) {
        let body = r.body.to_string();
        assert!(
            !body.contains(key) && !body.contains("photosacct"),
            "{} {} carries a Secret value",
            r.method,
            r.path
        );
    }
}
