//! Where a per-image format (YOLO, VOC) puts its files: a directory (`output.archive: none`)
//! or one zip archive (`zip`, the default: `yolo.zip`, `voc.zip`). Creating a file per image
//! is what made these formats slow (about 18 µs per file on ext4, most of the merge at 100k
//! images) and costs one PUT per image in object storage; an archive appends each entry to one
//! open file. Entries are stored (not compressed: the merge stays within 2× of COCO alone, and
//! the names and offsets follow Zip64 past 65,535 entries or 4 GiB, which every unzip reads).
//!
//! A list that grows while the images stream (VOC's `ImageSets/Main/default.txt`) is spooled to
//! a file beside the archive and added as the last entry, so memory stays one image.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use labeljob_api::v1alpha1::Archive;
use zip::ZipWriter;
use zip::write::{SimpleFileOptions, StreamWriter};

/// One format's file tree.
pub(super) struct Tree {
    sink: Sink,
    /// Spooled lists: (entry name, spool path or final path, writer).
    spools: Vec<(String, PathBuf, BufWriter<File>)>,
}

enum Sink {
    Dir(PathBuf),
    Zip { path: PathBuf, zip: Box<ZipWriter<StreamWriter<BufWriter<File>>>> },
}

/// Options of every entry: stored, Zip64 sizes allowed.
fn entry_options() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored).large_file(true)
}

fn zip_err(path: &Path) -> impl Fn(zip::result::ZipError) -> std::io::Error + '_ {
    move |e| std::io::Error::other(format!("{}: {e}", path.display()))
}

/// The error `e` naming `path`.
fn at(path: &Path) -> impl Fn(std::io::Error) -> std::io::Error + '_ {
    move |e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl Tree {
    /// The tree of format `name` under `root`: `root/<name>/` with `dirs` made, or
    /// `root/<name>.zip`.
    pub(super) fn create(root: &Path, name: &str, archive: Archive, dirs: &[&str]) -> std::io::Result<Self> {
        let sink = match archive {
            Archive::None => {
                let dir = root.join(name);
                for d in dirs {
                    std::fs::create_dir_all(dir.join(d))?;
                }
                Sink::Dir(dir)
            }
            Archive::Zip => {
                let path = root.join(format!("{name}.zip"));
                let file = File::create(&path).map_err(at(&path))?;
                let zip = Box::new(ZipWriter::new_stream(BufWriter::with_capacity(1 << 20, file)));
                Sink::Zip { path, zip }
            }
        };
        Ok(Self { sink, spools: Vec::new() })
    }

    /// Write the file `rel` (`/`-separated) whole.
    pub(super) fn put(&mut self, rel: &str, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Dir(dir) => {
                let path = dir.join(rel);
                std::fs::write(&path, bytes).map_err(at(&path))
            }
            Sink::Zip { path, zip } => {
                zip.start_file(rel, entry_options()).map_err(zip_err(path))?;
                zip.write_all(bytes)
            }
        }
    }

    /// A list written line by line while the images stream; returns its index for
    /// [`Tree::spool`].
    pub(super) fn open_spool(&mut self, rel: &str) -> std::io::Result<usize> {
        let path = match &self.sink {
            Sink::Dir(dir) => dir.join(rel),
            Sink::Zip { path, .. } => path.with_extension(format!("spool{}", self.spools.len())),
        };
        let file = File::create(&path).map_err(at(&path))?;
        self.spools.push((rel.to_string(), path, BufWriter::new(file)));
        Ok(self.spools.len() - 1)
    }

    /// The writer of spooled list `i`.
    pub(super) fn spool(&mut self, i: usize) -> &mut BufWriter<File> {
        &mut self.spools[i].2
    }

    /// Flush the lists (into the archive, as its last entries) and close the tree.
    pub(super) fn finish(self) -> std::io::Result<()> {
        let Self { sink, spools } = self;
        match sink {
            Sink::Dir(_) => spools.into_iter().try_for_each(|(_, _, mut w)| w.flush()),
            Sink::Zip { path, mut zip } => {
                for (rel, spool, w) in spools {
                    let file = w.into_inner().map_err(|e| e.into_error())?;
                    drop(file);
                    zip.start_file(rel, entry_options()).map_err(zip_err(&path))?;
                    std::io::copy(&mut File::open(&spool).map_err(at(&spool))?, &mut *zip)?;
                    std::fs::remove_file(&spool).map_err(at(&spool))?;
                }
                zip.finish()
                    .map_err(zip_err(&path))?
                    .into_inner()
                    .into_inner()
                    .map(drop)
                    .map_err(|e| e.into_error())
            }
        }
    }
}
