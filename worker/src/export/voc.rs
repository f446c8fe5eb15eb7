//! Pascal VOC: `voc/Annotations/<stem>.xml` per image (integer pixel corners, rounded and
//! clamped to the image, `difficult 0`; VOC has no score), `voc/ImageSets/Main/default.txt`
//! listing the stems, and `voc/labelmap.txt` naming the classes (datumaro's labelmap form).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{ExportMeta, FormatWriter, OutImage, write_file, xml_escape};

pub(super) struct VocWriter {
    dir: PathBuf,
    meta: ExportMeta,
    /// Class names as VOC spells them (XML-escaped, `:` → `_`), by position.
    names: Vec<String>,
    list: BufWriter<File>,
}

impl VocWriter {
    pub(super) fn create(root: &Path, meta: &ExportMeta) -> std::io::Result<Self> {
        let dir = root.join("voc");
        std::fs::create_dir_all(dir.join("Annotations"))?;
        std::fs::create_dir_all(dir.join("ImageSets").join("Main"))?;
        let list = BufWriter::new(File::create(dir.join("ImageSets").join("Main").join("default.txt"))?);
        let names = meta.names_by_position(|n| xml_escape(&n.replace(':', "_")));
        Ok(Self { dir, meta: meta.clone(), names, list })
    }
}

impl FormatWriter for VocWriter {
    fn image(&mut self, img: &OutImage) -> std::io::Result<()> {
        let stem = &img.stem;
        let mut xml =
            String::with_capacity(img.detections.len().saturating_mul(200).saturating_add(400).min(1 << 20));
        let x = &mut xml;
        let _ = write!(
            x,
            "<annotation>\n  <folder>JPEGImages</folder>\n  <filename>{}</filename>\n  \
             <source><database>labeljob</database></source>\n  \
             <size><width>{}</width><height>{}</height><depth>3</depth></size>\n  <segmented>0</segmented>\n",
            xml_escape(&stem.file_name()),
            img.width,
            img.height
        );
        let (w, h) = (f64::from(img.width), f64::from(img.height));
        for d in &img.detections {
            let [bx, by, bw, bh] = d.bbox;
            let px = |v: f64, max: f64| v.round().clamp(0.0, max) as i64;
            let _ = write!(
                x,
                "  <object>\n    <name>{}</name>\n    <pose>Unspecified</pose>\n    <truncated>0</truncated>\n    \
                 <difficult>0</difficult>\n    <bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox>\n  </object>\n",
                self.meta.lookup(&self.names, d.category_id),
                px(bx, w),
                px(by, h),
                px(bx + bw, w),
                px(by + bh, h)
            );
        }
        x.push_str("</annotation>\n");
        write_file(&self.dir.join("Annotations").join(format!("{}.xml", stem.stem)), xml.as_bytes())?;
        writeln!(self.list, "{}", stem.stem)
    }

    fn finish(self: Box<Self>, _info: &serde_json::Value) -> std::io::Result<()> {
        let mut list = self.list;
        list.flush()?;
        let mut out = BufWriter::new(File::create(self.dir.join("labelmap.txt"))?);
        writeln!(out, "# label:color_rgb:parts:actions")?;
        for c in &self.meta.categories {
            writeln!(out, "{}:::", c.name.replace(':', "_"))?;
        }
        out.flush()
    }
}
