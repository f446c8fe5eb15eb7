//! Shared by the store tests against real servers (`azure.rs`, `gcs.rs`): a server started by
//! one of the `scripts/*-server.sh` scripts in a temporary directory and stopped (by the PID in
//! that directory) when the guard drops, also on panic; and the checks that every object store
//! must pass the same way (operations, put-if-absent, plan + fetch + progress, big uploads).

#![allow(dead_code)] // each test crate uses a part

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use bytes::Bytes;
use labeljob_api::v1alpha1::InputSpec;
use labeljob_store::location::MULTIPART_PART_SIZE;
use labeljob_store::{
    InputSource, Location, Manifest, ShardProgress, StoreOptions, layout, plan, read_progress, write_progress,
};

/// A running test server; stopped on drop.
pub struct ScriptServer {
    script: PathBuf,
    dir: tempfile::TempDir,
    /// What the script's `env` file exports.
    pub vars: BTreeMap<String, String>,
    /// The variable of `vars` that holds the server's PID (the last resort of `drop`).
    pid_var: &'static str,
}

impl ScriptServer {
    /// Run `scripts/<script> start DIR` and read `DIR/env`; panics with the script's
    /// message when the server is not installed or does not start.
    pub fn start(script: &str, pid_var: &'static str) -> ScriptServer {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts").join(script);
        let dir = tempfile::Builder::new().prefix("labeljob-store-").tempdir().expect("tempdir");
        // the guard exists before the start, so a half-started server is stopped too
        let mut server = ScriptServer { script, dir, vars: BTreeMap::new(), pid_var };
        let out = Command::new("bash").arg(&server.script).arg("start").arg(server.dir.path()).output();
        let ok = out.as_ref().is_ok_and(|o| o.status.success());
        let stderr =
            out.as_ref().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_default();
        assert!(ok, "{} start failed ({out:?}): {stderr}", server.script.display());
        let env = std::fs::read_to_string(server.dir.path().join("env")).expect("env file");
        server.vars = env
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
        server
    }

    /// A variable of the `env` file; panics when the script did not write it.
    pub fn var(&self, key: &str) -> &str {
        self.vars.get(key).map(String::as_str).unwrap_or_else(|| panic!("{key} not in the env file"))
    }

    /// Options from those of the server's variables that start with `prefix` (the process
    /// environment is not read), plus `extra`.
    pub fn options(&self, prefix: &str, extra: &[(&str, &str)]) -> StoreOptions {
        let mut vars: Vec<(String, String)> = self
            .vars
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        StoreOptions::from_vars(vars)
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        let stopped = Command::new("bash").arg(&self.script).arg("stop").arg(self.dir.path()).status();
        if !stopped.is_ok_and(|s| s.success())
            && let Some(pid) = self.vars.get(self.pid_var)
        {
            let _ = Command::new("kill").arg("-KILL").arg(pid).status();
        }
    }
}

/// put/get/head/list/delete under `loc` (an empty prefix), `sibling` a prefix next to it.
pub async fn location_operations(loc: &Location, sibling: &Location) {
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

    sibling.put("x.json", Bytes::from_static(b"x")).await.expect("put sibling");
    assert_eq!(loc.list("").await.expect("list").len(), 2, "a sibling prefix is invisible");
}

/// `put_if_absent`: `true` once, `false` after, the first content kept; exactly one winner
/// among 16 concurrent writers.
pub async fn put_if_absent_semantics(loc: &Location) {
    assert!(loc.put_if_absent("m.jsonl", Bytes::from_static(b"first")).await.expect("create"));
    assert!(!loc.put_if_absent("m.jsonl", Bytes::from_static(b"second")).await.expect("exists → false"));
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

/// `put_file` of a file over two multipart parts and of a small one; the bytes read back.
pub async fn multipart_put_file(loc: &Location) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let len = MULTIPART_PART_SIZE * 2 + 4321;
    let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
    let path = tmp.path().join("annotations.json");
    std::fs::write(&path, &data).expect("write");
    assert_eq!(loc.put_file("annotations.json", &path).await.expect("put_file"), len as u64);
    assert_eq!(loc.head("annotations.json").await.expect("head").size, len as u64);
    assert!(loc.get("annotations.json").await.expect("get").as_ref() == data.as_slice());

    let small = tmp.path().join("small.json");
    std::fs::write(&small, b"{}").expect("write");
    assert_eq!(loc.put_file("report.json", &small).await.expect("small put_file"), 2);
    assert_eq!(loc.get("report.json").await.expect("get").as_ref(), b"{}");
}

/// Plan an input of `images_uri` (listed with an include and an exclude glob) into `output`,
/// fetch one image, write and read progress.
pub async fn plan_input_and_progress(images_uri: &str, options: &StoreOptions, output: &Location) {
    let images = Location::parse_with(images_uri, options).expect("images location");
    for key in ["b.jpg", "a.PNG", "nested/c.jpeg", "nested/skip.jpg", "notes.txt", "other/d.jpg"] {
        images.put(key, Bytes::from(format!("image {key}"))).await.expect("put image");
    }
    let spec = InputSpec {
        uri: format!("{images_uri}/"),
        include: vec!["*.{jpg,PNG}".into(), "nested/**".into()],
        exclude: vec!["**/skip.*".into()],
        credentials: None,
        max_images: None,
        allow_private_networks: false,
        dedup: Default::default(),
        timeouts: Default::default(),
    };
    let input = InputSource::with_options(&spec, options).expect("input");
    let manifest = plan(&input, output).await.expect("plan");
    let keys: Vec<_> = manifest.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, vec!["a.PNG", "b.jpg", "nested/c.jpeg"]);
    assert_eq!(manifest.entries[2].uri, format!("{images_uri}/nested/c.jpeg"));
    assert!(manifest.entries.iter().all(|e| e.size.is_some() && e.etag.is_some()));
    let stored = output.get(layout::MANIFEST).await.expect("manifest.jsonl");
    assert_eq!(Manifest::from_jsonl(&stored).expect("parse"), manifest);

    // frozen: a new image does not change a re-plan
    images.put("0.jpg", Bytes::from_static(b"late")).await.expect("put late");
    assert_eq!(plan(&input, output).await.expect("re-plan"), manifest);
    let fetched = input.fetch(&manifest.entries[1]).await.expect("fetch");
    assert_eq!(fetched.as_ref(), b"image b.jpg");

    let progress =
        ShardProgress { index: 1, total: 2, processed: 1, failed: 0, elapsed_seconds: 0.5, done: false };
    write_progress(output, &progress).await.expect("write progress");
    let read = read_progress(output, 2).await.expect("read progress");
    assert_eq!(read[0], None);
    assert_eq!(read[1].as_ref().map(|p| p.processed), Some(1));
}

/// An error and all its causes, as the `labeljob` binary prints them.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    labeljob_api::error_chain(err)
}
