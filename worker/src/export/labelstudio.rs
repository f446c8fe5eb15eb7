//! Label Studio: `labelstudio/tasks.json`, a JSON array of tasks — `data.image` is the source
//! URI, `predictions` holds one prediction (`model_version` = the model's sha256, `score` = the
//! mean box score) whose `rectanglelabels` regions are in percent of the image with their
//! score — and `labelstudio/config.xml`, the labelling config those regions refer to
//! (`<Image name="image">`, `<RectangleLabels name="label">`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{ExportMeta, FormatWriter, OutImage, xml_escape};

pub(super) struct LabelStudioWriter {
    dir: PathBuf,
    meta: ExportMeta,
    tasks: BufWriter<File>,
    n: u64,
}

impl LabelStudioWriter {
    pub(super) fn create(root: &Path, meta: &ExportMeta) -> std::io::Result<Self> {
        let dir = root.join("labelstudio");
        std::fs::create_dir_all(&dir)?;
        let mut tasks = BufWriter::new(File::create(dir.join("tasks.json"))?);
        tasks.write_all(b"[")?;
        Ok(Self { dir, meta: meta.clone(), tasks, n: 0 })
    }
}

#[derive(Serialize)]
struct Task<'a> {
    id: u64,
    data: TaskData<'a>,
    predictions: [Prediction<'a>; 1],
}

#[derive(Serialize)]
struct TaskData<'a> {
    image: &'a str,
}

#[derive(Serialize)]
struct Prediction<'a> {
    model_version: &'a str,
    score: f64,
    result: Vec<Region<'a>>,
}

#[derive(Serialize)]
struct Region<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    from_name: &'static str,
    to_name: &'static str,
    original_width: u32,
    original_height: u32,
    image_rotation: u32,
    score: f64,
    value: RegionValue<'a>,
}

#[derive(Serialize)]
struct RegionValue<'a> {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
    rotation: u32,
    rectanglelabels: [&'a str; 1],
}

/// Percent of `total`, rounded to 6 decimals.
fn pct(v: f64, total: u32) -> f64 {
    (v / f64::from(total.max(1)) * 100.0 * 1e6).round() / 1e6
}

impl FormatWriter for LabelStudioWriter {
    fn image(&mut self, img: &OutImage) -> std::io::Result<()> {
        let result: Vec<Region<'_>> = img
            .detections
            .iter()
            .enumerate()
            .map(|(n, d)| {
                let [x, y, w, h] = d.bbox;
                Region {
                    id: format!("{}-{n}", img.id),
                    kind: "rectanglelabels",
                    from_name: "label",
                    to_name: "image",
                    original_width: img.width,
                    original_height: img.height,
                    image_rotation: 0,
                    score: d.score,
                    value: RegionValue {
                        x: pct(x, img.width),
                        y: pct(y, img.height),
                        width: pct(w, img.width),
                        height: pct(h, img.height),
                        rotation: 0,
                        rectanglelabels: [self.meta.name(d.category_id)],
                    },
                }
            })
            .collect();
        let n = img.detections.len();
        let mean = if n == 0 { 0.0 } else { img.detections.iter().map(|d| d.score).sum::<f64>() / n as f64 };
        let task = Task {
            id: img.id,
            data: TaskData { image: &img.uri },
            predictions: [Prediction {
                model_version: &self.meta.model_sha256,
                score: (mean * 1e5).round() / 1e5,
                result,
            }],
        };
        if self.n > 0 {
            self.tasks.write_all(b",\n")?;
        }
        serde_json::to_writer(&mut self.tasks, &task)?;
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
