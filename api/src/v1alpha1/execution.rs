//! How the data plane runs: the worker shards (`spec.workers`, with the bounds the schema and
//! `validate_spec` share) and the time limits of input downloads (`spec.input.timeouts`):
//! how long a worker waits for an image server or object store to connect, to send the next
//! bytes, and for one image in all. A hanging server costs at most the deadline per image,
//! retries included; a download that runs out of time is one failed image, never a stuck
//! shard.

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most `workers.shards` (and `workers.parallelism`) a LabelJob may ask for: the CRD schema's
/// maximum and [`crate::validate_spec`]'s, from this one constant.
pub const MAX_SHARDS: u32 = 10_000;
/// Most `workers.concurrency` (images in flight per shard): schema and `validate_spec`.
pub const MAX_CONCURRENCY: u32 = 1024;
/// Most `workers.backoffLimitPerIndex`: schema and `validate_spec`.
pub const MAX_BACKOFF_LIMIT_PER_INDEX: u32 = 100;

/// The worker shards.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.parallelism) || self.parallelism <= self.shards").message("workers.parallelism must not exceed workers.shards"))]
pub struct WorkersSpec {
    /// Number of shards: contiguous ranges of the sorted input, one worker pod each (1–10000).
    /// A job never has more shards than images: with fewer images than shards, each image is
    /// one shard and the shards beyond them have nothing to do (they write nothing and
    /// succeed at once).
    #[serde(default = "default_shards")]
    #[schemars(range(min = 1, max = MAX_SHARDS))]
    pub shards: u32,
    /// Shards running at once (default: all; 1–10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_SHARDS))]
    pub parallelism: Option<u32>,
    /// Images in flight per shard (download, decode and inference overlap; 1–1024).
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = MAX_CONCURRENCY))]
    pub concurrency: u32,
    /// Retries of one shard before it counts as failed (0–100).
    #[serde(default = "default_backoff_limit_per_index")]
    #[schemars(range(min = 0, max = MAX_BACKOFF_LIMIT_PER_INDEX))]
    pub backoff_limit_per_index: u32,
    /// Resources of each worker pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

fn default_shards() -> u32 {
    1
}
fn default_concurrency() -> u32 {
    8
}
fn default_backoff_limit_per_index() -> u32 {
    2
}

impl Default for WorkersSpec {
    fn default() -> Self {
        Self {
            shards: default_shards(),
            parallelism: None,
            concurrency: default_concurrency(),
            backoff_limit_per_index: default_backoff_limit_per_index(),
            resources: None,
        }
    }
}

/// Default of `input.timeouts.connectSeconds`.
pub const DEFAULT_CONNECT_SECONDS: u32 = 10;
/// Default of `input.timeouts.readSeconds`.
pub const DEFAULT_READ_SECONDS: u32 = 30;
/// Default of `input.timeouts.deadlineSeconds`.
pub const DEFAULT_DEADLINE_SECONDS: u32 = 120;

/// Time limits of image downloads, for URL lists and object stores alike.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownloadTimeouts {
    /// Seconds to establish a connection (TCP and TLS) before the attempt fails and is retried.
    #[serde(default = "default_connect")]
    #[schemars(range(min = 1, max = 300))]
    pub connect_seconds: u32,
    /// Seconds without receiving any bytes (no answer, a stalled body) before the attempt
    /// fails and is retried.
    #[serde(default = "default_read")]
    #[schemars(range(min = 1, max = 3600))]
    pub read_seconds: u32,
    /// Seconds for one image in all: every attempt, every wait between them, the whole body.
    /// Then the image fails (`kind: timeout`) and the shard goes on.
    #[serde(default = "default_deadline")]
    #[schemars(range(min = 1, max = 86400))]
    pub deadline_seconds: u32,
}

fn default_connect() -> u32 {
    DEFAULT_CONNECT_SECONDS
}
fn default_read() -> u32 {
    DEFAULT_READ_SECONDS
}
fn default_deadline() -> u32 {
    DEFAULT_DEADLINE_SECONDS
}

impl Default for DownloadTimeouts {
    fn default() -> Self {
        Self {
            connect_seconds: DEFAULT_CONNECT_SECONDS,
            read_seconds: DEFAULT_READ_SECONDS,
            deadline_seconds: DEFAULT_DEADLINE_SECONDS,
        }
    }
}

impl DownloadTimeouts {
    /// Whether these are the defaults (then the field is left out when written).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The problems of these values, as `(field below spec.input.timeouts, message)`; the schema
    /// states the same ranges.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (field, value, max) in [
            ("input.timeouts.connectSeconds", self.connect_seconds, 300),
            ("input.timeouts.readSeconds", self.read_seconds, 3600),
            ("input.timeouts.deadlineSeconds", self.deadline_seconds, 86400),
        ] {
            if !(1..=max).contains(&value) {
                out.push((field, format!("{value} is outside 1–{max}")));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_missing_fields_and_ranges_are_checked() {
        let t: DownloadTimeouts = serde_json::from_str(r#"{"readSeconds": 2}"#).expect("parse");
        assert_eq!(t, DownloadTimeouts { read_seconds: 2, ..DownloadTimeouts::default() });
        assert!(!t.is_default() && DownloadTimeouts::default().is_default());
        assert!(t.problems().is_empty());
        let bad = DownloadTimeouts { connect_seconds: 0, deadline_seconds: 100_000, ..t };
        let fields: Vec<_> = bad.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["input.timeouts.connectSeconds", "input.timeouts.deadlineSeconds"]);
    }
}
