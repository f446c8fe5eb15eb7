//! The output layout: the keys every stage reads and writes under `spec.output.uri`.
//!
//! ```text
//! manifest.jsonl                  plan: the frozen input listing
//! plan.json                       plan: {"manifestDigest","total","shards",...}
//! shards/shard-NNNNN.json         shard N: its COCO part and error list
//! progress/shard-NNNNN.json       shard N: progress, rewritten every few seconds
//! partial/shard-NNNNN/part-KKKKK.json  shard N: results committed so far (K-th chunk); a
//!                                 retried shard resumes after them; removed once the shard
//!                                 file is written
//! annotations.json                merge: the COCO dataset
//! results.json                    merge: COCO results list (pycocotools loadRes)
//! errors.jsonl                    merge: one failed image per line
//! report.json                     merge: counts, per-class totals, timings
//! duplicates.jsonl                merge: one duplicate image per line (input.dedup)
//! stems.jsonl                     merge: image → file stem of the per-image formats
//! yolo/ voc/ cvat/ labelstudio/   merge: the other output.formats
//! review/                         merge: the review set (annotations.json, stems.jsonl, …)
//! run.lock                        labeljob run: the running process (one run per output)
//! ```
//!
//! Shard numbers have at least 5 digits (`shard-00003.json`), so keys sort by index.

/// The frozen input listing.
pub const MANIFEST: &str = "manifest.jsonl";
/// The plan summary.
pub const PLAN: &str = "plan.json";
/// Directory of the shard outputs.
pub const SHARDS_DIR: &str = "shards/";
/// Directory of the shard progress objects.
pub const PROGRESS_DIR: &str = "progress/";
/// Directory of the shards' partial results (checkpoints of running shards).
pub const PARTIAL_DIR: &str = "partial/";
/// The merged COCO dataset.
pub const ANNOTATIONS: &str = "annotations.json";
/// The merged COCO results list.
pub const RESULTS: &str = "results.json";
/// Images that could not be labelled, one JSON object per line.
pub const ERRORS: &str = "errors.jsonl";
/// The merge report.
pub const REPORT: &str = "report.json";
/// Duplicate images, one JSON object per line.
pub const DUPLICATES: &str = "duplicates.jsonl";
/// Image → stem of its per-image files (YOLO, VOC, CVAT names), one JSON object per line.
pub const STEMS: &str = "stems.jsonl";
/// Directory of the review set.
pub const REVIEW_DIR: &str = "review";
/// Held by a running `labeljob run` (host, pid, start): one run per output.
pub const RUN_LOCK: &str = "run.lock";
/// Prefix of the exact-duplicate claims: shards of a job claim each content hash they label
/// first, so that a byte copy in another shard is not sent to the model again.
pub const CLAIMS_DIR: &str = "claims/";

/// `claims/<manifest digest, 16 hex>/<sha256>`: who labels the content `sha256` for the
/// manifest `manifest_digest` (a JSON `{"id", "uri"}`, written once, put-if-absent).
pub fn claim_key(manifest_digest: &str, sha256: &str) -> String {
    let digest = manifest_digest.get(..16).unwrap_or(manifest_digest);
    format!("{CLAIMS_DIR}{digest}/{sha256}")
}

const SHARD_FILE_PREFIX: &str = "shard-";
const SHARD_FILE_SUFFIX: &str = ".json";

/// `shard-NNNNN.json` for shard `index`.
fn shard_file(index: u32) -> String {
    format!("{SHARD_FILE_PREFIX}{index:05}{SHARD_FILE_SUFFIX}")
}

/// `shards/shard-NNNNN.json`: the output of shard `index`.
pub fn shard_key(index: u32) -> String {
    format!("{SHARDS_DIR}{}", shard_file(index))
}

/// `progress/shard-NNNNN.json`: the progress object of shard `index`.
pub fn progress_key(index: u32) -> String {
    format!("{PROGRESS_DIR}{}", shard_file(index))
}

/// `partial/shard-NNNNN/`: the prefix of shard `index`'s partial result chunks.
pub fn partial_prefix(index: u32) -> String {
    format!("{PARTIAL_DIR}{SHARD_FILE_PREFIX}{index:05}/")
}

/// `partial/shard-NNNNN/part-KKKKK.json`: chunk `part` of shard `index`'s partial results.
pub fn partial_key(index: u32, part: u32) -> String {
    format!("{}part-{part:05}{SHARD_FILE_SUFFIX}", partial_prefix(index))
}

/// The chunk number of a key `partial/shard-NNNNN/part-KKKKK.json` of shard `index`.
pub fn parse_partial_key(index: u32, key: &str) -> Option<u32> {
    let digits =
        key.strip_prefix(&partial_prefix(index))?.strip_prefix("part-")?.strip_suffix(SHARD_FILE_SUFFIX)?;
    if digits.len() < 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let part: u32 = digits.parse().ok()?;
    (partial_key(index, part) == key).then_some(part)
}

/// The shard index of a key `shards/shard-NNNNN.json`, if it is one.
pub fn parse_shard_key(key: &str) -> Option<u32> {
    parse_in_dir(key, SHARDS_DIR)
}

/// The shard index of a key `progress/shard-NNNNN.json`, if it is one.
pub fn parse_progress_key(key: &str) -> Option<u32> {
    parse_in_dir(key, PROGRESS_DIR)
}

fn parse_in_dir(key: &str, dir: &str) -> Option<u32> {
    let digits = key.strip_prefix(dir)?.strip_prefix(SHARD_FILE_PREFIX)?.strip_suffix(SHARD_FILE_SUFFIX)?;
    // exactly the form shard_file() writes: at least 5 ASCII digits, no sign, no padding
    // beyond 5 digits
    if digits.len() < 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let index: u32 = digits.parse().ok()?;
    (shard_file(index) == format!("{SHARD_FILE_PREFIX}{digits}{SHARD_FILE_SUFFIX}")).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_five_digit_indices() {
        assert_eq!(shard_key(0), "shards/shard-00000.json");
        assert_eq!(shard_key(42), "shards/shard-00042.json");
        assert_eq!(progress_key(7), "progress/shard-00007.json");
        assert_eq!(progress_key(123_456), "progress/shard-123456.json");
    }

    #[test]
    fn keys_parse_back() {
        for index in [0, 1, 9, 10, 99_999, 100_000, 4_000_000, u32::MAX] {
            assert_eq!(parse_shard_key(&shard_key(index)), Some(index));
            assert_eq!(parse_progress_key(&progress_key(index)), Some(index));
            assert_eq!(parse_shard_key(&progress_key(index)), None);
        }
    }

    #[test]
    fn partial_keys_belong_to_their_shard() {
        assert_eq!(partial_key(3, 12), "partial/shard-00003/part-00012.json");
        assert_eq!(parse_partial_key(3, &partial_key(3, 12)), Some(12));
        assert_eq!(parse_partial_key(3, &partial_key(3, 123_456)), Some(123_456));
        assert_eq!(parse_partial_key(4, &partial_key(3, 12)), None, "another shard's chunk");
        for key in [
            "partial/shard-00003/part-1.json",
            "partial/shard-00003/part-00001.json.tmp",
            "partial/shard-00003/x",
        ] {
            assert_eq!(parse_partial_key(3, key), None, "{key}");
        }
    }

    #[test]
    fn other_keys_do_not_parse() {
        for key in [
            "progress/shard-1.json",
            "progress/shard-000001.json",
            "progress/shard-0000a.json",
            "progress/shard-+0001.json",
            "progress/shard-00001.json.tmp",
            "progress/shard-00001.json#1",
            "progress/x/shard-00001.json",
            "shard-00001.json",
            "progress/shard-99999999999.json",
        ] {
            assert_eq!(parse_progress_key(key), None, "{key}");
        }
    }

    #[test]
    fn keys_sort_by_index() {
        let mut keys: Vec<_> = [10, 2, 99_999, 0, 300].into_iter().map(shard_key).collect();
        keys.sort();
        let indices: Vec<_> = keys.iter().filter_map(|k| parse_shard_key(k)).collect();
        assert_eq!(indices, vec![0, 2, 10, 300, 99_999]);
    }
}
