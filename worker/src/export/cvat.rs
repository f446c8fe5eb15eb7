//! CVAT for images 1.1: one `cvat/annotations.xml` — the task meta (name, size, labels, each
//! with a numeric `score` attribute) and an `<image>` per image with its `<box>`es (corners in
//! pixels, `source="auto"`, the score as the attribute). The image part is spooled to a file
//! because the meta, written first, needs the image count.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{ExportMeta, FormatWriter, OutImage, push_fixed, push_trimmed, xml_escape};

pub(super) struct CvatWriter {
    dir: PathBuf,
    meta: ExportMeta,
    /// XML-escaped class names, by position.
    names: Vec<String>,
    body: BufWriter<File>,
    images: u64,
}

const BODY_PART: &str = ".annotations.xml.part";

impl CvatWriter {
    pub(super) fn create(root: &Path, meta: &ExportMeta) -> std::io::Result<Self> {
        let dir = root.join("cvat");
        std::fs::create_dir_all(&dir)?;
        let body = BufWriter::new(File::create(dir.join(BODY_PART))?);
        let names = meta.names_by_position(xml_escape);
        Ok(Self { dir, meta: meta.clone(), names, body, images: 0 })
    }
}

impl FormatWriter for CvatWriter {
    fn image(&mut self, img: &OutImage) -> std::io::Result<()> {
        let stem = &img.stem;
        let b = &mut self.body;
        writeln!(
            b,
            "  <image id=\"{}\" name=\"{}\" width=\"{}\" height=\"{}\">",
            self.images,
            xml_escape(&stem.file_name()),
            img.width,
            img.height
        )?;
        let mut line = String::with_capacity(256);
        for d in &img.detections {
            let [x, y, w, h] = d.bbox;
            line.clear();
            line.push_str("    <box label=\"");
            line.push_str(self.meta.lookup(&self.names, d.category_id));
            line.push_str("\" source=\"auto\" occluded=\"0\"");
            for (attr, v) in [("xtl", x), ("ytl", y), ("xbr", x + w), ("ybr", y + h)] {
                line.push(' ');
                line.push_str(attr);
                line.push_str("=\"");
                push_fixed(&mut line, v, 2);
                line.push('"');
            }
            // CVAT's score attribute steps by 0.00001 (the label meta below): five decimals.
            line.push_str(" z_order=\"0\"><attribute name=\"score\">");
            push_trimmed(&mut line, d.score, 5);
            line.push_str("</attribute></box>\n");
            b.write_all(line.as_bytes())?;
        }
        b.write_all(b"  </image>\n")?;
        self.images += 1;
        Ok(())
    }

    fn finish(self: Box<Self>, _info: &serde_json::Value) -> std::io::Result<()> {
        let Self { dir, meta, body, images, .. } = *self;
        drop(body.into_inner().map_err(|e| e.into_error())?);
        let mut out = BufWriter::new(File::create(dir.join("annotations.xml"))?);
        write!(
            out,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<annotations>\n  <version>1.1</version>\n  <meta>\n    <task>\n      \
             <name>{}</name>\n      <size>{images}</size>\n      <mode>annotation</mode>\n      <labels>\n",
            xml_escape(&meta.job_name)
        )?;
        for c in &meta.categories {
            writeln!(
                out,
                "        <label><name>{}</name><type>rectangle</type><attributes><attribute><name>score</name>\
                 <mutable>False</mutable><input_type>number</input_type><default_value>0</default_value>\
                 <values>0;1;0.00001</values></attribute></attributes></label>",
                xml_escape(&c.name)
            )?;
        }
        out.write_all(b"      </labels>\n    </task>\n  </meta>\n")?;
        std::io::copy(&mut File::open(dir.join(BODY_PART))?, &mut out)?;
        out.write_all(b"</annotations>\n")?;
        out.flush()?;
        std::fs::remove_file(dir.join(BODY_PART))
    }
}
