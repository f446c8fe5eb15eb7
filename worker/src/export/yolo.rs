//! Ultralytics YOLO: `labels/<stem>.txt` (in `yolo.zip`, or under `yolo/`) with one `class cx cy w h` line per box
//! (normalised to 0–1, six fixed decimals, no score column: the training-label form every
//! importer reads) and `data.yaml` with the class names by index (the categories in id
//! order). An image without boxes gets an empty file (a background image).

use std::fmt::Write as _;
use std::path::Path;

use labeljob_api::v1alpha1::Archive;

use super::tree::Tree;
use super::{ExportMeta, FormatWriter, OutImage, push_fixed};

pub(super) struct YoloWriter {
    tree: Tree,
    meta: ExportMeta,
}

impl YoloWriter {
    pub(super) fn create(root: &Path, meta: &ExportMeta, archive: Archive) -> std::io::Result<Self> {
        Ok(Self { tree: Tree::create(root, "yolo", archive, &["labels"])?, meta: meta.clone() })
    }
}

impl FormatWriter for YoloWriter {
    fn image(&mut self, img: &OutImage) -> std::io::Result<()> {
        let mut line = String::with_capacity(img.detections.len().saturating_mul(48).min(1 << 20));
        let (w, h) = (f64::from(img.width.max(1)), f64::from(img.height.max(1)));
        let unit = |v: f64| v.clamp(0.0, 1.0);
        for d in &img.detections {
            let Some(cls) = self.meta.position(d.category_id) else { continue };
            let [x, y, bw, bh] = d.bbox;
            let (x1, y1) = (unit(x / w), unit(y / h));
            let (x2, y2) = (unit((x + bw) / w), unit((y + bh) / h));
            let _ = write!(line, "{cls}");
            for v in [(x1 + x2) / 2.0, (y1 + y2) / 2.0, x2 - x1, y2 - y1] {
                line.push(' ');
                push_fixed(&mut line, v, 6);
            }
            line.push('\n');
        }
        self.tree.put(&format!("labels/{}.txt", img.stem.stem), line.as_bytes())
    }

    fn finish(self: Box<Self>, _info: &serde_json::Value) -> std::io::Result<()> {
        let Self { mut tree, meta } = *self;
        let mut out = String::from(
            "# Ultralytics dataset written by labeljob: put the images in images/ (names in stems.jsonl)\n",
        );
        let _ = writeln!(out, "train: images\nval: images\nnc: {}\nnames:", meta.categories.len());
        for (i, c) in meta.categories.iter().enumerate() {
            let _ = writeln!(out, "  {i}: {}", serde_json::to_string(&c.name)?);
        }
        tree.put("data.yaml", out.as_bytes())?;
        tree.finish()
    }
}
