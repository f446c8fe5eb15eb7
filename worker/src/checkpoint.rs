//! Partial results of a running shard, so that a retried shard (a pod evicted, preempted or
//! killed) resumes after its last committed image instead of from its first.
//!
//! While a shard runs, what it has finished since the last commit is written as one new chunk,
//! `partial/shard-NNNNN/part-KKKKK.json` ([`layout::partial_key`]), every
//! [`CheckpointPolicy::every`] or [`CheckpointPolicy::images`] results, on SIGTERM, and before
//! a shard fails on a lost inference service. A chunk is written once, create-only (a
//! concurrent attempt takes the next number), and is never rewritten, so committing costs the
//! new results only. A chunk carries the same identity as a shard file — manifest digest,
//! settings digest, index, shard count, id range — and is reused only when all of them are the
//! job's now ([`Partial::is_for`]); its ids must lie in the range.
//!
//! Exactly once: [`load`] keeps the first result of each id across chunks (a chunk of a
//! concurrent attempt may repeat one), and drops a duplicate image whose first copy is not among
//! the loaded results (it is labelled again, after its first copy). The shard then labels only
//! the ids not loaded and writes the final shard file from both, which `ShardFile::is_for`
//! checks covers every id of the range exactly once; then the chunks are deleted. Chunks that are
//! for another manifest, settings or range are stale (ignored under `overwrite: Resume` or
//! `Replace`, deleted with the others; `Fail` refuses them like a stale shard file).
//! `overwrite: Replace` ignores every chunk: the shard starts over.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use labeljob_store::{Location, StoreError, layout};
use serde::{Deserialize, Serialize};

use crate::shardfile::{ImageError, ShardFor, ShardImage};

/// When a running shard commits its new results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// At most this long between commits (while there is something new).
    pub every: Duration,
    /// At most this many new results per chunk.
    pub images: usize,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy { every: Duration::from_secs(30), images: 500 }
    }
}

/// One chunk of a shard's partial results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Partial {
    /// Shard index.
    pub index: u32,
    /// Shards in the job.
    pub shards: u32,
    /// sha256 of the manifest.
    pub manifest_digest: String,
    /// Digest of the model and settings.
    pub settings_digest: String,
    /// Manifest ids `[start, end)` of the shard.
    pub range: [u64; 2],
    /// The chunk's number.
    pub part: u32,
    /// Images labelled since the previous chunk.
    pub images: Vec<ShardImage>,
    /// Images that failed since the previous chunk.
    pub errors: Vec<ImageError>,
}

/// A chunk as written: borrowed results.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PartialOut<'a> {
    index: u32,
    shards: u32,
    manifest_digest: &'a str,
    settings_digest: &'a str,
    range: [u64; 2],
    part: u32,
    images: &'a [ShardImage],
    errors: &'a [ImageError],
}

impl Partial {
    /// Whether this chunk was written by this very shard of this job: same manifest, settings,
    /// index, shard count and range, every id inside the range.
    pub fn is_for(&self, want: &ShardFor<'_>) -> bool {
        let r = &want.range;
        self.manifest_digest == want.manifest_digest
            && self.settings_digest == want.settings_digest
            && self.index == want.index
            && self.shards == want.shards
            && self.range == [r.start, r.end]
            && self
                .images
                .iter()
                .map(|i| i.id)
                .chain(self.errors.iter().map(|e| e.id))
                .all(|id| r.contains(&id))
    }
}

/// The partial results found for a shard.
#[derive(Debug, Default)]
pub struct Resumed {
    /// Images already labelled, sorted by id.
    pub images: Vec<ShardImage>,
    /// Images already failed, sorted by id.
    pub errors: Vec<ImageError>,
    /// The next chunk number.
    pub next_part: u32,
    /// Every chunk key found (reused or stale), to delete once the shard file is written.
    pub keys: Vec<String>,
    /// Chunks found that are for another manifest, settings or range.
    pub stale: usize,
}

impl Resumed {
    /// The ids the shard need not label again.
    pub fn ids(&self) -> HashSet<u64> {
        self.images.iter().map(|i| i.id).chain(self.errors.iter().map(|e| e.id)).collect()
    }

    /// Results loaded.
    pub fn len(&self) -> u64 {
        (self.images.len() + self.errors.len()) as u64
    }

    /// Whether nothing was loaded.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty() && self.errors.is_empty()
    }
}

/// Read the partial results of shard `want.index` under `output`: the chunks that are for
/// `want` (with `reuse`; none otherwise), each id once. A chunk that does not parse counts as
/// stale.
pub async fn load(output: &Location, want: &ShardFor<'_>, reuse: bool) -> Result<Resumed, StoreError> {
    let mut found = Resumed::default();
    let mut parts = Vec::new();
    for object in output.list(&layout::partial_prefix(want.index)).await? {
        let Some(part) = layout::parse_partial_key(want.index, &object.key) else { continue };
        found.next_part = found.next_part.max(part.saturating_add(1));
        found.keys.push(object.key.clone());
        parts.push((part, object.key));
    }
    parts.sort();
    let mut seen = HashSet::new();
    for (_, key) in parts {
        let Some(bytes) = output.get_opt(&key).await? else { continue };
        let chunk = serde_json::from_slice::<Partial>(&bytes).ok().filter(|c| c.is_for(want));
        let Some(chunk) = chunk.filter(|_| reuse) else {
            found.stale += 1;
            continue;
        };
        found.images.extend(chunk.images.into_iter().filter(|i| seen.insert(i.id)));
        found.errors.extend(chunk.errors.into_iter().filter(|e| seen.insert(e.id)));
    }
    // A copy is labelled from its first copy: keep it only when that one is kept too.
    let labelled: HashSet<u64> =
        found.images.iter().filter(|i| i.duplicate_of.is_none()).map(|i| i.id).collect();
    found.images.retain(|i| i.duplicate_of.is_none_or(|d| labelled.contains(&d.id)));
    found.images.sort_by_key(|i| i.id);
    found.errors.sort_by_key(|e| e.id);
    Ok(found)
}

/// Commits a running shard's new results as chunks.
#[derive(Debug)]
pub struct Checkpointer {
    policy: CheckpointPolicy,
    next_part: u32,
    /// Results in the shard's lists up to these positions are committed.
    images_done: usize,
    errors_done: usize,
    last: Instant,
    /// Chunks this process wrote.
    pub written: Vec<String>,
}

impl Checkpointer {
    /// A checkpointer whose shard lists hold `images` and `errors` committed results already,
    /// numbering new chunks from `next_part`.
    pub fn new(policy: CheckpointPolicy, next_part: u32, images: usize, errors: usize) -> Self {
        Checkpointer {
            policy,
            next_part,
            images_done: images,
            errors_done: errors,
            last: Instant::now(),
            written: Vec::new(),
        }
    }

    /// Results committed so far (by this attempt and the ones before it).
    pub fn committed(&self) -> usize {
        self.images_done + self.errors_done
    }

    fn pending(&self, images: &[ShardImage], errors: &[ImageError]) -> usize {
        images.len().saturating_sub(self.images_done) + errors.len().saturating_sub(self.errors_done)
    }

    /// Whether the policy asks for a commit of the results after the committed ones.
    pub fn due(&self, images: &[ShardImage], errors: &[ImageError]) -> bool {
        let n = self.pending(images, errors);
        n > 0 && (n >= self.policy.images.max(1) || self.last.elapsed() >= self.policy.every)
    }

    /// Write the results after the committed ones as the next chunk (nothing when there are
    /// none). Returns how many results it committed.
    pub async fn commit(
        &mut self,
        output: &Location,
        want: &ShardFor<'_>,
        images: &[ShardImage],
        errors: &[ImageError],
    ) -> Result<usize, StoreError> {
        let n = self.pending(images, errors);
        if n == 0 {
            return Ok(0);
        }
        let new_images = &images[self.images_done.min(images.len())..];
        let new_errors = &errors[self.errors_done.min(errors.len())..];
        loop {
            let chunk = PartialOut {
                index: want.index,
                shards: want.shards,
                manifest_digest: want.manifest_digest,
                settings_digest: want.settings_digest,
                range: [want.range.start, want.range.end],
                part: self.next_part,
                images: new_images,
                errors: new_errors,
            };
            let key = layout::partial_key(want.index, self.next_part);
            let bytes = serde_json::to_vec(&chunk)
                .map_err(|source| StoreError::Json { uri: output.child_uri(&key), source })?;
            self.next_part = self.next_part.saturating_add(1);
            if output.put_if_absent(&key, Bytes::from(bytes)).await? {
                self.written.push(key);
                break;
            }
            // Another attempt of this shard took the number: the next one.
        }
        self.images_done = images.len();
        self.errors_done = errors.len();
        self.last = Instant::now();
        Ok(n)
    }
}

/// Delete the chunks at `keys` (the shard file now holds their results). Failures are logged:
/// a left-over chunk is ignored by the next run of the shard, whose shard file is reused.
pub async fn remove(output: &Location, keys: impl IntoIterator<Item = String>) {
    for key in keys {
        if let Err(e) = output.delete(&key).await {
            tracing::warn!(key, error = %e, "cannot delete a partial result chunk");
        }
    }
}

#[cfg(test)]
#[path = "checkpoint_tests.rs"]
mod tests;
