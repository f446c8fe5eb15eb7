//! Pascal VOC (in `voc.zip`, or under `voc/`): `Annotations/<stem>.xml` per image (integer
//! pixel corners, rounded and clamped to the image, `difficult 0`; VOC has no score),
//! `ImageSets/Main/default.txt` listing the stems, and `labelmap.txt` naming the classes
//! (datumaro's labelmap form).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use labeljob_api::v1alpha1::Archive;

use super::tree::Tree;
use super::{ExportMeta, FormatWriter, OutImage, push_int, push_uint, xml_escape};

pub(super) struct VocWriter {
    tree: Tree,
    meta: ExportMeta,
    /// Class names as VOC spells them (XML-escaped, `:` → `_`), by position.
    names: Vec<String>,
    /// The spooled `ImageSets/Main/default.txt`.
    list: usize,
}

impl VocWriter {
    pub(super) fn create(root: &Path, meta: &ExportMeta, archive: Archive) -> std::io::Result<Self> {
        let mut tree = Tree::create(root, "voc", archive, &["Annotations", "ImageSets/Main"])?;
        let list = tree.open_spool("ImageSets/Main/default.txt")?;
        let names = meta.names_by_position(|n| xml_escape(&n.replace(':', "_")));
        Ok(Self { tree, meta: meta.clone(), names, list })
    }
}

impl FormatWriter for VocWriter {
    fn image(&mut self, img: &OutImage) -> std::io::Result<()> {
        let stem = &img.stem;
        let mut xml =
            String::with_capacity(img.detections.len().saturating_mul(230).saturating_add(300).min(1 << 20));
        let x = &mut xml;
        x.push_str("<annotation>\n  <folder>JPEGImages</folder>\n  <filename>");
        x.push_str(&xml_escape(&stem.file_name()));
        x.push_str("</filename>\n  <source><database>labeljob</database></source>\n  <size><width>");
        push_uint(x, u64::from(img.width));
        x.push_str("</width><height>");
        push_uint(x, u64::from(img.height));
        x.push_str("</height><depth>3</depth></size>\n  <segmented>0</segmented>\n");
        let (w, h) = (f64::from(img.width), f64::from(img.height));
        let px = |v: f64, max: f64| v.round().clamp(0.0, max) as i64;
        for d in &img.detections {
            let [bx, by, bw, bh] = d.bbox;
            x.push_str("  <object>\n    <name>");
            x.push_str(self.meta.lookup(&self.names, d.category_id));
            x.push_str(
                "</name>\n    <pose>Unspecified</pose>\n    <truncated>0</truncated>\n    \
                 <difficult>0</difficult>\n    <bndbox><xmin>",
            );
            push_int(x, px(bx, w));
            x.push_str("</xmin><ymin>");
            push_int(x, px(by, h));
            x.push_str("</ymin><xmax>");
            push_int(x, px(bx + bw, w));
            x.push_str("</xmax><ymax>");
            push_int(x, px(by + bh, h));
            x.push_str("</ymax></bndbox>\n  </object>\n");
        }
        x.push_str("</annotation>\n");
        self.tree.put(&format!("Annotations/{}.xml", stem.stem), xml.as_bytes())?;
        writeln!(self.tree.spool(self.list), "{}", stem.stem)
    }

    fn finish(self: Box<Self>, _info: &serde_json::Value) -> std::io::Result<()> {
        let Self { mut tree, meta, .. } = *self;
        let mut out = String::from("# label:color_rgb:parts:actions\n");
        for c in &meta.categories {
            let _ = writeln!(out, "{}:::", c.name.replace(':', "_"));
        }
        tree.put("labelmap.txt", out.as_bytes())?;
        tree.finish()
    }
}
