//! The image counts of `report.json`, the merge's summary: the worker writes them and the
//! operator reads them into `status.images` once the merge Job is complete (the review and
//! duplicate counts are known only there). One type, so both sides agree on the names.
//!
//! Format (camelCase, the `images` object of `report.json`): `{"total":T,"labelled":L,
//! "failed":F,"main":M,"review":R,"duplicates":D,"modelRuns":N}`.

use serde::{Deserialize, Serialize};

use crate::{Location, Result, StoreError, layout};

/// Where every image of the manifest ended up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportImages {
    /// Images in the manifest.
    pub total: u64,
    /// Images labelled (main and review sets, duplicates whose labels were copied).
    pub labelled: u64,
    /// Images that could not be labelled.
    pub failed: u64,
    /// Images in the main set.
    pub main: u64,
    /// Images routed to the review set (`spec.review`).
    pub review: u64,
    /// Duplicate images found (`spec.input.dedup`).
    pub duplicates: u64,
    /// Images sent to the model (the rest were duplicates or failed before inference).
    pub model_runs: u64,
}

#[derive(Deserialize)]
struct ReportHead {
    images: ReportImages,
}

/// Largest `report.json` read back (it holds counts and a per-class table, not per image).
const MAX_REPORT_BYTES: u64 = 4 << 20;

/// The image counts of `output`'s `report.json` (None before the merge wrote it).
pub async fn read_report_images(output: &Location) -> Result<Option<ReportImages>> {
    let uri = output.child_uri(layout::REPORT);
    let info = match output.head(layout::REPORT).await {
        Ok(info) => info,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    if info.size > MAX_REPORT_BYTES {
        return Err(StoreError::ObjectTooLarge { uri, size: info.size, limit: MAX_REPORT_BYTES });
    }
    let Some(bytes) = output.get_opt(layout::REPORT).await? else { return Ok(None) };
    let head: ReportHead =
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json { uri, source })?;
    Ok(Some(head.images))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_the_counts_and_refuses_a_huge_report() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = Location::parse(&format!("file://{}", dir.path().display())).expect("location");
        assert_eq!(read_report_images(&out).await.expect("no report yet"), None);
        let report = r#"{"provenance":{},"images":{"total":5,"labelled":4,"failed":1,"main":3,
            "review":1,"duplicates":2,"modelRuns":2},"detections":9}"#;
        std::fs::write(dir.path().join(layout::REPORT), report).expect("write");
        let got = read_report_images(&out).await.expect("reads").expect("present");
        assert_eq!((got.total, got.main, got.review, got.duplicates, got.model_runs), (5, 3, 1, 2, 2));
        let f = std::fs::File::create(dir.path().join(layout::REPORT)).expect("create");
        f.set_len(MAX_REPORT_BYTES + 1).expect("sparse");
        let e = read_report_images(&out).await.expect_err("too large");
        assert!(e.to_string().contains("report.json is 4194305 bytes"), "{e}");
    }
}
