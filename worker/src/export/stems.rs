//! Stable, unique file stems for the per-image files of YOLO and VOC (and CVAT image names):
//! the source file name without its extension, made safe for a file name, with `_1`, `_2`, …
//! added in manifest order when it is taken (compared case-insensitively, so the files also
//! coexist on case-insensitive file systems). Memory: one short string per image.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use super::{FormatWriter, OutImage};

/// The name of an image's per-image files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stem {
    /// File name without extension, unique in the job.
    pub stem: String,
    /// The source's extension with its dot (`.jpg`), or empty.
    pub ext: String,
}

impl Stem {
    /// `<stem><ext>`: the image's file name in the exported datasets.
    pub fn file_name(&self) -> String {
        format!("{}{}", self.stem, self.ext)
    }
}

/// Hands out stems.
#[derive(Debug, Default)]
pub struct Stems {
    taken: HashSet<String>,
}

const MAX_STEM_BYTES: usize = 120;

impl Stems {
    /// The stem of the image at `uri` (call in manifest order).
    pub fn assign(&mut self, uri: &str) -> Stem {
        let path = uri.split(['?', '#']).next().unwrap_or(uri);
        let name = path.rsplit('/').next().unwrap_or(path);
        let name = percent_decode(name);
        let (base, ext) = match name.rfind('.') {
            Some(i) if i > 0 && name.len() - i <= 6 => (&name[..i], name[i..].to_string()),
            _ => (name.as_str(), String::new()),
        };
        let ext: String = ext.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '.').collect();
        let mut clean: String = base
            .chars()
            .map(|c| {
                if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        while clean.starts_with(['.', '#', ' ']) {
            clean.remove(0);
        }
        while clean.len() > MAX_STEM_BYTES {
            clean.pop();
        }
        if clean.trim().is_empty() {
            clean = "image".into();
        }
        let mut stem = clean.clone();
        let mut n = 0u64;
        while !self.taken.insert(stem.to_lowercase()) {
            n += 1;
            stem = format!("{clean}_{n}");
        }
        Stem { stem, ext }
    }
}

/// Writes `stems.jsonl`: one `{"id","file_name","stem","ext"}` line per image, so that the
/// per-image files of YOLO, VOC and CVAT can be matched to their source URIs.
pub(super) struct StemsWriter {
    out: BufWriter<File>,
}

#[derive(Serialize)]
struct StemLine<'a> {
    id: u64,
    file_name: &'a str,
    stem: &'a str,
    ext: &'a str,
}

impl StemsWriter {
    pub(super) fn create(root: &Path) -> std::io::Result<Self> {
        Ok(Self { out: BufWriter::new(File::create(root.join(labeljob_store::layout::STEMS))?) })
    }
}

impl FormatWriter for StemsWriter {
    fn image(&mut self, img: &OutImage) -> std::io::Result<()> {
        let line = StemLine { id: img.id, file_name: &img.uri, stem: &img.stem.stem, ext: &img.stem.ext };
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")
    }

    fn finish(mut self: Box<Self>, _info: &serde_json::Value) -> std::io::Result<()> {
        self.out.flush()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_unique_stable_and_safe() {
        let mut s = Stems::default();
        let got: Vec<String> = [
            "file:///a/cat.jpg",
            "file:///b/cat.png",
            "s3://b/x/Cat.JPG",
            "file:///c/cat_1.jpg",
            "https://h/p/my%20photo.jpg?sig=1",
            "file:///d/.hidden",
            "file:///e/a:b.webp",
        ]
        .iter()
        .map(|u| s.assign(u).file_name())
        .collect();
        assert_eq!(
            got,
            ["cat.jpg", "cat_1.png", "Cat_2.JPG", "cat_1_1.jpg", "my photo.jpg", "hidden", "a_b.webp"]
        );
    }
}
