//! Label formats written by the merge, in one pass over the shards: COCO (always), Ultralytics
//! YOLO, Pascal VOC, CVAT for images 1.1 and Label Studio tasks. Each [`ExportSet`] (the main set,
//! the review set) writes its files into a local staging directory laid out like the output;
//! [`publish`] then moves or copies the tree to the output store. Each format is written by its
//! own thread, fed batches of images (bounded queues: memory is a few batches, not the job);
//! [`Stems`] keeps one short string per image so that file stems stay unique.
//!
//! Layout under the output (or `review/` for the review set):
//! ```text
//! annotations.json results.json     COCO dataset and loadRes list
//! stems.jsonl                       {"id","file_name","stem","ext"} per image (yolo, voc, cvat names)
//! yolo.zip: data.yaml labels/<stem>.txt           (`output.archive: none`: the same under yolo/)
//! voc.zip: Annotations/<stem>.xml ImageSets/Main/default.txt labelmap.txt   (or under voc/)
//! cvat/annotations.xml
//! labelstudio/tasks.json labelstudio/config.xml
//! ```

mod coco;
mod cvat;
mod labelstudio;
mod stems;
mod text;
mod tree;
mod voc;
mod yolo;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use futures::StreamExt;
use labeljob_api::v1alpha1::{Archive, OutputFormat};
use labeljob_store::{Location, StoreError};

use crate::model::classes::Category;
use crate::shardfile::Detection;

pub use stems::{Stem, Stems};
pub(crate) use text::{json_str, push_fixed, push_int, push_trimmed, push_uint, xml_escape};

/// One image as the writers receive it (owned: batches of them cross to the writer threads).
#[derive(Debug, Clone)]
pub struct OutImage {
    /// COCO image id (manifest id + 1).
    pub id: u64,
    /// Source URI (COCO `file_name`).
    pub uri: String,
    /// Upright width in pixels.
    pub width: u32,
    /// Upright height in pixels.
    pub height: u32,
    /// Boxes in original pixels.
    pub detections: Vec<Detection>,
    /// Flagged for review (review mode `Flag`, main set).
    pub flagged: bool,
    /// Name of the image's per-image files.
    pub stem: Stem,
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
    /// Category id → position in `categories`.
    index: HashMap<u32, usize>,
}

impl ExportMeta {
    /// The metadata of a job whose output classes are `categories` (in id order).
    pub fn new(categories: Vec<Category>, model_sha256: String, job_name: String) -> Self {
        let index = categories.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        Self { categories, model_sha256, job_name, index }
    }

    /// Position of category `id` in id order (YOLO class index), if known.
    pub fn position(&self, id: u32) -> Option<usize> {
        self.index.get(&id).copied()
    }

    /// Name of category `id`.
    pub fn name(&self, id: u32) -> &str {
        self.position(id).map_or("?", |i| self.categories[i].name.as_str())
    }

    /// Every category name mapped by `f`, by position, for writers that print a name per box.
    fn names_by_position(&self, f: impl Fn(&str) -> String) -> Vec<String> {
        self.categories.iter().map(|c| f(&c.name)).collect()
    }

    /// `names[position of id]`, or `"?"` for an id outside the table.
    fn lookup<'a>(&self, names: &'a [String], id: u32) -> &'a str {
        self.position(id).and_then(|i| names.get(i)).map_or("?", String::as_str)
    }
}

/// A format writer of one set; each runs on its own thread.
trait FormatWriter: Send {
    /// Write one image (per-image files included).
    fn image(&mut self, img: &OutImage) -> std::io::Result<()>;
    /// Write what needs every image seen (headers with counts, class lists) and flush;
    /// `info` is the COCO `info` object.
    fn finish(self: Box<Self>, info: &serde_json::Value) -> std::io::Result<()>;
}

/// Images handed to the writer threads at a time: one wake-up per batch, not per image.
const BATCH: usize = 256;
/// Batches queued per writer thread. Memory: at most `(QUEUE + 2) × BATCH` images are held
/// (queued, being written, being filled), whatever the job's size.
const QUEUE: usize = 4;

enum Msg {
    Images(Arc<Vec<OutImage>>),
    Finish(Arc<serde_json::Value>),
}

/// One format writer's thread and its queue.
struct WriterThread {
    name: &'static str,
    tx: SyncSender<Msg>,
    handle: JoinHandle<std::io::Result<()>>,
}

impl WriterThread {
    fn spawn(name: &'static str, mut writer: Box<dyn FormatWriter>) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel::<Msg>(QUEUE);
        let handle = std::thread::Builder::new().name(format!("export-{name}")).spawn(move || {
            for msg in rx {
                match msg {
                    Msg::Images(batch) => batch.iter().try_for_each(|img| writer.image(img))?,
                    Msg::Finish(info) => return writer.finish(&info),
                }
            }
            Ok(()) // the set was dropped unfinished (the merge failed): nothing to publish
        })?;
        Ok(Self { name, tx, handle })
    }

    /// The thread's outcome (it has stopped or was told to finish).
    fn join(self) -> std::io::Result<()> {
        let what = |e: std::io::Error| std::io::Error::new(e.kind(), format!("writing {}: {e}", self.name));
        match self.handle.join() {
            Ok(r) => r.map_err(what),
            Err(_) => Err(std::io::Error::other(format!("the {} writer panicked", self.name))),
        }
    }
}

/// The writers of one set (main or review) into `root`, each format on its own thread: the
/// merge loop only sorts images into sets, and the formats are written in parallel.
pub struct ExportSet {
    threads: Vec<WriterThread>,
    pending: Vec<OutImage>,
    images: u64,
}

impl ExportSet {
    /// Writers for `formats` (COCO always) under `root`, the per-image formats packaged per
    /// `archive`; `results` also writes `results.json`.
    pub fn create(
        root: &Path,
        formats: &[OutputFormat],
        archive: Archive,
        meta: &ExportMeta,
        results: bool,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let mut writers: Vec<(&'static str, Box<dyn FormatWriter>)> = vec![
            ("coco", Box::new(coco::CocoWriter::create(root, meta, results)?)),
            ("stems", Box::new(stems::StemsWriter::create(root)?)),
        ];
        for f in formats {
            match f {
                OutputFormat::Coco => {}
                OutputFormat::Yolo => {
                    writers.push(("yolo", Box::new(yolo::YoloWriter::create(root, meta, archive)?)))
                }
                OutputFormat::Voc => {
                    writers.push(("voc", Box::new(voc::VocWriter::create(root, meta, archive)?)))
                }
                OutputFormat::Cvat => writers.push(("cvat", Box::new(cvat::CvatWriter::create(root, meta)?))),
                OutputFormat::Labelstudio => writers
                    .push(("labelstudio", Box::new(labelstudio::LabelStudioWriter::create(root, meta)?))),
            }
        }
        let threads =
            writers.into_iter().map(|(name, w)| WriterThread::spawn(name, w)).collect::<Result<_, _>>()?;
        Ok(Self { threads, pending: Vec::with_capacity(BATCH), images: 0 })
    }

    /// Write one image to every format.
    pub fn image(&mut self, img: OutImage) -> std::io::Result<()> {
        self.pending.push(img);
        self.images += 1;
        if self.pending.len() >= BATCH { self.send_pending() } else { Ok(()) }
    }

    fn send_pending(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = Arc::new(std::mem::replace(&mut self.pending, Vec::with_capacity(BATCH)));
        for i in 0..self.threads.len() {
            if self.threads[i].tx.send(Msg::Images(batch.clone())).is_err() {
                // That writer stopped on an error: report it.
                let t = self.threads.swap_remove(i);
                return Err(t.join().err().unwrap_or_else(|| std::io::Error::other("a writer stopped")));
            }
        }
        Ok(())
    }

    /// Images written.
    pub fn images(&self) -> u64 {
        self.images
    }

    /// Finish every format; `info` is the COCO `info` object. Returns the first error.
    pub fn finish(mut self, info: &serde_json::Value) -> std::io::Result<()> {
        self.send_pending()?;
        let info = Arc::new(info.clone());
        let mut first = Ok(());
        for t in self.threads {
            // A failed send means the thread already stopped: join reports why.
            let _ = t.tx.send(Msg::Finish(info.clone()));
            let r = t.join();
            if first.is_ok() {
                first = r;
            }
        }
        first
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
        remove_other_packaging(dir, &e.file_name().to_string_lossy()).map_err(io(dir))?;
    }
    Ok(files)
}

/// The formats written per image, packaged per `output.archive` (`<name>.zip` or `<name>/`).
const PER_IMAGE_FORMATS: [&str; 2] = ["yolo", "voc"];

/// A `file://` output that just received `yolo.zip` loses the `yolo/` of an earlier run with
/// `archive: none`, and the other way round, so that the output holds one current copy.
fn remove_other_packaging(dir: &Path, published: &str) -> std::io::Result<()> {
    for f in PER_IMAGE_FORMATS {
        let zip = format!("{f}.zip");
        if published == zip && dir.join(f).is_dir() {
            std::fs::remove_dir_all(dir.join(f))?;
        } else if published == f && dir.join(&zip).is_file() {
            std::fs::remove_file(dir.join(&zip))?;
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests;
