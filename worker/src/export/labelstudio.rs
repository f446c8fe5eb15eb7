//! Label Studio: `labelstudio/tasks.json`, a JSON array of tasks — `data.image` is the source
//! URI, `predictions` holds one prediction (`model_version` = the model's sha256, `score` = the
//! mean box score) whose `rectanglelabels` regions are in percent of the image with their
//! score — and `labelstudio/config.xml`, the labelling config those regions refer to
//! (`<Image name="image">`, `<RectangleLabels name="label">`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{ExportMeta, FormatWriter, OutImage, json_str, push_trimmed, push_uint, xml_escape};

pub(super) struct LabelStudioWriter {
    dir: PathBuf,
    meta: ExportMeta,
    /// Class names as JSON string literals, by position.
    names: Vec<String>,
    /// The model's sha256 as a JSON string literal.
    model_version: String,
    tasks: BufWriter<File>,
    /// The task being written (reused).
    line: String,
    n: u64,
}

impl LabelStudioWriter {
    pub(super) fn create(root: &Path, meta: &ExportMeta) -> std::io::Result<Self> {
        let dir = root.join("labelstudio");
        std::fs::create_dir_all(&dir)?;
        let mut tasks = BufWriter::new(File::create(dir.join("tasks.json"))?);
        tasks.write_all(b"[")?;
        let names = meta.names_by_position(json_str);
        let model_version = json_str(&meta.model_sha256);
        Ok(Self { dir, meta: meta.clone(), names, model_version, tasks, line: String::new(), n: 0 })
    }
}

/// Append `v` as a JSON number: the shortest text that reads back as `v` (`0` when not finite,
/// which JSON cannot hold).
fn push_number(out: &mut String, v: f64) {
    use std::fmt::Write as _;
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push('0');
    }
}

/// Percent of `total`, to 6 decimals (trailing zeros dropped).
fn push_pct(out: &mut String, v: f64, total: u32) {
    push_trimmed(out, v / f64::from(total.max(1)) * 100.0, 6);
}

impl FormatWriter for LabelStudioWriter {
    /// One task, written by hand (a region is ~290 bytes of mostly constant keys, and this
    /// writer runs beside COCO on a million boxes): `{"id", "data": {"image"}, "predictions":
    /// [{"model_version", "score", "result": [regions]}]}`, each region `{"id": "<task>-<n>",
    /// "type": "rectanglelabels", "from_name": "label", "to_name": "image", "original_width",
    /// "original_height", "image_rotation": 0, "score", "value": {"x", "y", "width", "height",
    /// "rotation": 0, "rectanglelabels": [name]}}` with x/y/width/height in percent.
    fn image(&mut self, img: &OutImage) -> std::io::Result<()> {
        let t = &mut self.line;
        t.clear();
        if self.n > 0 {
            t.push_str(",\n");
        }
        t.push_str("{\"id\":");
        push_uint(t, img.id);
        t.push_str(",\"data\":{\"image\":");
        t.push_str(&json_str(&img.uri));
        t.push_str("},\"predictions\":[{\"model_version\":");
        t.push_str(&self.model_version);
        t.push_str(",\"score\":");
        let n = img.detections.len();
        let mean = if n == 0 { 0.0 } else { img.detections.iter().map(|d| d.score).sum::<f64>() / n as f64 };
        push_number(t, (mean * 1e5).round() / 1e5);
        t.push_str(",\"result\":[");
        for (i, d) in img.detections.iter().enumerate() {
            let [x, y, w, h] = d.bbox;
            if i > 0 {
                t.push(',');
            }
            t.push_str("{\"id\":\"");
            push_uint(t, img.id);
            t.push('-');
            push_uint(t, i as u64);
            t.push_str("\",\"type\":\"rectanglelabels\",\"from_name\":\"label\",\"to_name\":\"image\",\"original_width\":");
            push_uint(t, u64::from(img.width));
            t.push_str(",\"original_height\":");
            push_uint(t, u64::from(img.height));
            t.push_str(",\"image_rotation\":0,\"score\":");
            push_number(t, d.score);
            t.push_str(",\"value\":{\"x\":");
            push_pct(t, x, img.width);
            t.push_str(",\"y\":");
            push_pct(t, y, img.height);
            t.push_str(",\"width\":");
            push_pct(t, w, img.width);
            t.push_str(",\"height\":");
            push_pct(t, h, img.height);
            t.push_str(",\"rotation\":0,\"rectanglelabels\":[");
            let name = self.meta.position(d.category_id).and_then(|i| self.names.get(i));
            t.push_str(name.map_or("\"?\"", String::as_str));
            t.push_str("]}}");
        }
        t.push_str("]}]}");
        self.tasks.write_all(t.as_bytes())?;
        self.n += 1;
        Ok(())
    }

    fn finish(self: Box<Self>, _info: &serde_json::Value) -> std::io::Result<()> {
        let mut tasks = self.tasks;
        tasks.write_all(b"]\n")?;
        tasks.flush()?;
        let mut out = BufWriter::new(File::create(self.dir.join("config.xml"))?);
        writeln!(
            out,
            "<View>\n  <Image name=\"image\" value=\"$image\"/>\n  <RectangleLabels name=\"label\" toName=\"image\">"
        )?;
        for c in &self.meta.categories {
            writeln!(out, "    <Label value=\"{}\"/>", xml_escape(&c.name))?;
        }
        writeln!(out, "  </RectangleLabels>\n</View>")?;
        out.flush()
    }
}
