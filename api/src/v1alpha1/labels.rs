//! The parts of the spec that shape the labels people use: the output formats the merge writes,
//! review routing of uncertain images and duplicate detection on the input. Kept apart from the core spec so that each concern reads on its own.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A label format the merge writes (all in the same pass, memory bounded by one shard).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// COCO: `annotations.json` (dataset, scores kept) and `results.json` (pycocotools
    /// `loadRes`). Always written.
    Coco,
    /// Ultralytics YOLO: `yolo/data.yaml` (class names by index) and `yolo/labels/<stem>.txt`
    /// (`class cx cy w h`, normalised); `stems.jsonl` maps each image to its stem.
    Yolo,
    /// Pascal VOC: `voc/Annotations/<stem>.xml` (integer pixel boxes), `voc/ImageSets/Main/default.txt`
    /// and `voc/labelmap.txt`.
    Voc,
    /// CVAT for images 1.1: `cvat/annotations.xml`, scores as a `score` attribute.
    Cvat,
    /// Label Studio: `labelstudio/tasks.json` (tasks with `predictions`, boxes in percent, score,
    /// `model_version` = the model's sha256) and `labelstudio/config.xml` (the labelling config).
    Labelstudio,
}

/// Packaging of the per-image formats (`output.archive`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Archive {
    /// One zip archive per format (`yolo.zip`, `voc.zip`), entries stored uncompressed.
    #[default]
    Zip,
    /// Directories with one file per image.
    None,
}

pub(crate) fn default_formats() -> Vec<OutputFormat> {
    vec![OutputFormat::Coco]
}

/// Route uncertain images to a person: an image with any detection scoring in the band
/// `[above, below)`, or with no detection scoring at least `above`, goes to the review set
/// (`review/annotations.json`, and `review/labelstudio/tasks.json` when `labelstudio` is an
/// output format).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.above < self.below").message("review.above must be less than review.below"))]
pub struct ReviewSpec {
    /// Lower edge of the uncertain band (0–1): detections scoring at least this and below
    /// `below` are uncertain; an image whose detections all score below it (or that has none)
    /// is reviewed too.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub above: f32,
    /// Upper edge of the uncertain band (0–1): detections scoring at least this are certain.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub below: f32,
    /// `Separate`: reviewed images are left out of the main set (main + review hold every image
    /// once). `Flag`: they stay in the main set with `"review": true` on the COCO image.
    #[serde(default)]
    pub mode: ReviewMode,
}

/// Where reviewed images go.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ReviewMode {
    /// Only in the review set.
    #[default]
    Separate,
    /// In the main set, flagged, and in the review set.
    Flag,
}

/// Duplicate images: found before inference, so a copy is never sent to the model twice within
/// a shard; copies in different shards are found at merge. Every duplicate is listed in
/// `duplicates.jsonl`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DedupSpec {
    /// `none`, `exact` (same bytes: sha256 of the downloaded content) or `perceptual` (also
    /// re-encoded or resized copies: a 64-bit difference hash within `maxDistance` bits).
    #[serde(default)]
    pub mode: DedupMode,
    /// What a duplicate gets: `copyLabels` (the labels of its first copy, scaled to its size)
    /// or `skip` (left out of the outputs, listed in duplicates.jsonl only).
    #[serde(default)]
    pub action: DedupAction,
    /// Perceptual mode: largest Hamming distance (bits of 64) between two hashes of the same
    /// picture.
    #[serde(default = "default_max_distance")]
    #[schemars(range(min = 0, max = 32))]
    pub max_distance: u32,
}

fn default_max_distance() -> u32 {
    4
}

impl Default for DedupSpec {
    fn default() -> Self {
        Self {
            mode: DedupMode::default(),
            action: DedupAction::default(),
            max_distance: default_max_distance(),
        }
    }
}

impl DedupSpec {
    /// Whether every field has its default (then it is left out when serialised).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// How duplicates are recognised.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DedupMode {
    /// Every image is labelled.
    None,
    /// Byte-identical copies.
    #[default]
    Exact,
    /// Visually identical copies (re-encoded, resized).
    Perceptual,
}

/// What a duplicate receives.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DedupAction {
    /// The labels of the first copy (lowest manifest position), scaled to the copy's size.
    #[default]
    CopyLabels,
    /// Left out of the outputs.
    Skip,
}
