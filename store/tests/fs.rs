//! `file://` locations and inputs end to end on a real local file system: round trips, atomic
//! replacement under concurrent readers, the put_if_absent race, multipart `put_file`, and
//! listing with globs, exclude, maxImages and sorting.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use labeljob_api::v1alpha1::InputSpec;
use labeljob_store::location::MULTIPART_PART_SIZE;
use labeljob_store::{InputSource, Location, StoreError};

fn file_uri(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}

fn spec(uri: String, include: &[&str], exclude: &[&str], max_images: Option<u64>) -> InputSpec {
    InputSpec {
        uri,
        include: include.iter().map(|s| s.to_string()).collect(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        credentials: None,
        max_images,
        allow_private_networks: false,
        dedup: Default::default(),
        timeouts: Default::default(),
    }
}

#[tokio::test]
async fn round_trip_get_head_list_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loc = Location::parse(&format!("{}/out/", file_uri(dir.path()))).expect("parse");
    assert_eq!(loc.uri(), format!("{}/out", file_uri(dir.path())), "trailing slash dropped");
    assert_eq!(loc.child_uri("a/b.json"), format!("{}/out/a/b.json", file_uri(dir.path())));

    // the directory does not exist yet: empty listing, NotFound reads
    assert!(loc.list("").await.expect("list missing dir").is_empty());
    let err = loc.get("a.json").await.expect_err("missing");
    assert!(err.is_not_found(), "{err:?}");
    assert!(matches!(&err, StoreError::NotFound { uri } if uri.ends_with("/out/a.json")));
    assert_eq!(loc.get_opt("a.json").await.expect("get_opt"), None);
    assert!(loc.head("a.json").await.expect_err("head missing").is_not_found());

    loc.put("a.json", Bytes::from_static(b"{\"a\":1}")).await.expect("put");
    loc.put("sub/dir/b.bin", Bytes::from(vec![7u8; 1000])).await.expect("put nested");
    loc.put("progress/shard-00001.json", Bytes::from_static(b"{}")).await.expect("put");
    assert_eq!(loc.get("a.json").await.expect("get").as_ref(), b"{\"a\":1}");
    assert!(dir.path().join("out/sub/dir/b.bin").is_file(), "keys map to local paths");
    let head = loc.head("sub/dir/b.bin").await.expect("head");
    assert_eq!((head.key.as_str(), head.size), ("sub/dir/b.bin", 1000));
    assert!(head.etag.is_some());

    let keys: Vec<_> = loc.list("").await.expect("list").into_iter().map(|o| o.key).collect();
    assert_eq!(keys, vec!["a.json", "progress/shard-00001.json", "sub/dir/b.bin"]);
    let progress: Vec<_> =
        loc.list("progress/").await.expect("list prefix").into_iter().map(|o| o.key).collect();
    assert_eq!(progress, vec!["progress/shard-00001.json"]);
    assert!(
        loc.list("progress/shard").await.expect("partial segment").is_empty(),
        "prefixes are directories"
    );

    loc.put("a.json", Bytes::from_static(b"replaced")).await.expect("overwrite");
    assert_eq!(loc.get("a.json").await.expect("get").as_ref(), b"replaced");
    loc.delete("a.json").await.expect("delete");
    loc.delete("a.json").await.expect("delete again is fine");
    assert_eq!(loc.get_opt("a.json").await.expect("get_opt"), None);
}

#[tokio::test]
async fn keys_cannot_escape_the_location() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loc = Location::parse(&format!("{}/inner", file_uri(dir.path()))).expect("parse");
    for key in ["../secret", "a/../../b", "a//b", "./x"] {
        let err = loc.put(key, Bytes::from_static(b"x")).await.expect_err(key);
        assert!(matches!(err, StoreError::InvalidKey { .. }), "{key}: {err:?}");
    }
    assert!(std::fs::read_dir(dir.path()).expect("read_dir").next().is_none(), "nothing written");
}

#[test]
fn invalid_uris_are_refused() {
    for uri in
        ["/tmp/x", "file://relative/x", "file:///", "ftp://h/x", "s3://", "s3:///prefix", "gs://b/a//b"]
    {
        let err = Location::parse(uri).expect_err(uri);
        assert!(
            matches!(
                err,
                StoreError::InvalidUri { .. } | StoreError::InvalidKey { .. } | StoreError::Url { .. }
            ),
            "{uri}: {err:?}"
        );
    }
}

/// Readers running while a writer alternates two large payloads must only ever see one of
/// the two complete payloads (a truncate-and-write implementation fails this).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_is_atomic_for_concurrent_readers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loc = Location::parse(&file_uri(dir.path())).expect("parse");
    const LEN: usize = 4 * 1024 * 1024;
    let payloads = [Bytes::from(vec![b'a'; LEN]), Bytes::from(vec![b'b'; LEN])];
    loc.put("big.bin", payloads[0].clone()).await.expect("first put");

    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (loc, stop) = (loc.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let mut reads = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let bytes = loc.get("big.bin").await.expect("reader get");
                assert_eq!(bytes.len(), LEN, "partial object seen");
                let first = bytes[0];
                assert!(bytes.iter().all(|b| *b == first), "mixed object seen");
                reads += 1;
            }
            reads
        }));
    }
    for i in 0..40 {
        loc.put("big.bin", payloads[i % 2].clone()).await.expect("writer put");
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.await.expect("reader") > 0);
    }
    let keys: Vec<_> = loc.list("").await.expect("list").into_iter().map(|o| o.key).collect();
    assert_eq!(keys, vec!["big.bin"], "no staging files visible");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_if_absent_has_exactly_one_winner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loc = Location::parse(&file_uri(dir.path())).expect("parse");
    for round in 0..5 {
        let key = format!("race/{round}.json");
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let (loc, key) = (loc.clone(), key.clone());
                tokio::spawn(async move {
                    let created =
                        loc.put_if_absent(&key, Bytes::from(format!("writer {i}"))).await.expect("put");
                    (i, created)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (i, created) = task.await.expect("join");
            if created {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let stored = loc.get(&key).await.expect("get");
        assert_eq!(stored, Bytes::from(format!("writer {}", winners[0])), "the winner's bytes are stored");
    }
    assert!(!loc.put_if_absent("race/0.json", Bytes::from_static(b"late")).await.expect("late put"));
}

#[tokio::test]
async fn put_file_small_and_multipart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loc = Location::parse(&format!("{}/out", file_uri(dir.path()))).expect("parse");
    let small = dir.path().join("small.json");
    std::fs::write(&small, b"[1,2,3]").expect("write");
    assert_eq!(loc.put_file("small.json", &small).await.expect("put small"), 7);
    assert_eq!(loc.get("small.json").await.expect("get").as_ref(), b"[1,2,3]");

    // 2.5 parts of patterned data: checks order and completeness of the parts
    let len = MULTIPART_PART_SIZE * 5 / 2 + 123;
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, &data).expect("write big");
    assert_eq!(loc.put_file("annotations.json", &big).await.expect("put big"), len as u64);
    let back = loc.get("annotations.json").await.expect("get big");
    assert!(back.as_ref() == data.as_slice(), "multipart upload reassembled byte for byte");

    let err = loc.put_file("x", &dir.path().join("absent")).await.expect_err("missing local file");
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
}

async fn populate(dir: &std::path::Path, keys: &[&str]) {
    for key in keys {
        let path = dir.join(key);
        tokio::fs::create_dir_all(path.parent().expect("parent")).await.expect("mkdir");
        tokio::fs::write(&path, key.as_bytes()).await.expect("write");
    }
}

#[tokio::test]
async fn input_listing_filters_sorts_and_cuts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = [
        "z.jpg",
        "a.JPG",
        "b.jpeg",
        "c.PNG",
        "d.webp",
        "e.bmp",
        "f.gif",
        "readme.txt",
        "sub/g.jpg",
        "sub/deeper/h.png",
        "thumbs/i.jpg",
        "raw/j.jpg",
    ];
    populate(dir.path(), &keys).await;
    let uri = file_uri(dir.path());
    let listed = |include: &[&str], exclude: &[&str], max: Option<u64>| {
        let input = InputSource::new(&spec(uri.clone(), include, exclude, max)).expect("input");
        async move { input.list().await.expect("list").into_iter().map(|e| (e.id, e.key)).collect::<Vec<_>>() }
    };
    let keys_of = |v: Vec<(u64, String)>| v.into_iter().map(|(_, k)| k).collect::<Vec<_>>();

    // default: image extensions in any case, recursive, sorted by key
    assert_eq!(
        keys_of(listed(&[], &[], None).await),
        vec![
            "a.JPG",
            "b.jpeg",
            "c.PNG",
            "d.webp",
            "e.bmp",
            "raw/j.jpg",
            "sub/deeper/h.png",
            "sub/g.jpg",
            "thumbs/i.jpg",
            "z.jpg"
        ]
    );
    assert_eq!(keys_of(listed(&["*.jpg"], &[], None).await), vec!["z.jpg"]);
    assert_eq!(keys_of(listed(&["sub/**"], &[], None).await), vec!["sub/deeper/h.png", "sub/g.jpg"]);
    assert_eq!(
        keys_of(listed(&["**/*.jpg", "*.webp"], &["thumbs/**", "raw/*"], None).await),
        vec!["d.webp", "sub/g.jpg", "z.jpg"]
    );
    assert_eq!(
        keys_of(listed(&[], &["sub/**", "*.{JPG,PNG}"], Some(3)).await),
        vec!["b.jpeg", "d.webp", "e.bmp"]
    );
    // ids are positions after the cut
    let cut = listed(&[], &[], Some(2)).await;
    assert_eq!(cut, vec![(0, "a.JPG".to_string()), (1, "b.jpeg".to_string())]);
}

#[tokio::test]
async fn input_entries_carry_uri_size_etag_and_fetch() {
    let dir = tempfile::tempdir().expect("tempdir");
    populate(dir.path(), &["p/x.jpg", "p/y.png"]).await;
    let input =
        InputSource::new(&spec(format!("{}/p", file_uri(dir.path())), &[], &[], None)).expect("input");
    let entries = input.list().await.expect("list");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].key, "x.jpg");
    assert_eq!(entries[0].uri, format!("{}/p/x.jpg", file_uri(dir.path())));
    assert_eq!(entries[0].size, Some("p/x.jpg".len() as u64));
    assert!(entries[0].etag.is_some());
    assert_eq!(input.fetch(&entries[1]).await.expect("fetch").as_ref(), b"p/y.png");

    std::fs::remove_file(dir.path().join("p/x.jpg")).expect("rm");
    let err = input.fetch(&entries[0]).await.expect_err("deleted");
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn entry_uris_are_escaped_so_a_uri_parser_gets_the_real_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let names = ["a b.jpg", "c#1.jpg", "d?x=1.jpg", "e%41.jpg", "sub dir/ü.png"];
    populate(&dir.path().join("in"), &names).await;
    let input =
        InputSource::new(&spec(format!("{}/in", file_uri(dir.path())), &[], &[], None)).expect("input");
    let entries = input.list().await.expect("list");
    let mut keys: Vec<_> = entries.iter().map(|e| e.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, names, "keys stay the names as they are");
    for e in &entries {
        let url = url::Url::parse(&e.uri).unwrap_or_else(|err| panic!("{}: {err}", e.uri));
        assert_eq!((url.query(), url.fragment()), (None, None), "{}", e.uri);
        assert_eq!(url.to_file_path().expect("path"), dir.path().join("in").join(&e.key), "{}", e.uri);
        assert_eq!(input.fetch(e).await.expect("fetch").as_ref(), e.key.as_bytes());
    }
    let e = entries.iter().find(|e| e.key == "e%41.jpg").expect("listed");
    assert!(e.uri.ends_with("/in/e%2541.jpg"), "{}", e.uri);
    let e = entries.iter().find(|e| e.key == "d?x=1.jpg").expect("listed");
    assert!(e.uri.ends_with("/in/d%3Fx=1.jpg"), "{}", e.uri);
}
