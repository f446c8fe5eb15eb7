//! Partial results on a real `file://` store: chunks are committed once each, read back only
//! for the same shard of the same job, and every id comes back once.

use super::*;
use crate::shardfile::DuplicateOf;

fn image(id: u64) -> ShardImage {
    ShardImage {
        id,
        uri: format!("file:///in/{id}.jpg"),
        width: 10,
        height: 10,
        detections: Vec::new(),
        sha256: None,
        dhash: None,
        duplicate_of: None,
    }
}

fn error(id: u64) -> ImageError {
    ImageError {
        id,
        uri: format!("file:///in/{id}.jpg"),
        stage: "decode".into(),
        kind: "corrupt".into(),
        reason: "bad".into(),
    }
}

fn want(range: std::ops::Range<u64>) -> ShardFor<'static> {
    ShardFor { manifest_digest: "m1", settings_digest: "s1", index: 2, shards: 4, range }
}

fn store() -> (tempfile::TempDir, Location) {
    let dir = tempfile::tempdir().expect("tmp");
    let loc = Location::parse(&format!("file://{}", dir.path().display())).expect("location");
    (dir, loc)
}

fn ids(r: &Resumed) -> Vec<u64> {
    let mut ids: Vec<u64> = r.ids().into_iter().collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn chunks_hold_the_new_results_only_and_load_back_once_each() {
    let (_dir, out) = store();
    let w = want(10..20);
    let policy = CheckpointPolicy { every: Duration::from_secs(3600), images: 3 };
    let mut c = Checkpointer::new(policy, 0, 0, 0);
    let mut images = vec![image(10), image(12)];
    let mut errors = vec![error(11)];
    assert!(c.due(&images, &errors), "3 new results");
    assert_eq!(c.commit(&out, &w, &images, &errors).await.expect("commit"), 3);
    assert!(!c.due(&images, &errors));
    assert_eq!(c.commit(&out, &w, &images, &errors).await.expect("nothing new"), 0);
    images.push(image(15));
    assert!(!c.due(&images, &errors), "1 new result, 3 per chunk, an hour between");
    errors.push(error(13));
    assert_eq!(c.commit(&out, &w, &images, &errors).await.expect("commit"), 2);
    assert_eq!(c.committed(), 5);
    assert_eq!(c.written, [layout::partial_key(2, 0), layout::partial_key(2, 1)]);
    let second: Partial =
        serde_json::from_slice(&out.get(&layout::partial_key(2, 1)).await.expect("chunk")).expect("json");
    assert_eq!((second.part, second.images.len(), second.errors.len()), (1, 1, 1), "only the new ones");

    let r = load(&out, &w, true).await.expect("load");
    assert_eq!(ids(&r), [10, 11, 12, 13, 15]);
    assert_eq!((r.next_part, r.keys.len(), r.stale), (2, 2, 0));
    assert_eq!(r.images.iter().map(|i| i.id).collect::<Vec<_>>(), [10, 12, 15], "sorted");

    // `overwrite: Replace`: nothing is reused, the chunks are stale (deleted later).
    let r = load(&out, &w, false).await.expect("load");
    assert!(r.is_empty());
    assert_eq!((r.stale, r.next_part), (2, 2));
    remove(&out, r.keys).await;
    assert!(out.list(&layout::partial_prefix(2)).await.expect("list").is_empty());
}

#[tokio::test]
async fn chunks_of_another_job_or_range_are_stale_and_repeats_count_once() {
    let (_dir, out) = store();
    let w = want(10..20);
    let mut a = Checkpointer::new(CheckpointPolicy::default(), 0, 0, 0);
    a.commit(&out, &w, &[image(10), image(11)], &[]).await.expect("commit");
    // A concurrent attempt numbered its chunk 0 too: it takes the next number, and its repeat
    // of id 11 counts once.
    let mut b = Checkpointer::new(CheckpointPolicy::default(), 0, 0, 0);
    b.commit(&out, &w, &[image(11), image(12)], &[]).await.expect("commit");
    assert_eq!(b.written, [layout::partial_key(2, 1)]);
    // Chunks for another manifest, another range, and one that does not parse.
    let other = ShardFor { manifest_digest: "m2", ..want(10..20) };
    Checkpointer::new(CheckpointPolicy::default(), 5, 0, 0)
        .commit(&out, &other, &[image(13)], &[])
        .await
        .expect("commit");
    Checkpointer::new(CheckpointPolicy::default(), 6, 0, 0)
        .commit(&out, &want(10..16), &[image(14)], &[])
        .await
        .expect("commit");
    out.put(&layout::partial_key(2, 7), Bytes::from_static(b"{torn")).await.expect("put");

    let r = load(&out, &w, true).await.expect("load");
    assert_eq!(ids(&r), [10, 11, 12]);
    assert_eq!(r.images.iter().filter(|i| i.id == 11).count(), 1);
    assert_eq!((r.stale, r.next_part, r.keys.len()), (3, 8, 5));
    // Another shard's chunks are not even listed.
    assert!(load(&out, &ShardFor { index: 3, ..want(10..20) }, true).await.expect("load").keys.is_empty());
}

#[tokio::test]
async fn a_copy_is_reused_only_with_its_first_copy() {
    let (_dir, out) = store();
    let w = want(0..10);
    let copy = |id, of| ShardImage { duplicate_of: Some(DuplicateOf { id: of, distance: 0 }), ..image(id) };
    // 5 copies 2, which was still being labelled when the chunk was written; 7 copies 1.
    let images = [image(1), copy(5, 2), copy(7, 1)];
    Checkpointer::new(CheckpointPolicy::default(), 0, 0, 0)
        .commit(&out, &w, &images, &[])
        .await
        .expect("commit");
    let r = load(&out, &w, true).await.expect("load");
    assert_eq!(ids(&r), [1, 7], "5 is labelled again after 2");
}

#[test]
fn a_chunk_with_ids_outside_its_range_is_not_for_the_shard() {
    let w = want(10..20);
    let chunk = Partial {
        index: 2,
        shards: 4,
        manifest_digest: "m1".into(),
        settings_digest: "s1".into(),
        range: [10, 20],
        part: 0,
        images: vec![image(12)],
        errors: vec![],
    };
    assert!(chunk.is_for(&w));
    assert!(!Partial { images: vec![image(20)], ..chunk.clone() }.is_for(&w));
    assert!(!Partial { errors: vec![error(9)], ..chunk.clone() }.is_for(&w));
    assert!(!Partial { settings_digest: "s2".into(), ..chunk.clone() }.is_for(&w));
    assert!(!Partial { shards: 5, ..chunk }.is_for(&w));
}
