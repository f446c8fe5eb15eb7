//! Preview: draw the boxes of a COCO file onto its images (PNG contact sheet).
//!
//! `labeljob preview` reads a COCO `annotations.json` (a local path, `file://` or any store
//! URI), picks the first `max_images` images (those with detections first, file order kept),
//! fetches and decodes each one (EXIF-oriented, full size), draws its boxes and labels onto a
//! tile (see [`tile`]) and lays the tiles out in a grid with white gaps, written as one PNG.
//! An image that cannot be fetched or decoded becomes a grey tile naming the reason; only an
//! unreadable annotations file or a failed write fails the whole sheet.

mod font;
mod tile;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use image::{ImageFormat, Rgb, RgbImage, imageops};
use labeljob_store::{Location, StoreError};
use serde::Deserialize;

use crate::imaging::{DecodeLimits, decode};
use tile::Mark;

/// Columns of the grid (fewer when there are fewer images).
pub const COLUMNS: usize = 4;
/// White space between tiles and around the grid, in pixels.
pub const GAP: u32 = 8;
/// Smallest accepted tile width.
pub const MIN_TILE: u32 = 64;
/// Largest accepted tile width.
pub const MAX_TILE: u32 = 4096;
/// Images fetched and decoded at the same time.
const CONCURRENCY: usize = 4;

/// Why a contact sheet could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// The annotations file could not be read.
    #[error("cannot read annotations {path}")]
    ReadAnnotations {
        /// Path or URI as given.
        path: String,
        /// Cause.
        #[source]
        source: FetchError,
    },
    /// The annotations file is not a COCO dataset.
    #[error("annotations {path} are not a COCO dataset")]
    ParseAnnotations {
        /// Path or URI as given.
        path: String,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// The tile width is out of range.
    #[error("tile width {tile} is outside {MIN_TILE}..={MAX_TILE}")]
    TileWidth {
        /// The width asked for.
        tile: u32,
    },
    /// The PNG could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The output path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: image::ImageError,
    },
}

/// Why a file (annotations or image) could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Reading a local file failed.
    #[error("cannot read {}", path.display())]
    Io {
        /// The local path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The object store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An `http(s)://` download failed.
    #[error("GET {url} failed")]
    Http {
        /// The URL.
        url: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
}

/// The parts of a COCO dataset the preview reads.
#[derive(Debug, Deserialize)]
struct Coco {
    images: Vec<CocoImage>,
    #[serde(default)]
    annotations: Vec<CocoAnnotation>,
    #[serde(default)]
    categories: Vec<CocoCategory>,
}

#[derive(Debug, Deserialize)]
struct CocoImage {
    id: u64,
    file_name: String,
}

#[derive(Debug, Deserialize)]
struct CocoAnnotation {
    image_id: u64,
    category_id: u64,
    bbox: [f64; 4],
    #[serde(default)]
    score: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct CocoCategory {
    id: u64,
    name: String,
}

/// Where a file lives: a local path or a URI.
#[derive(Clone, Debug, PartialEq)]
enum Source {
    Local(PathBuf),
    Uri(String),
}

impl Source {
    /// A path or URI as given on the command line.
    fn of(s: &str) -> Source {
        if s.contains("://") { Source::Uri(s.to_string()) } else { Source::Local(PathBuf::from(s)) }
    }

    /// `name` (a COCO `file_name`) resolved against the directory of this file: URIs and
    /// absolute paths stand alone, relative names are siblings of this file.
    fn sibling(&self, name: &str) -> Source {
        if name.contains("://") || Path::new(name).is_absolute() {
            return Source::of(name);
        }
        match self {
            Source::Local(p) => Source::Local(p.parent().unwrap_or(Path::new("")).join(name)),
            Source::Uri(u) => match u.rsplit_once('/') {
                Some((parent, _)) => Source::Uri(format!("{parent}/{name}")),
                None => Source::Uri(name.to_string()),
            },
        }
    }

    async fn fetch(&self) -> Result<Bytes, FetchError> {
        match self {
            Source::Local(path) => tokio::fs::read(path)
                .await
                .map(Bytes::from)
                .map_err(|source| FetchError::Io { path: path.clone(), source }),
            Source::Uri(url) if url.starts_with("http://") || url.starts_with("https://") => {
                labeljob_store::init_crypto();
                let http = |source| FetchError::Http { url: url.clone(), source };
                let response = reqwest::get(url.as_str()).await.map_err(http)?;
                response.error_for_status().map_err(http)?.bytes().await.map_err(http)
            }
            Source::Uri(uri) => {
                // a COCO file_name is an object URI with its path percent-escaped
                let invalid = || StoreError::InvalidUri { uri: uri.clone(), reason: "not an object URI" };
                let (parent, key) = labeljob_store::uri::split_object_uri(uri).ok_or_else(invalid)?;
                Ok(Location::parse(&parent)?.get(&key).await?)
            }
        }
    }
}

/// The last path segment of a file name or URI.
fn basename(name: &str) -> &str {
    name.trim_end_matches('/').rsplit(['/', '\\']).next().unwrap_or(name)
}

/// Indices of the images to show: the first `max` of those with detections, topped up with
/// the first of those without, in file order.
fn select(images: &[CocoImage], boxes: &HashMap<u64, Vec<&CocoAnnotation>>, max: usize) -> Vec<usize> {
    let has = |i: &usize| boxes.get(&images[*i].id).is_some_and(|b| !b.is_empty());
    let (with, without): (Vec<usize>, Vec<usize>) = (0..images.len()).partition(has);
    let mut chosen: Vec<usize> = with.into_iter().chain(without).take(max).collect();
    chosen.sort_unstable();
    chosen
}

/// The marks of one image, lowest score first so the best label ends up on top.
fn marks(anns: &[&CocoAnnotation], names: &HashMap<u64, &str>) -> Vec<Mark> {
    let mut anns = anns.to_vec();
    anns.sort_by(|a, b| a.score.unwrap_or(1.0).total_cmp(&b.score.unwrap_or(1.0)));
    anns.iter()
        .map(|a| {
            let name =
                names.get(&a.category_id).map_or_else(|| format!("#{}", a.category_id), |n| n.to_string());
            let label = match a.score {
                Some(s) => format!("{name} {s:.2}"),
                None => name,
            };
            Mark { bbox: a.bbox, category_id: a.category_id, label }
        })
        .collect()
}

/// Fetches, decodes and draws one image; `Err` carries the failure tile.
async fn render(
    source: Source,
    file_name: String,
    marks: Vec<Mark>,
    tile: u32,
) -> Result<RgbImage, RgbImage> {
    // captions show the file's name, not its URI escapes (`a b.jpg`, not `a%20b.jpg`)
    let name = match file_name.contains("://") {
        true => labeljob_store::uri::unescape_path(basename(&file_name)),
        false => basename(&file_name).to_string(),
    };
    let fail = |name: &str, reason: String| {
        tracing::warn!(image = %file_name, %reason, "preview: cannot show image");
        tile::render_failure(tile, name, &reason)
    };
    let bytes = match source.fetch().await {
        Ok(b) => b,
        Err(e) => return Err(fail(&name, labeljob_api::error_chain(&e))),
    };
    let job = tokio::task::spawn_blocking(move || {
        let img = decode(&bytes, None, &DecodeLimits::default())
            .map_err(|e| (name.clone(), labeljob_api::error_chain(&e)))?;
        Ok(tile::render_image(&img.rgb, (img.width, img.height), &marks, tile, &name))
    });
    match job.await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err((name, reason))) => Err(fail(&name, reason)),
        Err(e) => Err(fail(basename(&file_name), labeljob_api::error_chain(&e))),
    }
}

/// Size of the sheet for tiles of the given heights (captions included), and the top-left
/// corner of each tile.
fn layout(heights: &[u32], tile: u32) -> ((u32, u32), Vec<(u32, u32)>) {
    let cols = heights.len().clamp(1, COLUMNS);
    let width = cols as u32 * tile + (cols as u32 + 1) * GAP;
    let mut corners = Vec::with_capacity(heights.len());
    let mut y = GAP;
    for row in heights.chunks(cols) {
        for c in 0..row.len() {
            corners.push((GAP + c as u32 * (tile + GAP), y));
        }
        y += row.iter().copied().max().unwrap_or(0) + GAP;
    }
    ((width, y), corners)
}

/// Draws the boxes of the COCO file `annotations` (a local path, `file://` or store URI) onto
/// the first `max_images` of its images, `tile` pixels wide each, and writes the contact
/// sheet to `out` as PNG. Returns how many images were drawn (failed images become grey
/// tiles and are not counted).
pub async fn contact_sheet(
    annotations: &str,
    out: &Path,
    max_images: usize,
    tile: u32,
) -> Result<usize, PreviewError> {
    if !(MIN_TILE..=MAX_TILE).contains(&tile) {
        return Err(PreviewError::TileWidth { tile });
    }
    let origin = Source::of(annotations);
    let path = || annotations.to_string();
    let bytes =
        origin.fetch().await.map_err(|source| PreviewError::ReadAnnotations { path: path(), source })?;
    let coco: Coco = serde_json::from_slice(&bytes)
        .map_err(|source| PreviewError::ParseAnnotations { path: path(), source })?;
    drop(bytes);
    let names: HashMap<u64, &str> = coco.categories.iter().map(|c| (c.id, c.name.as_str())).collect();
    let mut boxes: HashMap<u64, Vec<&CocoAnnotation>> = HashMap::new();
    for a in &coco.annotations {
        boxes.entry(a.image_id).or_default().push(a);
    }
    let chosen = select(&coco.images, &boxes, max_images);
    let jobs: Vec<_> = chosen
        .iter()
        .map(|&i| {
            let img = &coco.images[i];
            let marks = marks(boxes.get(&img.id).map_or(&[][..], |v| v.as_slice()), &names);
            render(origin.sibling(&img.file_name), img.file_name.clone(), marks, tile)
        })
        .collect();
    let tiles: Vec<Result<RgbImage, RgbImage>> =
        futures::stream::iter(jobs).buffered(CONCURRENCY).collect().await;
    let drawn = tiles.iter().filter(|t| t.is_ok()).count();
    let tiles: Vec<RgbImage> = tiles.into_iter().map(|t| t.unwrap_or_else(|failed| failed)).collect();
    let sheet = if tiles.is_empty() {
        let mut empty =
            RgbImage::from_pixel(tile + 2 * GAP, 2 * GAP + tile::caption_height(tile), Rgb([255; 3]));
        let note = RgbImage::from_pixel(tile, tile::caption_height(tile), tile::CAPTION_BG);
        imageops::replace(&mut empty, &note, i64::from(GAP), i64::from(GAP));
        font::draw_text(&mut empty, i64::from(GAP + 3), i64::from(GAP + 3), "no images", 1, Rgb([0; 3]));
        empty
    } else {
        let heights: Vec<u32> = tiles.iter().map(|t| t.height()).collect();
        let ((w, h), corners) = layout(&heights, tile);
        let mut sheet = RgbImage::from_pixel(w, h, Rgb([255; 3]));
        for (t, (x, y)) in tiles.iter().zip(corners) {
            imageops::replace(&mut sheet, t, i64::from(x), i64::from(y));
        }
        sheet
    };
    sheet
        .save_with_format(out, ImageFormat::Png)
        .map_err(|source| PreviewError::Write { path: out.to_path_buf(), source })?;
    tracing::info!(out = %out.display(), images = tiles.len(), drawn, "preview: wrote contact sheet");
    Ok(drawn)
}

#[cfg(test)]
mod tests;
