//! Shard progress: each running shard rewrites `progress/shard-NNNNN.json` every few seconds
//! ([`write_progress`]); the operator reads them all with one listing plus one GET per
//! existing object ([`read_progress`]) to fill `status.images` and `imagesPerSecond`.
//!
//! Format (camelCase): `{"index":N,"total":T,"processed":P,"failed":F,"elapsedSeconds":S,
//! "done":bool}`.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::{Location, Result, StoreError, layout};

/// GETs of progress objects in flight at once.
const READ_CONCURRENCY: usize = 16;

/// Progress of one shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardProgress {
    /// The shard's index.
    pub index: u32,
    /// Images in the shard.
    pub total: u64,
    /// Images finished so far (labelled or failed).
    pub processed: u64,
    /// Images that could not be labelled so far.
    pub failed: u64,
    /// Seconds the shard has been working.
    pub elapsed_seconds: f64,
    /// Whether the shard's output is written.
    pub done: bool,
}

impl ShardProgress {
    /// Images per second so far (0 before the first second).
    pub fn images_per_second(&self) -> f64 {
        if self.elapsed_seconds > 0.0 { self.processed as f64 / self.elapsed_seconds } else { 0.0 }
    }
}

/// Write (replace, atomically) the progress object of `progress.index`.
pub async fn write_progress(output: &Location, progress: &ShardProgress) -> Result<()> {
    let key = layout::progress_key(progress.index);
    let json = serde_json::to_vec(progress)
        .map_err(|source| StoreError::Json { uri: output.child_uri(&key), source })?;
    output.put(&key, Bytes::from(json)).await
}

/// The progress of shards `0..shards`: `None` where a shard has written none (yet).
/// One listing of `progress/`, then the existing objects are read concurrently. Objects of
/// indices `>= shards` are ignored; one deleted between listing and reading counts as none.
pub async fn read_progress(output: &Location, shards: u32) -> Result<Vec<Option<ShardProgress>>> {
    let listed = output.list(layout::PROGRESS_DIR).await?;
    let indices: Vec<u32> = listed
        .iter()
        .filter_map(|object| layout::parse_progress_key(&object.key))
        .filter(|index| *index < shards)
        .collect();
    let read: Vec<(u32, Option<ShardProgress>)> = futures::stream::iter(indices)
        .map(|index| async move {
            let key = layout::progress_key(index);
            let Some(bytes) = output.get_opt(&key).await? else {
                return Ok((index, None));
            };
            let progress: ShardProgress = serde_json::from_slice(&bytes)
                .map_err(|source| StoreError::Json { uri: output.child_uri(&key), source })?;
            Ok::<_, StoreError>((index, Some(progress)))
        })
        .buffer_unordered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    let mut out = vec![None; shards as usize];
    for (index, progress) in read {
        out[index as usize] = progress;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(index: u32, processed: u64) -> ShardProgress {
        ShardProgress { index, total: 100, processed, failed: 1, elapsed_seconds: 4.0, done: false }
    }

    #[test]
    fn json_is_camel_case_per_contract() {
        let json = serde_json::to_value(progress(3, 40)).expect("serialise");
        assert_eq!(
            json,
            serde_json::json!({"index":3,"total":100,"processed":40,"failed":1,"elapsedSeconds":4.0,"done":false})
        );
        assert_eq!(progress(3, 40).images_per_second(), 10.0);
        let zero = ShardProgress { elapsed_seconds: 0.0, ..progress(0, 5) };
        assert_eq!(zero.images_per_second(), 0.0);
    }

    #[tokio::test]
    async fn read_progress_finds_written_shards_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let uri = format!("file://{}", dir.path().display());
        let out = Location::parse(&uri).expect("location");
        assert_eq!(read_progress(&out, 3).await.expect("read empty"), vec![None, None, None]);

        write_progress(&out, &progress(0, 10)).await.expect("write 0");
        write_progress(&out, &progress(2, 20)).await.expect("write 2");
        write_progress(&out, &progress(7, 70)).await.expect("write 7 (beyond shards)");
        out.put("progress/notes.txt", Bytes::from_static(b"ignored")).await.expect("put other");
        let read = read_progress(&out, 3).await.expect("read");
        assert_eq!(read, vec![Some(progress(0, 10)), None, Some(progress(2, 20))]);

        // a rewrite replaces the object
        write_progress(&out, &ShardProgress { done: true, ..progress(2, 100) }).await.expect("rewrite");
        let read = read_progress(&out, 3).await.expect("read again");
        assert_eq!(read[2].as_ref().map(|p| (p.processed, p.done)), Some((100, true)));
    }

    #[tokio::test]
    async fn read_progress_reports_corrupt_objects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Location::parse(&format!("file://{}", dir.path().display())).expect("location");
        out.put(&layout::progress_key(1), Bytes::from_static(b"{not json")).await.expect("put");
        let err = read_progress(&out, 2).await.expect_err("corrupt");
        assert!(matches!(err, StoreError::Json { .. }), "{err:?}");
        assert!(err.to_string().contains("progress/shard-00001.json"), "{err}");
    }
}
