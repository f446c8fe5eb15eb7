//! `s3://` against a real S3 server: Ceph's RADOS Gateway on 127.0.0.1, started by this test
//! with `scripts/s3-server.sh` and stopped (by the PIDs in its directory) when the guard
//! drops, also on panic. Covers put/get/head/list/delete, put_if_absent (412 → `false`, one
//! winner under concurrency), multipart `put_file`, plan and input fetch, progress objects, and
//! a wrong secret refused naming the URI and the credentials, not their values.
//!
//! Run: `cargo test -p labeljob-store -- --include-ignored` (needs `scripts/s3-server.sh install`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use bytes::Bytes;
use labeljob_api::v1alpha1::InputSpec;
use labeljob_store::location::MULTIPART_PART_SIZE;
use labeljob_store::{
    InputSource, Location, Manifest, ShardProgress, StoreError, StoreOptions, layout, plan, read_progress,
    write_progress,
};

/// A running radosgw; stopped on drop.
struct S3Server {
    script: PathBuf,
    dir: tempfile::TempDir,
    /// `AWS_*` and `S3_BUCKET` from the server's `env` file.
    vars: BTreeMap<String, String>,
}

impl S3Server {
    fn start() -> S3Server {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/s3-server.sh");
        let dir = tempfile::Builder::new().prefix("labeljob-s3-").tempdir().expect("tempdir");
        // the guard exists before the start, so a half-started cluster is stopped too
        let mut server = S3Server { script, dir, vars: BTreeMap::new() };
        let status = Command::new("bash").arg(&server.script).arg("start").arg(server.dir.path()).status();
        assert!(status.as_ref().is_ok_and(|s| s.success()), "s3-server.sh start failed: {status:?}");
        let env = std::fs::read_to_string(server.dir.path().join("env")).expect("env file");
        server.vars = env
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        server
    }

    fn bucket(&self) -> &str {
        self.vars.get("S3_BUCKET").map(String::as_str).unwrap_or("labeljob")
    }

    /// Options from the server's variables only (the process environment is not read).
    fn options(&self) -> StoreOptions {
        StoreOptions::from_vars(self.vars.iter().filter(|(k, _)| k.starts_with("AWS_")))
    }

    fn location(&self, prefix: &str) -> Location {
        Location::parse_with(&format!("s3://{}/{prefix}", self.bucket()), &self.options())
            .expect("s3 location")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let stopped = Command::new("bash").arg(&self.script).arg("stop").arg(self.dir.path()).status();
        if !stopped.is_ok_and(|s| s.success()) {
            // last resort: the daemons' PIDs from the env file
            for key in ["CEPH_RGW_PID", "CEPH_OSD_PID", "CEPH_MON_PID"] {
                if let Some(pid) = self.vars.get(key) {
                    let _ = Command::new("kill").arg("-KILL").arg(pid).status();
                }
            }
        }
    }
}

async fn location_operations(server: &S3Server) {
    let loc = server.location("ops/");
    assert_eq!(loc.uri(), format!("s3://{}/ops", server.bucket()));
    let err = loc.get("absent.json").await.expect_err("absent");
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(loc.get_opt("absent.json").await.expect("get_opt"), None);
    assert!(loc.list("").await.expect("empty list").is_empty());

    loc.put("a.json", Bytes::from_static(b"{\"a\":1}")).await.expect("put");
    loc.put("dir/b.bin", Bytes::from(vec![9u8; 2048])).await.expect("put nested");
    loc.put("dir/sub/c.bin", Bytes::from_static(b"c")).await.expect("put deeper");
    assert_eq!(loc.get("a.json").await.expect("get").as_ref(), b"{\"a\":1}");
    let head = loc.head("dir/b.bin").await.expect("head");
    assert_eq!(head.size, 2048);
    assert!(head.etag.is_some());

    let all: Vec<_> = loc.list("").await.expect("list").into_iter().map(|o| (o.key, o.size)).collect();
    assert_eq!(all, vec![("a.json".into(), 7), ("dir/b.bin".into(), 2048), ("dir/sub/c.bin".into(), 1)]);
    let dir: Vec<_> = loc.list("dir/").await.expect("list dir").into_iter().map(|o| o.key).collect();
    assert_eq!(dir, vec!["dir/b.bin", "dir/sub/c.bin"]);

    loc.put("a.json", Bytes::from_static(b"v2")).await.expect("overwrite");
    assert_eq!(loc.get("a.json").await.expect("get v2").as_ref(), b"v2");
    loc.delete("a.json").await.expect("delete");
    loc.delete("a.json").await.expect("delete missing");
    assert_eq!(loc.get_opt("a.json").await.expect("get_opt"), None);

    // a sibling prefix is invisible
    let other = server.location("ops-other");
    other.put("x.json", Bytes::from_static(b"x")).await.expect("put other");
    assert_eq!(loc.list("").await.expect("list").len(), 2);
}

async fn put_if_absent_semantics(server: &S3Server) {
    let loc = server.location("cas");
    assert!(loc.put_if_absent("m.jsonl", Bytes::from_static(b"first")).await.expect("create"));
    assert!(!loc.put_if_absent("m.jsonl", Bytes::from_static(b"second")).await.expect("412 → false"));
    assert_eq!(loc.get("m.jsonl").await.expect("get").as_ref(), b"first");

    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let loc = loc.clone();
            tokio::spawn(async move { loc.put_if_absent("race.json", Bytes::from(format!("w{i}"))).await })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        if task.await.expect("join").expect("put_if_absent") {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(loc.get("race.json").await.expect("get").as_ref(), format!("w{}", winners[0]).as_bytes());
}

async fn multipart_put_file(server: &S3Server) {
    let loc = server.location("big");
    let tmp = tempfile::tempdir().expect("tempdir");
    let len = MULTIPART_PART_SIZE * 2 + 4321;
    let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
    let path = tmp.path().join("annotations.json");
    std::fs::write(&path, &data).expect("write");
    assert_eq!(loc.put_file("annotations.json", &path).await.expect("put_file"), len as u64);
    let head = loc.head("annotations.json").await.expect("head");
    assert_eq!(head.size, len as u64);
    // S3 gives multipart objects an etag "<md5 of part md5s>-<parts>"
    let etag = head.etag.unwrap_or_default();
    assert!(etag.trim_matches('"').ends_with("-3"), "multipart etag with 3 parts: {etag}");
    assert!(loc.get("annotations.json").await.expect("get").as_ref() == data.as_slice());

    let small = tmp.path().join("small.json");
    std::fs::write(&small, b"{}").expect("write");
    assert_eq!(loc.put_file("report.json", &small).await.expect("small put_file"), 2);
    let etag = loc.head("report.json").await.expect("head").etag.unwrap_or_default();
    assert!(!etag.contains('-'), "single PUT etag: {etag}");
}

async fn plan_input_and_progress(server: &S3Server) {
    let images = server.location("images");
    for key in ["b.jpg", "a.PNG", "nested/c.jpeg", "nested/skip.jpg", "notes.txt"] {
        images.put(key, Bytes::from(format!("image {key}"))).await.expect("put image");
    }
    let spec = InputSpec {
        uri: format!("s3://{}/images/", server.bucket()),
        include: Vec::new(),
        exclude: vec!["**/skip.*".into()],
        credentials: None,
        max_images: None,
        allow_private_networks: false,
        dedup: Default::default(),
        timeouts: Default::default(),
    };
    let input = InputSource::with_options(&spec, &server.options()).expect("input");
    let output = server.location("jobs/one");
    let manifest = plan(&input, &output).await.expect("plan");
    let keys: Vec<_> = manifest.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, vec!["a.PNG", "b.jpg", "nested/c.jpeg"]);
    assert_eq!(manifest.entries[2].uri, format!("s3://{}/images/nested/c.jpeg", server.bucket()));
    assert!(manifest.entries.iter().all(|e| e.size.is_some() && e.etag.is_some()));
    let stored = output.get(layout::MANIFEST).await.expect("manifest.jsonl");
    assert_eq!(Manifest::from_jsonl(&stored).expect("parse"), manifest);

    // frozen: a new image does not change a re-plan
    images.put("0.jpg", Bytes::from_static(b"late")).await.expect("put late");
    assert_eq!(plan(&input, &output).await.expect("re-plan"), manifest);
    let fetched = input.fetch(&manifest.entries[1]).await.expect("fetch");
    assert_eq!(fetched.as_ref(), b"image b.jpg");

    write_progress(
        &output,
        &ShardProgress { index: 1, total: 2, processed: 1, failed: 0, elapsed_seconds: 0.5, done: false },
    )
    .await
    .expect("write progress");
    let progress = read_progress(&output, 2).await.expect("read progress");
    assert_eq!(progress[0], None);
    assert_eq!(progress[1].as_ref().map(|p| p.processed), Some(1));
}

async fn explicit_options_and_bad_credentials(server: &S3Server) {
    // an http:// endpoint allows plain HTTP even without AWS_ALLOW_HTTP
    let mut vars = server.vars.clone();
    vars.remove("AWS_ALLOW_HTTP");
    let opts = StoreOptions::from_vars(vars.iter().filter(|(k, _)| k.starts_with("AWS_")));
    let loc = Location::parse_with(&format!("s3://{}/http", server.bucket()), &opts).expect("location");
    loc.put("ok.txt", Bytes::from_static(b"ok")).await.expect("put over http");

    vars.insert("AWS_SECRET_ACCESS_KEY".into(), "wrong-secret".into());
    let opts = StoreOptions::from_vars(vars.iter().filter(|(k, _)| k.starts_with("AWS_")));
    let bad = Location::parse_with(&format!("s3://{}/http", server.bucket()), &opts).expect("location");
    let err = bad.get("ok.txt").await.expect_err("signature mismatch");
    assert!(matches!(err, StoreError::Denied { op: "get", .. }), "{err:?}");
    let text = labeljob_api::error_chain(&err);
    assert!(text.contains(&format!("s3://{}/http/ok.txt", server.bucket())), "{text}");
    assert!(text.contains("static keys AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY"), "{text}");
    assert!(
        !text.contains("wrong-secret") && !text.contains(server.vars["AWS_SECRET_ACCESS_KEY"].as_str()),
        "{text}"
    );
}

#[test]
#[ignore = "needs radosgw (scripts/s3-server.sh); run by make test"]
fn s3_against_radosgw() {
    let server = S3Server::start();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        location_operations(&server).await;
        put_if_absent_semantics(&server).await;
        multipart_put_file(&server).await;
        plan_input_and_progress(&server).await;
        explicit_options_and_bad_credentials(&server).await;
    });
}
