//! Label formats written by the merge, in one pass over the shards: COCO (always), Ultralytics
//! YOLO, Pascal VOC, CVAT for images 1.1 and Label Studio tasks. Each [`ExportSet`] (the main set,
//! the review set) writes its files into a local staging directory laid out like the output;
//! [`upload_tree`] then copies the tree to the output store. Memory: the writers hold one image
//! at a time; [`Stems`] keeps one short string per image so that file stems stay unique.
//!
//! Layout under the output (or `review/` for the review set):
//! ```text
//! annotations.json results.json     COCO dataset and loadRes list
//! stems.jsonl                       {"id","file_name","stem","ext"} per image (yolo, voc, cvat names)
//! yolo/data.yaml yolo/labels/<stem>.txt
//! voc/Annotations/<stem>.xml voc/ImageSets/Main/default.txt voc/labelmap.txt
//! cvat/annotations.xml
//! labelstudio/tasks.json labelstudio/config.xml
//! ```

mod coco;
mod cvat;
mod files;
mod labelstudio;
mod stems;
mod voc;
mod yolo;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use futures::StreamExt;
use labeljob_api::v1alpha1::OutputFormat;
use labeljob_store::{Location, StoreError};

use crate::model::classes::Category;
use crate::shardfile::Detection;

pub use stems::{Stem, Stems};

/// One image as the merge writes it.
#[derive(Debug, Clone, Copy)]
pub struct OutImage<'a> {
    /// COCO image id (manifest id + 1).
    pub id: u64,
    /// Source URI (COCO `file_name`).
    pub uri: &'a str,
    /// Upright width in pixels.
    pub width: u32,
    /// Upright height in pixels.
    pub height: u32,
    /// Boxes in original pixels.
    pub detections: &'a [Detection],
    /// Flagged for review (review mode `Flag`, main set).
    pub flagged: bool,
}

/// What every writer needs to know about the job.
#[derive(Debug, Clone)]
pub struct ExportMeta {
    /// Output categories in id order.
    pub categories: Vec<Category>,
    /// sha256 of the model (Label Studio `model_version`).
    pub model_sha256: String,
    /// The job's name (CVAT task name).
    pub job_name: String,
}

impl ExportMeta {
    /// Position of category `id` in id order (YOLO class index), if known.
    pub fn position(&self, id: u32) -> Option<usize> {
        self.categories.iter().position(|c| c.id == id)
    }

    /// Name of category `id`.
    pub fn name(&self, id: u32) -> &str {
        self.categories.iter().find(|c| c.id == id).map_or("?", |c| c.name.as_str())
    }
}

/// A format writer of one set.
trait FormatWriter {
    /// Write one image (per-image files go to `files`, the writer's own writer thread).
    fn image(&mut self, img: &OutImage<'_>, stem: &Stem, files: &files::FilePool) -> std::io::Result<()>;
    /// Write what needs every image seen (headers with counts, class lists) and flush.
    fn finish(self: Box<Self>) -> std::io::Result<()>;
}

/// The writers of one set (main or review) into `root`.
pub struct ExportSet {
    coco: coco::CocoWriter,
    others: Vec<(Box<dyn FormatWriter>, files::FilePool)>,
    stems: BufWriter<File>,
    images: u64,
}

impl ExportSet {
    /// Writers for `formats` (COCO always) under `root`; `results` also writes `results.json`.
    pub fn create(
        root: &Path,
        formats: &[OutputFormat],
        meta: &ExportMeta,
        results: bool,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let mut others: Vec<Box<dyn FormatWriter>> = Vec::new();
        // Each writer gets its own file thread: files of one format share a directory, and
        // creating files in different directories runs in parallel.
        for f in formats {
            match f {
                OutputFormat::Coco => {}
                OutputFormat::Yolo => others.push(Box::new(yolo::YoloWriter::create(root, meta)?)),
                OutputFormat::Voc => others.push(Box::new(voc::VocWriter::create(root, meta)?)),
                OutputFormat::Cvat => others.push(Box::new(cvat::CvatWriter::create(root, meta)?)),
                OutputFormat::Labelstudio => {
                    others.push(Box::new(labelstudio::LabelStudioWriter::create(root, meta)?))
                }
            }
        }
        Ok(Self {
            coco: coco::CocoWriter::create(root, meta, results)?,
            others: others.into_iter().map(|w| (w, files::FilePool::new(1))).collect(),
            stems: BufWriter::new(File::create(root.join(labeljob_store::layout::STEMS))?),
            images: 0,
        })
    }

    /// Write one image to every format.
    pub fn image(&mut self, img: &OutImage<'_>, stem: &Stem) -> std::io::Result<()> {
        self.coco.image(img)?;
        for (w, files) in &mut self.others {
            w.image(img, stem, files)?;
        }
        serde_json::to_writer(
            &mut self.stems,
            &serde_json::json!({"id": img.id, "file_name": img.uri, "stem": stem.stem, "ext": stem.ext}),
        )?;
        self.stems.write_all(b"\n")?;
        self.images += 1;
        Ok(())
    }

    /// Images written.
    pub fn images(&self) -> u64 {
        self.images
    }

    /// Finish every format; `info` is the COCO `info` object.
    pub fn finish(self, info: &serde_json::Value) -> std::io::Result<()> {
        self.coco.finish(info)?;
        for (w, files) in self.others {
            w.finish()?;
            files.finish()?;
        }
        let mut stems = self.stems;
        stems.flush()
    }
}

/// Prefix of the staging directories a merge makes inside a `file://` output.
const STAGING_PREFIX: &str = ".merge-staging-";

/// Where the merge writes its files before they are published: inside the output directory
/// for `file://` outputs (so that publishing is a rename per entry), else a temporary directory.
/// Staging directories left by a killed merge are removed first.
pub fn staging_dir(output: &Location) -> std::io::Result<tempfile::TempDir> {
    let Some(dir) = output.local_dir() else { return tempfile::tempdir() };
    std::fs::create_dir_all(dir)?;
    for e in std::fs::read_dir(dir)?.flatten() {
        if e.file_name().to_string_lossy().starts_with(STAGING_PREFIX) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    tempfile::Builder::new().prefix(STAGING_PREFIX).tempdir_in(dir)
}

/// Publish the staged tree `root` to `output`: a `file://` output gets each top-level entry
/// renamed into place (a directory such as `yolo/` replaces the previous one whole); other
/// stores get every file uploaded. Returns the number of files.
pub async fn publish(root: &Path, output: &Location) -> Result<u64, StoreError> {
    match output.local_dir() {
        Some(dir) if root.parent() == Some(dir) => rename_into(root, dir),
        _ => upload_tree(root, output).await,
    }
}

fn rename_into(root: &Path, dir: &Path) -> Result<u64, StoreError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    let files = count_files(root).map_err(io(root))?;
    for e in std::fs::read_dir(root).map_err(io(root))? {
        let e = e.map_err(io(root))?;
        let target = dir.join(e.file_name());
        if e.path().is_dir() && target.is_dir() {
            let old = root.join(format!(".old-{}", e.file_name().to_string_lossy()));
            std::fs::rename(&target, &old).map_err(io(&target))?;
        }
        std::fs::rename(e.path(), &target).map_err(io(&target))?;
    }
    Ok(files)
}

fn count_files(root: &Path) -> std::io::Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(root)? {
        let e = e?;
        n += if e.file_type()?.is_dir() { count_files(&e.path())? } else { 1 };
    }
    Ok(n)
}

/// Upload every file below `root` to `output` under the same relative key, 32 at a time.
/// Returns the number of files.
pub async fn upload_tree(root: &Path, output: &Location) -> Result<u64, StoreError> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let rd = std::fs::read_dir(&d).map_err(|source| StoreError::Io { path: d.clone(), source })?;
        for e in rd {
            let e = e.map_err(|source| StoreError::Io { path: d.clone(), source })?;
            let path = e.path();
            if e.file_type().map_err(|source| StoreError::Io { path: path.clone(), source })?.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let n = files.len() as u64;
    let key = |p: &PathBuf| p.strip_prefix(root).unwrap_or(p).to_string_lossy().replace('\\', "/");
    let mut uploads = futures::stream::iter(
        files.iter().map(|p| async move { output.put_file(&key(p), p).await.map(|_| ()) }),
    )
    .buffer_unordered(32);
    while let Some(r) = uploads.next().await {
        r?;
    }
    Ok(n)
}

/// Escape text for XML content and attribute values.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
