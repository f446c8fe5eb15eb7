//! COCO: `annotations.json` (a dataset: info with provenance, images, annotations with `score`,
//! `area`, `iscrowd: 0` and an empty `segmentation`, categories with the official ids) and, for
//! the main set, `results.json` (the list pycocotools' `loadRes` takes). Images and annotations
//! are spooled to temporary files and concatenated at the end, so memory stays at one image.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{ExportMeta, FormatWriter, OutImage};
use crate::model::classes::Category;

#[derive(Serialize)]
struct CocoImage<'a> {
    id: u64,
    file_name: &'a str,
    width: u32,
    height: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    review: bool,
}

#[derive(Serialize)]
struct CocoAnnotation<'a> {
    id: u64,
    image_id: u64,
    category_id: u32,
    bbox: &'a [f64; 4],
    area: f64,
    iscrowd: u8,
    segmentation: [u8; 0],
    score: f64,
}

#[derive(Serialize)]
struct CocoResult<'a> {
    image_id: u64,
    category_id: u32,
    bbox: &'a [f64; 4],
    score: f64,
}

pub(super) struct CocoWriter {
    dir: PathBuf,
    images: BufWriter<File>,
    anns: BufWriter<File>,
    results: Option<BufWriter<File>>,
    categories: Vec<Category>,
    n_images: u64,
    n_anns: u64,
}

const IMAGES_PART: &str = ".coco-images.part";
const ANNS_PART: &str = ".coco-annotations.part";

impl CocoWriter {
    pub(super) fn create(dir: &Path, meta: &ExportMeta, results: bool) -> std::io::Result<Self> {
        let open = |name: &str| File::create(dir.join(name)).map(BufWriter::new);
        let mut results = if results { Some(open(labeljob_store::layout::RESULTS)?) } else { None };
        if let Some(r) = &mut results {
            r.write_all(b"[")?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            images: open(IMAGES_PART)?,
            anns: open(ANNS_PART)?,
            results,
            categories: meta.categories.clone(),
            n_images: 0,
            n_anns: 0,
        })
    }
}

impl FormatWriter for CocoWriter {
    fn image(&mut self, img: &OutImage) -> std::io::Result<()> {
        sep(&mut self.images, self.n_images == 0)?;
        let row = CocoImage {
            id: img.id,
            file_name: &img.uri,
            width: img.width,
            height: img.height,
            review: img.flagged,
        };
        serde_json::to_writer(&mut self.images, &row)?;
        self.n_images += 1;
        for d in &img.detections {
            let first = self.n_anns == 0;
            self.n_anns += 1;
            let area = ((d.bbox[2] * d.bbox[3]) * 100.0).round() / 100.0;
            sep(&mut self.anns, first)?;
            let ann = CocoAnnotation {
                id: self.n_anns,
                image_id: img.id,
                category_id: d.category_id,
                bbox: &d.bbox,
                area,
                iscrowd: 0,
                segmentation: [],
                score: d.score,
            };
            serde_json::to_writer(&mut self.anns, &ann)?;
            if let Some(r) = &mut self.results {
                sep(r, first)?;
                let res = CocoResult {
                    image_id: img.id,
                    category_id: d.category_id,
                    bbox: &d.bbox,
                    score: d.score,
                };
                serde_json::to_writer(r, &res)?;
            }
        }
        Ok(())
    }

    fn finish(self: Box<Self>, info: &serde_json::Value) -> std::io::Result<()> {
        let Self { dir, images, anns, results, categories, .. } = *self;
        for w in [images, anns] {
            drop(w.into_inner().map_err(|e| e.into_error())?);
        }
        if let Some(mut r) = results {
            r.write_all(b"]\n")?;
            r.flush()?;
        }
        let mut out = BufWriter::new(File::create(dir.join(labeljob_store::layout::ANNOTATIONS))?);
        write!(out, "{{\"info\":{info},\"licenses\":[],\"images\":[")?;
        std::io::copy(&mut File::open(dir.join(IMAGES_PART))?, &mut out)?;
        out.write_all(b"],\"annotations\":[")?;
        std::io::copy(&mut File::open(dir.join(ANNS_PART))?, &mut out)?;
        writeln!(out, "],\"categories\":{}}}", serde_json::to_string(&categories)?)?;
        out.flush()?;
        std::fs::remove_file(dir.join(IMAGES_PART))?;
        std::fs::remove_file(dir.join(ANNS_PART))?;
        Ok(())
    }
}

fn sep(w: &mut impl Write, first: bool) -> std::io::Result<()> {
    if first { Ok(()) } else { w.write_all(b",") }
}
