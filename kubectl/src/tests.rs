//! The plugin without a cluster: its arguments, and each command against the operator's fake
//! apiserver with a `file://` output store (progress files, a merged annotations.json of the
//! fixture photos).

use std::path::{Path, PathBuf};

use clap::Parser;
use labeljob_operator::fixtures::{FakeApiServer, labeljob_path, sample, stored};
use serde_json::json;

use super::*;

const NS: &str = "team-a";

fn parse(args: &[&str]) -> Result<Args, clap::Error> {
    Args::try_parse_from(std::iter::once("kubectl-labeljob").chain(args.iter().copied()))
}

#[test]
fn arguments_parse_like_a_kubectl_plugin() {
    let a = parse(&["-n", "ns", "logs", "photos", "--shard", "3", "--tail", "20"]).expect("parses");
    assert_eq!(a.namespace.as_deref(), Some("ns"));
    assert_eq!(
        a.command,
        Command::Logs { name: "photos".into(), shard: Some(3), tail: Some(20), previous: false }
    );
    let a = parse(&["status", "photos", "--namespace", "other", "--context", "kind-x"])
        .expect("global flags after");
    assert_eq!((a.namespace.as_deref(), a.context.as_deref()), (Some("other"), Some("kind-x")));
    assert_eq!(a.command, Command::Status { name: "photos".into() });
    let a = parse(&["preview", "photos"]).expect("defaults");
    assert_eq!(
        a.command,
        Command::Preview {
            name: "photos".into(),
            out: PathBuf::from("preview.png"),
            max_images: 24,
            tile: 320
        }
    );
    assert!(parse(&["logs", "photos", "--shard", "x"]).is_err(), "a shard is a number");
    assert!(parse(&["frobnicate", "photos"]).is_err());
    let help = parse(&["--help"]).expect_err("help").to_string();
    assert!(
        help.contains("kubectl labeljob") && help.contains("status") && help.contains("preview"),
        "{help}"
    );
}

/// The minimal sample, in `NS`, writing to `out`, with this status.
fn labeljob(fake: &FakeApiServer, out: &Path, status: serde_json::Value) -> String {
    let mut lj = stored(sample("labeljob-minimal.yaml"), NS);
    lj.spec.output.uri = format!("file://{}", out.display());
    let name = lj.metadata.name.clone().expect("name");
    let mut obj = serde_json::to_value(&lj).expect("json");
    obj["status"] = status;
    fake.insert(&labeljob_path(NS, &name), obj);
    name
}

fn photos() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/photos")
}

#[tokio::test]
async fn status_shows_each_shard_from_the_output_store() {
    let (fake, client) = FakeApiServer::start();
    let out = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(out.path().join("progress")).expect("mkdir");
    for (i, processed, done) in [(0, 300, true), (2, 55, false)] {
        let p = json!({"index": i, "total": 300, "processed": processed, "failed": 1, "elapsedSeconds": 10.0, "done": done});
        std::fs::write(out.path().join(format!("progress/shard-{i:05}.json")), p.to_string())
            .expect("progress");
    }
    let name = labeljob(
        &fake,
        out.path(),
        json!({"phase": "Running", "progress": "355/1200",
               "images": {"total": 1200, "processed": 355, "failed": 2},
               "shards": {"total": 4, "succeeded": 1, "failed": 0, "active": 2},
               "imagesPerSecond": 35.5, "eta": "24s", "model": "ssd-mobilenet-v2-coco",
               "gpuSeconds": 5400.0, "estimatedCost": 3.72,
               "conditions": [{"type": "ShardsComplete", "status": "False", "reason": "InProgress",
                   "message": "1/4 shards done, 2 running", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
    );
    // The job's credentials Secret is read as the operator reads it.
    fake.insert(
        &format!("/api/v1/namespaces/{NS}/secrets/photos-s3"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "photos-s3"}, "stringData": {"AWS_REGION": "eu-west-1"}}),
    );
    let text = run(&client, NS, Command::Status { name: name.clone() }).await.expect("status");
    println!("{text}");
    assert!(text.starts_with("LabelJob team-a/street-photos: Running\n"), "{text}");
    assert!(text.contains("355/1200 images, 2 failed   35.5 img/s   ETA 24s"), "{text}");
    assert!(text.contains("shards    1/4 done, 2 running, 0 failed"), "{text}");
    assert!(text.contains("5400 GPU-seconds (1.50 GPU-hours), estimated cost 3.72"), "{text}");
    assert!(text.contains("ShardsComplete  False  InProgress  1/4 shards done, 2 running"), "{text}");
    let rows: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("SHARD ")).skip(1).collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert_eq!(rows[0], "0      300/300          1       30.0    done");
    assert_eq!(rows[1], "1      -                -       -       not started");
    assert_eq!(rows[2], "2      55/300           1       5.5     running");
    assert!(fake.requests().iter().any(|r| r.path.ends_with("/secrets/photos-s3")), "Secret read");

    // Without the Secret the status is still shown, and says why the shards are not.
    let (fake, client) = FakeApiServer::start();
    let name = labeljob(&fake, out.path(), json!({"phase": "Provisioning"}));
    let text = run(&client, NS, Command::Status { name }).await.expect("status");
    assert!(text.contains("LabelJob team-a/street-photos: Provisioning"), "{text}");
    assert!(text.contains("SHARDS: cannot read their progress") && text.contains("photos-s3"), "{text}");

    let err = run(&client, NS, Command::Status { name: "nope".into() }).await.expect_err("missing");
    assert_eq!(err.to_string(), "there is no LabelJob \"nope\" in namespace team-a");
}

fn pod(fake: &FakeApiServer, name: &str, component: &str, index: Option<u32>, created: &str, log: &str) {
    let mut annotations = serde_json::Map::new();
    if let Some(i) = index {
        annotations.insert(logs::COMPLETION_INDEX.into(), json!(i.to_string()));
    }
    let path = format!("/api/v1/namespaces/{NS}/pods/{name}");
    fake.insert(
        &path,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "creationTimestamp": created,
            "labels": {"labeljob.dev/job": "street-photos", "app.kubernetes.io/component": component},
            "annotations": annotations}, "spec": {"containers": [{"name": component}]}}),
    );
    fake.set_log(&path, log);
}

#[tokio::test]
async fn logs_of_one_shard_are_its_latest_pod() {
    let (fake, client) = FakeApiServer::start();
    let out = tempfile::tempdir().expect("tmp");
    let name = labeljob(&fake, out.path(), json!({"phase": "Running"}));
    pod(&fake, "street-photos-plan-x", "plan", None, "2026-01-01T00:00:00Z", "planned 1200 images\n");
    pod(&fake, "street-photos-shards-1-a", "shard", Some(1), "2026-01-01T00:01:00Z", "first try\n");
    pod(&fake, "street-photos-shards-1-b", "shard", Some(1), "2026-01-01T00:05:00Z", "shard 1: resumed 40");
    pod(&fake, "street-photos-shards-2-a", "shard", Some(2), "2026-01-01T00:01:00Z", "shard 2\n");
    let shard = |n| Command::Logs { name: name.clone(), shard: Some(n), tail: Some(50), previous: false };
    let text = run(&client, NS, shard(1)).await.expect("logs");
    assert_eq!(text, "shard 1: resumed 40\n", "the retry's log, no header");
    let log_request = fake.requests().into_iter().rfind(|r| r.path.ends_with("/log")).expect("log GET");
    assert!(log_request.path.ends_with("/pods/street-photos-shards-1-b/log"), "{}", log_request.path);
    assert!(log_request.query.contains("tailLines=50"), "{}", log_request.query);
    let all = Command::Logs { name: name.clone(), shard: None, tail: None, previous: false };
    let text = run(&client, NS, all).await.expect("logs");
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("==> ")).collect();
    assert_eq!(headers.len(), 4, "{text}");
    assert_eq!(headers[0], "==> street-photos-plan-x <==", "oldest first");
    assert!(text.contains("planned 1200 images\n"));
    let err = run(&client, NS, shard(7)).await.expect_err("no such shard pod");
    assert!(err.to_string().contains("has no shard 7 pod"), "{err}");
}

#[tokio::test]
async fn preview_draws_the_merged_annotations() {
    let (fake, client) = FakeApiServer::start();
    let out = tempfile::tempdir().expect("tmp");
    let dog = format!("file://{}", photos().join("dog.jpg").canonicalize().expect("fixture").display());
    let coco = json!({
        "images": [{"id": 1, "file_name": dog, "width": 768, "height": 576}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 18, "bbox": [130.0, 220.0, 180.0, 320.0],
                         "area": 57600.0, "iscrowd": 0, "score": 0.9}],
        "categories": [{"id": 18, "name": "dog"}]
    });
    std::fs::write(out.path().join("annotations.json"), coco.to_string()).expect("annotations");
    let name = labeljob(&fake, out.path(), json!({"phase": "Succeeded"}));
    let png = out.path().join("sheet.png");
    let cmd = Command::Preview { name, out: png.clone(), max_images: 4, tile: 160 };
    let text = run(&client, NS, cmd).await.expect("preview");
    assert!(text.starts_with(&format!("wrote {} (1 images from file://", png.display())), "{text}");
    let bytes = std::fs::read(&png).expect("png written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 1000, "an image was drawn");
}
