//! Listing a `file://` input directory, where odd entries are one failed image each instead of
//! a failed job.
//!
//! A local directory can hold what no object store key can: file names that are not UTF-8 or
//! hold control characters (TAB, newline, …), symbolic links that dangle or loop, FIFOs and
//! devices, directories that cannot be read. object_store's listing stops at the first of
//! these ("list … failed"), or silently drops some (dangling links). This walk (following
//! links, as object_store's does; [`crate::Location::get_contained`] still refuses links that
//! lead outside the input) yields every regular file as an [`ObjectInfo`] and every odd entry
//! as a [`BadEntry`]: its key made printable (`tab\there.jpg`, `bad\xff.jpg`), its exact URI
//! (the raw bytes percent-escaped), and a [`ListingProblem`] that says what is wrong. The
//! input turns the bad entries that its filter selects into manifest entries that fail at
//! once, so they count as images and are reported in `errors.jsonl`.
//!
//! Which odd entries count: a file-like one (an odd name, a dangling link, a link loop on a
//! file, a FIFO or device) when its printable key passes the input's include/exclude
//! filter; a directory that cannot be walked (a link loop to an ancestor, no permission)
//! always, since the images it may hold cannot be known. A failure on the input directory
//! itself is an error of the whole listing.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::location::ObjectInfo;
use crate::{Result, StoreError};

/// Why a listed entry cannot be labelled: its `errors.jsonl` kind and reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingProblem {
    /// `bad-name`, `dangling-symlink`, `symlink-loop`, `not-a-file` or `unreadable`.
    pub kind: String,
    /// What is wrong, naming the cause.
    pub reason: String,
}

/// An odd entry of a local directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadEntry {
    /// The relative path made printable: control characters as `\t`, `\n`, `\r` or `\x1b`,
    /// bytes that are not UTF-8 as `\xff`.
    pub key: String,
    /// The relative path's raw bytes.
    pub raw: Vec<u8>,
    /// Whether it is a directory that could not be walked (counted whatever the filter).
    pub is_dir: bool,
    /// What is wrong.
    pub problem: ListingProblem,
}

/// The regular files and the odd entries under `dir`, in no particular order.
pub fn walk(dir: &Path) -> Result<(Vec<ObjectInfo>, Vec<BadEntry>)> {
    let mut files = Vec::new();
    let mut bad = Vec::new();
    for item in walkdir::WalkDir::new(dir).min_depth(1).follow_links(true) {
        match item {
            Ok(entry) => {
                let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
                let raw = rel.as_os_str().as_bytes().to_vec();
                let kind = entry.file_type();
                if kind.is_dir() {
                    continue;
                }
                if !kind.is_file() {
                    bad.push(odd(
                        raw,
                        false,
                        "not-a-file",
                        "not a regular file (a FIFO, socket or device)".into(),
                    ));
                    continue;
                }
                if let Some(reason) = name_problem(&raw) {
                    bad.push(odd(raw, false, "bad-name", reason));
                    continue;
                }
                match entry.metadata() {
                    Ok(meta) => files.push(ObjectInfo {
                        key: String::from_utf8_lossy(&raw).into_owned(),
                        size: meta.len(),
                        etag: Some(etag(&meta)),
                    }),
                    // removed since it was listed
                    Err(e) if e.io_error().is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound) => {}
                    Err(e) => bad.push(odd(
                        raw,
                        false,
                        "unreadable",
                        format!("cannot read its metadata: {}", cause(&e)),
                    )),
                }
            }
            Err(err) => {
                let Some(path) = err.path().map(Path::to_path_buf) else { continue };
                if err.depth() == 0 || path == dir {
                    let source = err.into_io_error().unwrap_or_else(|| std::io::Error::other("walk failed"));
                    return Err(StoreError::Io { path, source });
                }
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                let raw = rel.as_os_str().as_bytes().to_vec();
                if let Some(entry) = classify(dir, &path, raw, &err) {
                    bad.push(entry);
                }
            }
        }
    }
    Ok((files, bad))
}

fn odd(raw: Vec<u8>, is_dir: bool, kind: &str, reason: String) -> BadEntry {
    BadEntry { key: printable(&raw), raw, is_dir, problem: ListingProblem { kind: kind.into(), reason } }
}

/// An entry the walk could not follow: a link loop, a dangling link, an unreadable directory.
/// `None` for an entry removed while listing.
fn classify(dir: &Path, path: &Path, raw: Vec<u8>, err: &walkdir::Error) -> Option<BadEntry> {
    if let Some(ancestor) = err.loop_ancestor() {
        let to = match ancestor.strip_prefix(dir) {
            Ok(rel) if rel.as_os_str().is_empty() => "the input directory".to_string(),
            Ok(rel) => format!("its ancestor {}", printable(rel.as_os_str().as_bytes())),
            Err(_) => format!("its ancestor {}", ancestor.display()),
        };
        let reason = format!("symbolic link loop: it leads back to {to}, so it was not listed");
        return Some(odd(raw, true, "symlink-loop", reason));
    }
    let io = err.io_error();
    let is_link = std::fs::symlink_metadata(path).map(|m| m.file_type().is_symlink());
    match (is_link, io.map(std::io::Error::kind)) {
        // gone since the directory was read
        (Err(_), _) => None,
        (Ok(true), Some(std::io::ErrorKind::NotFound)) => {
            let target = std::fs::read_link(path)
                .map(|t| printable(t.as_os_str().as_bytes()))
                .unwrap_or_else(|_| "?".into());
            let reason = format!("dangling symbolic link: its target {target} does not exist");
            Some(odd(raw, false, "dangling-symlink", reason))
        }
        (Ok(true), _) if io.and_then(std::io::Error::raw_os_error) == Some(ELOOP) => {
            let reason = format!("symbolic link loop: {}", cause(err));
            Some(odd(raw, false, "symlink-loop", reason))
        }
        (Ok(is_link), _) => {
            let is_dir = !is_link && std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
            let what = if is_dir { "cannot read the directory" } else { "cannot read it" };
            Some(odd(raw, is_dir, "unreadable", format!("{what}: {}", cause(err))))
        }
    }
}

/// `ELOOP`: too many levels of symbolic links (Linux; the value differs elsewhere).
const ELOOP: i32 = if cfg!(target_os = "linux") { 40 } else { 62 };

/// The I/O cause of a walk error, without the path walkdir puts in front.
fn cause(err: &walkdir::Error) -> String {
    err.io_error().map_or_else(|| err.to_string(), ToString::to_string)
}

/// Why a relative path cannot be an object key: not UTF-8, or a control character.
fn name_problem(raw: &[u8]) -> Option<String> {
    match std::str::from_utf8(raw) {
        Err(e) => {
            let at = e.valid_up_to();
            Some(format!("the file name is not UTF-8 (byte 0x{:02x} at {at}): rename the file", raw[at]))
        }
        Ok(text) => text
            .chars()
            .find(|c| c.is_control())
            .map(|c| format!("the file name holds the control character {}: rename the file", describe(c))),
    }
}

fn describe(c: char) -> String {
    match c {
        '\t' => "TAB (U+0009)".into(),
        '\n' => "newline (U+000A)".into(),
        '\r' => "carriage return (U+000D)".into(),
        c => format!("U+{:04X}", u32::from(c)),
    }
}

/// `raw` with control characters and bytes that are not UTF-8 escaped, Rust-style.
pub fn printable(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The entity tag object_store's local file system gives a file (inode, mtime, size), so that a
/// manifest listed here compares equal to one listed by object_store.
fn etag(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::SystemTime::UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_micros();
    format!("\"{:x}-{mtime:x}-{:x}\"", meta.ino(), meta.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_printable_and_their_problem_named() {
        assert_eq!(printable(b"tab\there\n.jpg"), "tab\\there\\n.jpg");
        assert_eq!(printable(b"bad\xff\x1b.jpg"), "bad\\xff\\x1b.jpg");
        assert_eq!(printable("ü ok.jpg".as_bytes()), "ü ok.jpg");
        assert_eq!(name_problem(b"fine/name.jpg"), None);
        let r = name_problem(b"bad\xff.jpg").expect("not utf-8");
        assert!(r.contains("not UTF-8 (byte 0xff at 3)"), "{r}");
        let r = name_problem(b"a\tb.jpg").expect("tab");
        assert!(r.contains("control character TAB (U+0009)"), "{r}");
    }

    #[test]
    fn odd_entries_are_listed_beside_the_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::write(d.join("ok.jpg"), b"x").expect("write");
        std::fs::write(d.join(std::ffi::OsStr::from_bytes(b"bad\xff.jpg")), b"x").expect("write");
        std::fs::write(d.join("new\nline.jpg"), b"x").expect("write");
        std::os::unix::fs::symlink("nowhere.jpg", d.join("dangling.jpg")).expect("link");
        std::os::unix::fs::symlink("self.jpg", d.join("self.jpg")).expect("link");
        std::fs::create_dir(d.join("sub")).expect("mkdir");
        std::os::unix::fs::symlink("..", d.join("sub/up")).expect("link");
        let (files, mut bad) = walk(d).expect("walk");
        assert_eq!(files.iter().map(|f| f.key.as_str()).collect::<Vec<_>>(), ["ok.jpg"]);
        assert_eq!(files[0].etag.as_deref().map(|e| e.starts_with('"')), Some(true));
        bad.sort_by(|a, b| a.key.cmp(&b.key));
        let got: Vec<_> = bad.iter().map(|b| (b.key.as_str(), b.problem.kind.as_str(), b.is_dir)).collect();
        assert_eq!(
            got,
            [
                ("bad\\xff.jpg", "bad-name", false),
                ("dangling.jpg", "dangling-symlink", false),
                ("new\\nline.jpg", "bad-name", false),
                ("self.jpg", "symlink-loop", false),
                ("sub/up", "symlink-loop", true),
            ]
        );
        assert_eq!(bad[0].raw, b"bad\xff.jpg");
        assert!(bad[1].problem.reason.contains("its target nowhere.jpg does not exist"), "{:?}", bad[1]);
        assert!(bad[4].problem.reason.contains("leads back to the input directory"), "{:?}", bad[4]);
        let err = walk(&d.join("absent")).expect_err("missing root");
        assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    }
}
