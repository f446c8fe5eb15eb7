//! Time limits of input downloads (`spec.input.timeouts`): how long a worker waits for an image
//! server or object store to connect, to send the next bytes, and for one image in all. A
//! hanging server costs at most the deadline per image, retries included; a download that
//! runs out of time is one failed image, never a stuck shard.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
