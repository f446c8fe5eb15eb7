//! The shard file `shards/shard-NNNNN.json`: what one shard labelled (images with their
//! detections in original pixels, COCO `[x, y, w, h]`), what it could not (errors with stage and
//! reason), the digests that make it reusable, and stage timings.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// One shard's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardFile {
    /// Shard index.
    pub index: u32,
    /// Shards in the job.
    pub shards: u32,
    /// sha256 of the manifest this shard was cut from.
    pub manifest_digest: String,
    /// Digest of the model and the settings that change results.
    pub settings_digest: String,
    /// Manifest ids `[start, end)` of this shard.
    pub range: [u64; 2],
    /// Images labelled, by id.
    pub images: Vec<ShardImage>,
    /// Images that could not be labelled.
    pub errors: Vec<ImageError>,
    /// Seconds spent per stage (summed over images; stages overlap).
    pub timings: Timings,
}

/// What a shard file must be for to be reused or merged.
#[derive(Debug, Clone)]
pub struct ShardFor<'a> {
    /// sha256 of the manifest.
    pub manifest_digest: &'a str,
    /// Digest of the model and settings.
    pub settings_digest: &'a str,
    /// Shard index.
    pub index: u32,
    /// Shards in the job now.
    pub shards: u32,
    /// The manifest ids the shard covers now.
    pub range: Range<u64>,
}

impl ShardFile {
    /// True only when this file is exactly `want`: the same manifest and settings, the same
    /// index of the same number of shards, the same id range, and every id of that range
    /// exactly once (labelled or failed). A file from a run with another `workers.shards` is
    /// never reused or merged, so every image is counted exactly once whatever the output's
    /// history (and a shard resumed from partial results is checked the same way before its
    /// file is written).
    pub fn is_for(&self, want: &ShardFor<'_>) -> bool {
        let r = &want.range;
        let len = r.end.saturating_sub(r.start);
        let header = self.manifest_digest == want.manifest_digest
            && self.settings_digest == want.settings_digest
            && self.index == want.index
            && self.shards == want.shards
            && self.range == [r.start, r.end]
            && (self.images.len() as u64).checked_add(self.errors.len() as u64) == Some(len);
        if !header {
            return false;
        }
        let mut ids: Vec<u64> =
            self.images.iter().map(|i| i.id).chain(self.errors.iter().map(|e| e.id)).collect();
        ids.sort_unstable();
        // `len` ids, sorted, all in the range and each one more than the last: the whole range.
        ids.iter().zip(r.start..r.end).all(|(id, want)| *id == want)
    }
}

/// A labelled image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardImage {
    /// Manifest id (position in the sorted input).
    pub id: u64,
    /// Source URI.
    pub uri: String,
    /// Width in pixels after EXIF orientation.
    pub width: u32,
    /// Height in pixels after EXIF orientation.
    pub height: u32,
    /// Detections.
    pub detections: Vec<Detection>,
    /// sha256 of the content (`input.dedup.mode: exact`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Difference hash, 16 hex digits (`input.dedup.mode: perceptual`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhash: Option<String>,
    /// Set when this image copies an earlier one: it was not sent to the model and carries
    /// the first copy's labels, scaled to its size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<DuplicateOf>,
}

/// The first copy of a duplicate image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DuplicateOf {
    /// Manifest id of the first copy.
    pub id: u64,
    /// Hamming distance of the perceptual hashes (0 for exact copies).
    pub distance: u32,
}

impl ShardImage {
    /// Give this image the labels of `first` (its first copy), boxes scaled to this image's
    /// size, and record the copy.
    pub fn copy_labels_of(&mut self, first: &ShardImage, distance: u32) {
        let sx = f64::from(self.width) / f64::from(first.width.max(1));
        let sy = f64::from(self.height) / f64::from(first.height.max(1));
        let r2 = |v: f64| (v * 100.0).round() / 100.0;
        self.detections = first
            .detections
            .iter()
            .map(|d| Detection {
                bbox: [r2(d.bbox[0] * sx), r2(d.bbox[1] * sy), r2(d.bbox[2] * sx), r2(d.bbox[3] * sy)],
                ..d.clone()
            })
            .collect();
        self.duplicate_of = Some(DuplicateOf { id: first.id, distance });
    }
}

/// A detection in original pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detection {
    /// COCO `[x, y, w, h]` in original pixels.
    pub bbox: [f64; 4],
    /// Confidence.
    pub score: f64,
    /// Category id.
    pub category_id: u32,
}

/// An image that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageError {
    /// Manifest id.
    pub id: u64,
    /// Source URI.
    pub uri: String,
    /// Stage: download, decode, inference.
    pub stage: String,
    /// Category of the failure, e.g. `too-large`.
    pub kind: String,
    /// What went wrong, for a person.
    pub reason: String,
}

/// Seconds per stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// Downloading.
    pub download: f64,
    /// Decoding and resizing.
    pub decode: f64,
    /// Waiting for and running inference.
    pub inference: f64,
    /// Wall time of the shard.
    pub wall: f64,
}

impl Timings {
    /// Add another shard's timings.
    pub fn add(&mut self, o: &Timings) {
        self.download += o.download;
        self.decode += o.decode;
        self.inference += o.inference;
        self.wall += o.wall;
    }
}
