//! The manifest: the input listing frozen once per job (`manifest.jsonl`), one JSON object per
//! line, in listing order. An image's id is its position, so shards are contiguous id ranges
//! ([`shard_range`]) and every stage agrees on them without coordination. The manifest's
//! digest (sha256 of its bytes) identifies the input set in shard outputs and `plan.json`.
//!
//! An entry the listing found but that cannot be an image (a local file name that is not
//! UTF-8, a symbolic link loop, …; see [`crate::localdir`]) is in the manifest like any other,
//! with a `problem` on its line: the shard fails it at once, so it is one `errors.jsonl`
//! entry and the job's counts still add up. Lines without a problem are as they always were.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::localdir::ListingProblem;
use crate::{Result, StoreError};

/// One input image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Position in the manifest (0-based): the image's stable id.
    pub id: u64,
    /// Key relative to the input URI (`photos/a.jpg`), or the URL itself for URL lists.
    pub key: String,
    /// Full source URI (`s3://bucket/photos/a.jpg`, `https://…`); the COCO `file_name`.
    pub uri: String,
    /// Size in bytes, when the listing said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Entity tag, when the listing said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// The frozen input set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The entries; `entries[i].id == i`.
    pub entries: Vec<ManifestEntry>,
    /// The entries that cannot be images, by id, and why: each fails as it is.
    pub problems: BTreeMap<u64, ListingProblem>,
    /// sha256 (lower-case hex) of the `manifest.jsonl` bytes.
    pub digest: String,
}

/// One line of `manifest.jsonl` as written.
#[derive(Serialize)]
struct LineOut<'a> {
    #[serde(flatten)]
    entry: &'a ManifestEntry,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<&'a ListingProblem>,
}

/// One line of `manifest.jsonl` as read.
#[derive(Deserialize)]
struct LineIn {
    #[serde(flatten)]
    entry: ManifestEntry,
    #[serde(default)]
    problem: Option<ListingProblem>,
}

impl Manifest {
    /// A manifest of these entries (their ids should be their positions), with its digest.
    pub fn new(entries: Vec<ManifestEntry>) -> Manifest {
        Self::with_problems(entries, BTreeMap::new())
    }

    /// A manifest of these entries, some of which (by id) cannot be images.
    pub fn with_problems(entries: Vec<ManifestEntry>, problems: BTreeMap<u64, ListingProblem>) -> Manifest {
        let digest = sha256_hex(&jsonl_bytes(&entries, &problems));
        Manifest { entries, problems, digest }
    }

    /// The `manifest.jsonl` bytes: one compact JSON object per line, `\n`-terminated.
    pub fn to_jsonl(&self) -> Vec<u8> {
        jsonl_bytes(&self.entries, &self.problems)
    }

    /// Why the entry `id` cannot be an image, if it cannot.
    pub fn problem(&self, id: u64) -> Option<&ListingProblem> {
        self.problems.get(&id)
    }

    /// Parse `manifest.jsonl`. Errors name the 1-based line. Blank lines are skipped; each
    /// entry's id must equal its position. The digest is that of `bytes` as given.
    pub fn from_jsonl(bytes: &[u8]) -> Result<Manifest> {
        let mut entries = Vec::new();
        let mut problems = BTreeMap::new();
        for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
            let line_no = index + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let LineIn { entry, problem: listing_problem } =
                serde_json::from_slice(line).map_err(|source| StoreError::ManifestLine {
                    line: line_no,
                    problem: "not a manifest entry",
                    source: Some(source),
                })?;
            let problem = if entry.id != entries.len() as u64 {
                Some("id is not the entry's position")
            } else if entry.key.is_empty() || entry.uri.is_empty() {
                Some("empty key or uri")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(StoreError::ManifestLine { line: line_no, problem, source: None });
            }
            if let Some(p) = listing_problem {
                problems.insert(entry.id, p);
            }
            entries.push(entry);
        }
        Ok(Manifest { entries, problems, digest: sha256_hex(bytes) })
    }

    /// Number of images.
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries of shard `index` of `shards` (see [`shard_range`]).
    pub fn shard(&self, shards: u32, index: u32) -> &[ManifestEntry] {
        let range = shard_range(self.len(), shards, index);
        // the range lies within 0..len, which fits in usize since the entries are in memory
        &self.entries[range.start as usize..range.end as usize]
    }
}

fn jsonl_bytes(entries: &[ManifestEntry], problems: &BTreeMap<u64, ListingProblem>) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 128);
    for entry in entries {
        let line = LineOut { entry, problem: problems.get(&entry.id) };
        // strings and integers always serialise; the writer is a Vec
        serde_json::to_writer(&mut out, &line).expect("serialising a manifest entry cannot fail");
        out.push(b'\n');
    }
    out
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The ids of shard `index` of `shards` over `total` images: contiguous, in order, sizes
/// differing by at most one (the first `total % shards` shards get one more), every id in
/// exactly one shard. `shards == 0` or `index >= shards` gives an empty range.
pub fn shard_range(total: u64, shards: u32, index: u32) -> Range<u64> {
    if shards == 0 || index >= shards {
        return 0..0;
    }
    let (shards, index) = (u64::from(shards), u64::from(index));
    let base = total / shards;
    let extra = total % shards;
    let start = index * base + index.min(extra);
    let len = base + u64::from(index < extra);
    start..start + len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, key: &str) -> ManifestEntry {
        ManifestEntry {
            id,
            key: key.to_string(),
            uri: format!("s3://b/{key}"),
            size: Some(10 + id),
            etag: id.is_multiple_of(2).then(|| format!("\"etag{id}\"")),
        }
    }

    #[test]
    fn jsonl_round_trip_keeps_entries_and_digest() {
        let m = Manifest::new(vec![entry(0, "a.jpg"), entry(1, "dir/b c.png"), entry(2, "ü.webp")]);
        let bytes = m.to_jsonl();
        assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 3);
        let back = Manifest::from_jsonl(&bytes).expect("parse");
        assert_eq!(back, m);
        assert_eq!(back.digest, sha256_hex(&bytes));
        assert_eq!(m.digest.len(), 64);
    }

    #[test]
    fn lines_without_problems_are_as_before_and_problems_round_trip() {
        let m = Manifest::new(vec![entry(0, "a.jpg"), entry(1, "b.jpg")]);
        let before: Vec<u8> = m
            .entries
            .iter()
            .flat_map(|e| [serde_json::to_vec(e).expect("json"), b"\n".to_vec()].concat())
            .collect();
        assert_eq!(m.to_jsonl(), before, "same bytes, same digest as manifests written before");
        let problem = ListingProblem { kind: "bad-name".into(), reason: "not UTF-8".into() };
        let m = Manifest::with_problems(m.entries, BTreeMap::from([(1, problem.clone())]));
        let text = String::from_utf8(m.to_jsonl()).expect("utf8");
        assert!(
            text.lines()
                .nth(1)
                .is_some_and(|l| l.ends_with(r#""problem":{"kind":"bad-name","reason":"not UTF-8"}}"#)),
            "{text}"
        );
        let back = Manifest::from_jsonl(text.as_bytes()).expect("parse");
        assert_eq!(back, m);
        assert_eq!(back.problem(1), Some(&problem));
        assert_eq!(back.problem(0), None);
    }

    #[test]
    fn digest_of_empty_manifest_is_sha256_of_nothing() {
        let m = Manifest::new(Vec::new());
        assert_eq!(m.digest, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert!(m.is_empty());
        assert!(m.shard(4, 0).is_empty());
    }

    #[test]
    fn digest_changes_with_content() {
        let a = Manifest::new(vec![entry(0, "a.jpg")]);
        let b = Manifest::new(vec![entry(0, "b.jpg")]);
        assert_ne!(a.digest, b.digest);
    }

    #[test]
    fn parse_errors_name_the_line() {
        let good = Manifest::new(vec![entry(0, "a.jpg"), entry(1, "b.jpg")]).to_jsonl();
        let mut text = String::from_utf8(good).expect("utf8");
        text.push_str("{\"id\": 2, \"key\": \n");
        let err = Manifest::from_jsonl(text.as_bytes()).expect_err("bad line 3");
        assert!(matches!(err, StoreError::ManifestLine { line: 3, source: Some(_), .. }), "{err:?}");
        assert!(err.to_string().contains("line 3"), "{err}");

        let skipped =
            "{\"id\":0,\"key\":\"a\",\"uri\":\"file:///x/a\"}\n\n{\"id\":5,\"key\":\"b\",\"uri\":\"u\"}\n";
        let err = Manifest::from_jsonl(skipped.as_bytes()).expect_err("id mismatch on line 3");
        assert!(matches!(err, StoreError::ManifestLine { line: 3, source: None, .. }), "{err:?}");

        let empty_key = "{\"id\":0,\"key\":\"\",\"uri\":\"u\"}";
        let err = Manifest::from_jsonl(empty_key.as_bytes()).expect_err("empty key");
        assert!(matches!(err, StoreError::ManifestLine { line: 1, .. }), "{err:?}");
    }

    #[test]
    fn parse_accepts_crlf_blank_lines_and_missing_optionals() {
        let text = "{\"id\":0,\"key\":\"a\",\"uri\":\"https://h/a\"}\r\n\r\n{\"id\":1,\"key\":\"b\",\"uri\":\"https://h/b\",\"size\":3}";
        let m = Manifest::from_jsonl(text.as_bytes()).expect("parse");
        assert_eq!(m.len(), 2);
        assert_eq!(m.entries[0].size, None);
        assert_eq!(m.entries[1].size, Some(3));
        assert_eq!(m.digest, sha256_hex(text.as_bytes()));
    }

    /// Check the shard_range properties for one (total, shards).
    fn check_partition(total: u64, shards: u32) {
        let ranges: Vec<_> = (0..shards).map(|i| shard_range(total, shards, i)).collect();
        let mut next = 0;
        for r in &ranges {
            assert_eq!(r.start, next, "contiguous: total={total} shards={shards}");
            assert!(r.end >= r.start);
            next = r.end;
        }
        assert_eq!(next, total, "covers all ids: total={total} shards={shards}");
        let min = ranges.iter().map(|r| r.end - r.start).min().unwrap_or(0);
        let max = ranges.iter().map(|r| r.end - r.start).max().unwrap_or(0);
        assert!(max - min <= 1, "balanced: total={total} shards={shards} min={min} max={max}");
        assert_eq!(shard_range(total, shards, shards), 0..0);
    }

    #[test]
    fn shard_ranges_partition_exhaustively_for_small_inputs() {
        for total in 0..=300 {
            for shards in 1..=64 {
                check_partition(total, shards);
            }
        }
    }

    #[test]
    fn shard_ranges_partition_for_large_pseudo_random_inputs() {
        // xorshift64: reproducible pseudo-random totals and shard counts
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..500 {
            let total = next() % 10_000_000_000;
            let shards = (next() % 2_000) as u32 + 1;
            check_partition(total, shards);
        }
        // extremes: no overflow near u64::MAX
        check_partition(u64::MAX, 7);
        check_partition(u64::MAX, 1);
        assert_eq!(shard_range(10, 0, 0), 0..0);
    }

    #[test]
    fn manifest_shards_slice_entries() {
        let m = Manifest::new((0..10).map(|i| entry(i, &format!("{i}.jpg"))).collect());
        let sizes: Vec<_> = (0..3).map(|i| m.shard(3, i).len()).collect();
        assert_eq!(sizes, vec![4, 3, 3]);
        assert_eq!(m.shard(3, 1)[0].id, 4);
        assert_eq!(m.shard(3, 2).last().map(|e| e.id), Some(9));
    }
}
