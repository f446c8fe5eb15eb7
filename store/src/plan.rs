//! Plan: freeze the input set of a job into `<output>/manifest.jsonl`, exactly once.
//!
//! If the manifest exists it is read and returned unchanged, so a re-plan (a retried plan pod,
//! `labeljob run` resumed, a second planner racing the first) never changes the input set of
//! a job that may already be running. Otherwise the input is listed and the manifest written
//! with `put_if_absent`; when another planner wins that race, its manifest is the one returned.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::{InputSource, Location, Manifest, Result, layout};

/// `plan.json`: what the frozen manifest was made from. The planner (`labeljob plan`) writes
/// it; the operator reads it for `status.images.total` and `status.manifestDigest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanInfo {
    /// sha256 of manifest.jsonl.
    pub manifest_digest: String,
    /// Images in the manifest.
    pub total: u64,
    /// Shards of the job: `workers.shards`, but never more than the images.
    pub shards: u32,
    /// Digest of the input spec the listing was made from.
    pub input_digest: String,
}

/// The `plan.json` of `output` (None before the planner wrote it).
pub async fn read_plan_info(output: &Location) -> Result<Option<PlanInfo>> {
    match output.get_opt(layout::PLAN).await? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| crate::StoreError::Json { uri: output.child_uri(layout::PLAN), source }),
        None => Ok(None),
    }
}

/// Read the frozen manifest of `output`, or list `input` and freeze it.
pub async fn plan(input: &InputSource, output: &Location) -> Result<Manifest> {
    if let Some(manifest) = read_manifest(output).await? {
        info!(
            output = output.uri(),
            images = manifest.len(),
            digest = manifest.digest,
            "manifest already frozen"
        );
        return Ok(manifest);
    }
    let manifest = input.list_manifest().await?;
    if output.put_if_absent(layout::MANIFEST, Bytes::from(manifest.to_jsonl())).await? {
        info!(output = output.uri(), images = manifest.len(), digest = manifest.digest, "manifest written");
        return Ok(manifest);
    }
    // another planner froze it between our read and our write: theirs is the manifest
    let manifest = Manifest::from_jsonl(&output.get(layout::MANIFEST).await?)?;
    info!(
        output = output.uri(),
        images = manifest.len(),
        digest = manifest.digest,
        "manifest frozen by another planner"
    );
    Ok(manifest)
}

/// The frozen manifest of `output`, if one was written.
pub async fn read_manifest(output: &Location) -> Result<Option<Manifest>> {
    match output.get_opt(layout::MANIFEST).await? {
        Some(bytes) => Ok(Some(Manifest::from_jsonl(&bytes)?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use labeljob_api::v1alpha1::InputSpec;

    use super::*;

    fn input_spec(uri: String) -> InputSpec {
        InputSpec {
            uri,
            include: Vec::new(),
            exclude: Vec::new(),
            credentials: None,
            max_images: None,
            allow_private_networks: false,
            dedup: Default::default(),
            timeouts: Default::default(),
        }
    }

    async fn write(dir: &std::path::Path, key: &str) {
        let path = dir.join(key);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.expect("mkdir");
        }
        tokio::fs::write(&path, key.as_bytes()).await.expect("write image");
    }

    #[tokio::test]
    async fn plan_writes_once_and_is_frozen_afterwards() {
        let images = tempfile::tempdir().expect("tempdir");
        let out = tempfile::tempdir().expect("tempdir");
        for key in ["b.jpg", "a.png", "sub/c.jpeg", "notes.txt"] {
            write(images.path(), key).await;
        }
        let input =
            InputSource::new(&input_spec(format!("file://{}", images.path().display()))).expect("input");
        let output = Location::parse(&format!("file://{}/job", out.path().display())).expect("output");
        assert_eq!(read_manifest(&output).await.expect("read"), None);

        let first = plan(&input, &output).await.expect("plan");
        let keys: Vec<_> = first.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, vec!["a.png", "b.jpg", "sub/c.jpeg"]);
        let ids: Vec<_> = first.entries.iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![0, 1, 2]);
        assert_eq!(first.entries[1].uri, format!("file://{}/b.jpg", images.path().display()));
        let stored = output.get(layout::MANIFEST).await.expect("manifest object");
        assert_eq!(stored.as_ref(), first.to_jsonl().as_slice());

        // new images after planning do not change the frozen input set
        write(images.path(), "0-new.jpg").await;
        let second = plan(&input, &output).await.expect("re-plan");
        assert_eq!(second, first);
        assert_eq!(input.list().await.expect("list").len(), 4, "the live listing did change");
    }

    #[tokio::test]
    async fn concurrent_planners_agree_on_one_manifest() {
        let images = tempfile::tempdir().expect("tempdir");
        let out = tempfile::tempdir().expect("tempdir");
        for i in 0..20 {
            write(images.path(), &format!("img{i:02}.jpg")).await;
        }
        let input =
            InputSource::new(&input_spec(format!("file://{}", images.path().display()))).expect("input");
        let output = Location::parse(&format!("file://{}", out.path().display())).expect("output");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (input, output) = (input.clone(), output.clone());
                tokio::spawn(async move { plan(&input, &output).await })
            })
            .collect();
        let mut digests = Vec::new();
        for task in tasks {
            digests.push(task.await.expect("join").expect("plan").digest);
        }
        digests.dedup();
        assert_eq!(digests.len(), 1, "all planners return the same manifest");
    }

    #[tokio::test]
    async fn missing_local_input_is_not_found() {
        let out = tempfile::tempdir().expect("tempdir");
        let input =
            InputSource::new(&input_spec(format!("file://{}/absent", out.path().display()))).expect("input");
        let output = Location::parse(&format!("file://{}/out", out.path().display())).expect("output");
        let err = plan(&input, &output).await.expect_err("no input dir");
        assert!(err.is_not_found(), "{err:?}");
        assert_eq!(read_manifest(&output).await.expect("read"), None, "nothing frozen");
    }
}
