//! LabelJob lifecycle on a real cluster: a job over the fixture photos runs to `Succeeded`
//! and its COCO output is checked, then its infrastructure is torn down; a job deleted while
//! running is torn down and its finalizer released; an invalid job is refused by the
//! apiserver's CEL rules. Run with `make e2e` (Docker + kind + kubectl + helm + curl).

use std::time::Duration;

use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client, ResourceExt};
use labeljob_api::{LabelJob, Phase, parse_labeljob};
use labeljob_e2e::wait::{children, wait_children_gone, wait_deleted, wait_for_phase};
use labeljob_e2e::{Cluster, Result, S3Server, coco, repo_root, with_temp_ns};

const PHOTOS_BUCKET: &str = "photos";
const LABELS_BUCKET: &str = "labels";
const SECRET: &str = "s3-credentials";

/// A LabelJob reading `s3://photos/<input>` and writing `s3://labels/<output>`.
fn labeljob(name: &str, input: &str, output: &str, workers: &str) -> Result<LabelJob> {
    let yaml = format!(
        r#"
apiVersion: labeljob.dev/v1alpha1
kind: LabelJob
metadata:
  name: {name}
spec:
  input:
    uri: s3://{PHOTOS_BUCKET}/{input}
    credentials: {{secretName: {SECRET}}}
  model:
    builtin: ssd-mobilenet-v2-coco
  inference:
    replicas: 1
    resources:
      requests: {{cpu: 200m, memory: 256Mi}}
      limits: {{memory: 1Gi}}
  workers:
    {workers}
    resources:
      requests: {{cpu: 100m, memory: 128Mi}}
      limits: {{memory: 512Mi}}
  output:
    uri: s3://{LABELS_BUCKET}/{output}
    credentials: {{secretName: {SECRET}}}
  maxFailedImages: 0
  teardown: {{onSuccess: Delete, onFailure: Delete}}
"#
    );
    Ok(parse_labeljob(&yaml)?)
}

/// An S3 server in `ns` with both buckets, the fixture photos under each of `prefixes`, and the
/// credentials Secret; returns the server and the photo file names.
async fn s3_with_photos(client: &Client, ns: &str, prefixes: &[&str]) -> Result<(S3Server, Vec<String>)> {
    let cluster = Cluster::get().await?;
    let s3 = S3Server::start(&cluster, client, ns).await?;
    s3.client.create_bucket(PHOTOS_BUCKET).await?;
    s3.client.create_bucket(LABELS_BUCKET).await?;
    let dir = repo_root().join("tests/fixtures/photos");
    let mut names = Vec::new();
    for prefix in prefixes {
        names = s3.client.seed_images(PHOTOS_BUCKET, prefix, &dir).await?;
    }
    s3.credentials_secret(client, SECRET).await?;
    Ok((s3, names))
}

#[tokio::test]
#[ignore = "needs Docker + kind: make e2e"]
async fn labels_the_fixture_photos_then_tears_down() {
    with_temp_ns(|client, ns| async move {
        let (s3, photos) = s3_with_photos(&client, &ns, &["in/"]).await?;
        let api: Api<LabelJob> = Api::namespaced(client.clone(), &ns);
        let lj = labeljob("photos", "in/", "out/", "shards: 2\n    concurrency: 4")?;
        api.create(&PostParams::default(), &lj).await?;

        let done = wait_for_phase(&api, "photos", &[Phase::Succeeded], Duration::from_secs(900)).await?;
        let status = done.status.as_ref().expect("a Succeeded job has a status");
        let images = status.images.expect("image counts");
        assert_eq!(images.total, photos.len() as u64, "{status:?}");
        assert_eq!(images.processed, images.total, "{status:?}");
        assert_eq!(images.failed, 0, "{status:?}");
        assert!(status.output.as_deref().is_some_and(|o| o.starts_with("s3://labels/out")), "{status:?}");
        assert!(status.completion_time.is_some(), "{status:?}");

        let annotations = s3.client.get(LABELS_BUCKET, "out/annotations.json").await?;
        let summary = coco::validate(&annotations, &photos)?;
        assert_eq!(summary.images, photos.len());
        assert!(summary.annotations > 0, "the model finds objects in the fixture photos");
        assert!((1..=90).contains(&summary.categories), "COCO categories: {summary:?}");
        let report: serde_json::Value =
            serde_json::from_slice(&s3.client.get(LABELS_BUCKET, "out/report.json").await?)?;
        assert_eq!(report["images"]["total"], photos.len());
        assert_eq!(report["images"]["failed"], 0);

        // teardown.onSuccess: Delete — every child goes, the LabelJob and the output stay.
        wait_children_gone(&client, &ns, "photos", Duration::from_secs(180)).await?;
        let kept = api.get("photos").await?;
        assert_eq!(kept.status.and_then(|s| s.phase), Some(Phase::Succeeded));
        s3.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs Docker + kind: make e2e"]
async fn deleting_a_running_job_tears_it_down() {
    with_temp_ns(|client, ns| async move {
        // Enough work that the job is still running when it is deleted: 8 copies of the photos,
        // 8 shards, one at a time.
        let prefixes = ["a/", "b/", "c/", "d/", "e/", "f/", "g/", "h/"].map(|p| format!("in/{p}"));
        let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        let (s3, _) = s3_with_photos(&client, &ns, &prefixes).await?;
        let api: Api<LabelJob> = Api::namespaced(client.clone(), &ns);
        let lj = labeljob("doomed", "in/", "doomed/", "shards: 8\n    parallelism: 1\n    concurrency: 1")?;
        api.create(&PostParams::default(), &lj).await?;

        let running = wait_for_phase(&api, "doomed", &[Phase::Running], Duration::from_secs(600)).await?;
        let uid = running.uid().expect("a stored object has a uid");
        assert!(running.finalizers().iter().any(|f| f.contains("labeljob")), "{:?}", running.finalizers());
        let before = children(&client, &ns, "doomed").await?;
        for kind in ["ConfigMap/", "Deployment/", "Service/", "Job/"] {
            assert!(before.iter().any(|c| c.starts_with(kind)), "no {kind} child while running: {before:?}");
        }

        api.delete("doomed", &DeleteParams::default()).await?;
        // The finalizer is released only after teardown; then the object goes.
        wait_deleted(&api, "doomed", &uid, Duration::from_secs(180)).await?;
        wait_children_gone(&client, &ns, "doomed", Duration::from_secs(180)).await?;
        s3.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs Docker + kind: make e2e"]
async fn the_apiserver_refuses_an_invalid_job() {
    with_temp_ns(|client, ns| async move {
        let api: Api<LabelJob> = Api::namespaced(client.clone(), &ns);
        let cases = [
            ("shards: 2\n    parallelism: 3", "workers.parallelism must not exceed workers.shards"),
            ("shards: 0", "spec.workers.shards"),
        ];
        for (workers, message) in cases {
            let lj = labeljob("invalid", "in/", "out/", workers)?;
            match api.create(&PostParams::default(), &lj).await {
                Err(kube::Error::Api(status)) => {
                    assert_eq!(status.code, 422, "{status:?}");
                    assert!(status.message.contains(message), "{message:?} not in {:?}", status.message);
                }
                other => panic!("{workers}: expected 422 Invalid, got {other:?}"),
            }
        }
        // A rule only CEL sees (two fields at once): builtin and uri together.
        let mut both = labeljob("invalid", "in/", "out/", "shards: 1")?;
        both.spec.model.uri = Some("s3://models/m.onnx".into());
        let err = api.create(&PostParams::default(), &both).await.expect_err("refused");
        assert!(err.to_string().contains("set exactly one of model.builtin and model.uri"), "{err}");
        // Nothing was stored.
        assert!(api.get_opt("invalid").await?.is_none());
        Ok(())
    })
    .await;
}
