//! Output decoders: turn a detection model's raw output tensors into boxes in model-input
//! pixels (`x1, y1, x2, y2`), with scores and class indices, then filter them (score threshold,
//! class filter, NMS where the model has none inside, max detections). Pure functions.
//!
//! Nothing in the values is trusted: a tensor of the wrong shape fails the batch
//! ([`DecodeError`]); an image whose values are malformed — a count that is negative, not a
//! number or beyond the tensor, a negative or NaN class, a box or score that is not finite —
//! fails alone ([`BadOutput`]): it is an error for that image, never detections.

use labeljob_api::v1alpha1::ModelFormat;
use ndarray::{ArrayD, Axis, Ix2, Ix3};
use serde::{Deserialize, Serialize};

/// One detection in model-input pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RawDetection {
    /// `[x1, y1, x2, y2]` in model-input pixels.
    pub bbox: [f32; 4],
    /// Confidence, 0–1.
    pub score: f32,
    /// The model's class index.
    pub class: u32,
}

/// Filtering applied after decoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Minimum score kept.
    pub score_threshold: f32,
    /// IoU for NMS (decoders without NMS inside).
    pub iou_threshold: f32,
    /// Most detections per image.
    pub max_detections: usize,
    /// Class indices kept (None: all).
    pub classes: Option<Vec<u32>>,
    /// Score threshold by class index, where it differs from `score_threshold` (which is then
    /// the lowest threshold of any class, so decoders may cut at it).
    pub class_thresholds: Vec<(u32, f32)>,
    /// Class-agnostic NMS at `iou_threshold` after the per-class one.
    pub agnostic_nms: bool,
}

impl Filter {
    /// A filter with one score threshold for every class and no class rules.
    pub fn basic(score_threshold: f32, iou_threshold: f32, max_detections: usize) -> Self {
        Self {
            score_threshold,
            iou_threshold,
            max_detections,
            classes: None,
            class_thresholds: Vec::new(),
            agnostic_nms: false,
        }
    }

    /// The score a detection of class `class` needs.
    pub fn threshold_of(&self, class: u32) -> f32 {
        self.class_thresholds.iter().find(|(c, _)| *c == class).map_or(self.score_threshold, |(_, t)| *t)
    }
}

/// Why outputs could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    /// Wrong number of outputs.
    #[error("{format:?} expects {expected} outputs, the model has {found}")]
    OutputCount {
        /// Decoder.
        format: ModelFormat,
        /// Outputs needed.
        expected: usize,
        /// Outputs found.
        found: usize,
    },
    /// An output has an unexpected shape.
    #[error("{format:?} output {index} has shape {shape:?}, expected {expected}")]
    Shape {
        /// Decoder.
        format: ModelFormat,
        /// Output position.
        index: usize,
        /// Actual shape.
        shape: Vec<usize>,
        /// What was expected.
        expected: &'static str,
    },
}

/// The model's output for one image holds values that are not detections.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("the model's output for this image is malformed: {field}: {reason}")]
pub struct BadOutput {
    /// Where, e.g. `counts[0]` or `classes[0][3]`.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

fn bad(field: String, reason: String) -> BadOutput {
    BadOutput { field, reason }
}

/// The detections of one image, or why its output is malformed.
pub type ImageDetections = Result<Vec<RawDetection>, BadOutput>;

/// Decode one batch of outputs (in the session's output order) into per-image detections.
/// `width`/`height` is the model input size.
pub fn decode(
    format: ModelFormat,
    outputs: &[ArrayD<f32>],
    width: u32,
    height: u32,
    filter: &Filter,
) -> Result<Vec<ImageDetections>, DecodeError> {
    let per_image = match format {
        ModelFormat::SsdTflite => decode_ssd(outputs, width as f32, height as f32)?,
        ModelFormat::Yolov8 => decode_yolov8(outputs, filter)?,
        ModelFormat::DetectionsXyxy => decode_xyxy(outputs)?,
    };
    Ok(per_image.into_iter().map(|dets| dets.map(|d| apply_filter(d, filter))).collect())
}

fn shape_err(format: ModelFormat, index: usize, a: &ArrayD<f32>, expected: &'static str) -> DecodeError {
    DecodeError::Shape { format, index, shape: a.shape().to_vec(), expected }
}

/// TFLite detection postprocess: boxes [N,K,4] (ymin,xmin,ymax,xmax in 0–1, unclamped),
/// classes [N,K], scores [N,K], count [N].
fn decode_ssd(outputs: &[ArrayD<f32>], w: f32, h: f32) -> Result<Vec<ImageDetections>, DecodeError> {
    let f = ModelFormat::SsdTflite;
    if outputs.len() != 4 {
        return Err(DecodeError::OutputCount { format: f, expected: 4, found: outputs.len() });
    }
    let boxes = outputs[0]
        .view()
        .into_dimensionality::<Ix3>()
        .map_err(|_| shape_err(f, 0, &outputs[0], "[N,K,4]"))?;
    if boxes.shape()[2] != 4 {
        return Err(shape_err(f, 0, &outputs[0], "[N,K,4]"));
    }
    let (n, k) = (boxes.shape()[0], boxes.shape()[1]);
    let classes =
        outputs[1].view().into_dimensionality::<Ix2>().map_err(|_| shape_err(f, 1, &outputs[1], "[N,K]"))?;
    let scores =
        outputs[2].view().into_dimensionality::<Ix2>().map_err(|_| shape_err(f, 2, &outputs[2], "[N,K]"))?;
    if classes.shape() != [n, k] {
        return Err(shape_err(f, 1, &outputs[1], "[N,K]"));
    }
    if scores.shape() != [n, k] {
        return Err(shape_err(f, 2, &outputs[2], "[N,K]"));
    }
    let count = &outputs[3];
    if count.len() != n {
        return Err(shape_err(f, 3, count, "[N]"));
    }
    let counts: Vec<f32> = count.iter().copied().collect();
    let one = |i: usize| -> ImageDetections {
        let count = counts[i];
        if !(count.is_finite() && count >= 0.0 && count.fract() == 0.0 && count <= k as f32) {
            return Err(bad(format!("counts[{i}]"), format!("{count} is not a count within K = {k}")));
        }
        let valid = count as usize;
        let b = boxes.index_axis(Axis(0), i);
        let mut dets = Vec::with_capacity(valid);
        for j in 0..valid {
            let class = classes[[i, j]];
            if !(class.is_finite() && class >= 0.0) {
                return Err(bad(format!("classes[{i}][{j}]"), format!("{class} is not a class index")));
            }
            let score = scores[[i, j]];
            let raw = [b[[j, 0]], b[[j, 1]], b[[j, 2]], b[[j, 3]]];
            if !score.is_finite() || raw.iter().any(|v| !v.is_finite()) {
                return Err(bad(format!("[{i}][{j}]"), "a score or box coordinate is not finite".into()));
            }
            let c = |v: f32| v.clamp(0.0, 1.0);
            let [y1, x1, y2, x2] = raw.map(c);
            dets.push(RawDetection { bbox: [x1 * w, y1 * h, x2 * w, y2 * h], score, class: class as u32 });
        }
        Ok(dets)
    };
    Ok((0..n).map(one).collect())
}

/// Ultralytics YOLOv8 export: [N, 4+C, A] with cx,cy,w,h in input pixels then C class scores.
fn decode_yolov8(outputs: &[ArrayD<f32>], filter: &Filter) -> Result<Vec<ImageDetections>, DecodeError> {
    let f = ModelFormat::Yolov8;
    if outputs.len() != 1 {
        return Err(DecodeError::OutputCount { format: f, expected: 1, found: outputs.len() });
    }
    let pred = outputs[0]
        .view()
        .into_dimensionality::<Ix3>()
        .map_err(|_| shape_err(f, 0, &outputs[0], "[N,4+C,A]"))?;
    if pred.shape()[1] < 5 {
        return Err(shape_err(f, 0, &outputs[0], "[N,4+C,A]"));
    }
    let classes = pred.shape()[1] - 4;
    let mut out = Vec::with_capacity(pred.shape()[0]);
    'images: for (i, img) in pred.outer_iter().enumerate() {
        let mut cands = Vec::new();
        for a in 0..img.shape()[1] {
            let col = img.index_axis(Axis(1), a);
            let (mut best, mut best_c) = (f32::MIN, 0usize);
            for c in 0..classes {
                let s = col[4 + c];
                if s > best {
                    best = s;
                    best_c = c;
                }
            }
            if best < filter.score_threshold {
                continue;
            }
            let (cx, cy, bw, bh) = (col[0], col[1], col[2], col[3]);
            if !(best.is_finite() && cx.is_finite() && cy.is_finite() && bw.is_finite() && bh.is_finite()) {
                let reason = "a score or box coordinate is not finite".to_string();
                out.push(Err(bad(format!("[{i}][anchor {a}]"), reason)));
                continue 'images;
            }
            cands.push(RawDetection {
                bbox: [cx - bw / 2.0, cy - bh / 2.0, cx + bw / 2.0, cy + bh / 2.0],
                score: best,
                class: best_c as u32,
            });
        }
        out.push(Ok(nms(cands, filter.iou_threshold)));
    }
    Ok(out)
}

/// Post-NMS detections [N, K, 6]: x1, y1, x2, y2, score, class. Rows scoring 0 or less are
/// padding (whatever their other values).
fn decode_xyxy(outputs: &[ArrayD<f32>]) -> Result<Vec<ImageDetections>, DecodeError> {
    let f = ModelFormat::DetectionsXyxy;
    if outputs.is_empty() {
        return Err(DecodeError::OutputCount { format: f, expected: 1, found: 0 });
    }
    let d = outputs[0]
        .view()
        .into_dimensionality::<Ix3>()
        .map_err(|_| shape_err(f, 0, &outputs[0], "[N,K,6]"))?;
    if d.shape()[2] != 6 {
        return Err(shape_err(f, 0, &outputs[0], "[N,K,6]"));
    }
    let one = |(i, img): (usize, ndarray::ArrayView2<f32>)| -> ImageDetections {
        let mut dets = Vec::new();
        for (j, r) in img.outer_iter().enumerate() {
            if r[4] <= 0.0 {
                continue;
            }
            if !r.iter().all(|v| v.is_finite()) {
                return Err(bad(
                    format!("[{i}][{j}]"),
                    "a score, class or box coordinate is not finite".into(),
                ));
            }
            if r[5] < 0.0 {
                return Err(bad(format!("[{i}][{j}]"), format!("class {} is not a class index", r[5])));
            }
            dets.push(RawDetection { bbox: [r[0], r[1], r[2], r[3]], score: r[4], class: r[5] as u32 });
        }
        Ok(dets)
    };
    Ok(d.outer_iter().enumerate().map(one).collect())
}

/// Score thresholds (per class where set), class filter, best-first order, class-agnostic NMS
/// when asked, max detections. Applying it twice gives the same result as once.
pub fn apply_filter(mut dets: Vec<RawDetection>, filter: &Filter) -> Vec<RawDetection> {
    dets.retain(|d| {
        d.score >= filter.threshold_of(d.class)
            && filter.classes.as_ref().is_none_or(|cs| cs.contains(&d.class))
    });
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    if filter.agnostic_nms {
        let mut kept: Vec<RawDetection> = Vec::with_capacity(dets.len());
        for d in dets {
            if kept.iter().all(|k| iou(&k.bbox, &d.bbox) <= filter.iou_threshold) {
                kept.push(d);
            }
        }
        dets = kept;
    }
    dets.truncate(filter.max_detections);
    dets
}

/// Intersection over union of two xyxy boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let union = (a[2] - a[0]).max(0.0) * (a[3] - a[1]).max(0.0)
        + (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
        - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Class-aware greedy non-maximum suppression, best score first.
pub fn nms(mut dets: Vec<RawDetection>, iou_threshold: f32) -> Vec<RawDetection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<RawDetection> = Vec::new();
    for d in dets {
        if kept.iter().all(|k| k.class != d.class || iou(&k.bbox, &d.bbox) <= iou_threshold) {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    fn filter() -> Filter {
        Filter::basic(0.3, 0.5, 100)
    }

    fn arr(shape: &[usize], v: Vec<f32>) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(shape), v).expect("shape")
    }

    fn images_ok(images: Vec<ImageDetections>) -> Vec<Vec<RawDetection>> {
        images.into_iter().map(|i| i.expect("a well-formed image")).collect()
    }

    /// One SSD image of `k` rows with these counts, classes, scores and first box.
    fn ssd(count: f32, classes: Vec<f32>, scores: Vec<f32>, first_box: [f32; 4]) -> Vec<ArrayD<f32>> {
        let k = classes.len();
        let mut boxes = vec![0.1; k * 4];
        boxes[..4].copy_from_slice(&first_box);
        vec![arr(&[1, k, 4], boxes), arr(&[1, k], classes), arr(&[1, k], scores), arr(&[1], vec![count])]
    }

    #[test]
    fn malformed_values_fail_their_image_not_the_batch() {
        let f = filter();
        let one = |outputs: Vec<ArrayD<f32>>| {
            let mut out = decode(ModelFormat::SsdTflite, &outputs, 10, 10, &f).expect("shapes are fine");
            assert_eq!(out.len(), 1);
            out.remove(0)
        };
        let good = one(ssd(1.0, vec![0.0, 0.0], vec![0.9, 0.0], [0.0, 0.0, 0.5, 0.5])).expect("good");
        assert_eq!(good.len(), 1);
        for (outputs, field, words) in [
            (
                ssd(3.0, vec![0.0, 0.0], vec![0.9, 0.9], [0.0; 4]),
                "counts[0]",
                "3 is not a count within K = 2",
            ),
            (ssd(-1.0, vec![0.0, 0.0], vec![0.9, 0.9], [0.0; 4]), "counts[0]", "-1 is not a count"),
            (ssd(f32::NAN, vec![0.0, 0.0], vec![0.9, 0.9], [0.0; 4]), "counts[0]", "NaN is not a count"),
            (ssd(1.0, vec![-1.0, 0.0], vec![0.9, 0.9], [0.0; 4]), "classes[0][0]", "-1 is not a class index"),
            (ssd(1.0, vec![f32::NAN, 0.0], vec![0.9, 0.9], [0.0; 4]), "classes[0][0]", "NaN"),
            (ssd(1.0, vec![0.0, 0.0], vec![0.9, 0.9], [f32::NAN, 0.0, 0.5, 0.5]), "[0][0]", "not finite"),
            (ssd(1.0, vec![0.0, 0.0], vec![f32::INFINITY, 0.9], [0.0; 4]), "[0][0]", "not finite"),
        ] {
            let err = one(outputs).expect_err(field);
            assert_eq!(err.field, field);
            assert!(err.to_string().contains(words), "{err}");
        }
        // a batch of two: only the malformed image fails
        let mut two = ssd(1.0, vec![0.0, 0.0], vec![0.9, 0.9], [0.0, 0.0, 0.5, 0.5]);
        let b = two[0].clone().into_raw_vec_and_offset().0;
        two[0] = arr(&[2, 2, 4], [b.clone(), b].concat());
        two[1] = arr(&[2, 2], vec![0.0, 0.0, -5.0, 0.0]);
        two[2] = arr(&[2, 2], vec![0.9; 4]);
        two[3] = arr(&[2], vec![1.0, 1.0]);
        let out = decode(ModelFormat::SsdTflite, &two, 10, 10, &f).expect("shapes");
        assert!(out[0].is_ok() && out[1].is_err(), "{out:?}");
        // post-NMS rows: padding (score 0, class -1) is skipped; a scored row with a bad class is not
        let d = arr(
            &[2, 2, 6],
            vec![
                0., 0., 5., 5., 0.9, 1., 0., 0., 0., 0., 0., -1., 0., 0., 5., 5., 0.9, -1., 0., 0., 0., 0.,
                0., 0.,
            ],
        );
        let out = decode(ModelFormat::DetectionsXyxy, &[d], 10, 10, &f).expect("shapes");
        assert_eq!(out[0].as_ref().map(Vec::len), Ok(1));
        assert!(out[1].as_ref().is_err_and(|e| e.reason.contains("class -1")), "{out:?}");
    }

    #[test]
    fn ssd_boxes_are_clamped_scaled_and_thresholded() {
        let boxes = arr(&[1, 3, 4], vec![-0.1, 0.1, 0.5, 0.6, 0.2, 0.2, 1.2, 0.9, 0.0, 0.0, 0.1, 0.1]);
        let classes = arr(&[1, 3], vec![17.0, 0.0, 2.0]);
        let scores = arr(&[1, 3], vec![0.9, 0.5, 0.1]);
        let count = arr(&[1], vec![3.0]);
        let out = decode(ModelFormat::SsdTflite, &[boxes, classes, scores, count], 300, 200, &filter())
            .map(images_ok)
            .expect("ok");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), 2, "the 0.1 score is dropped");
        assert_eq!(out[0][0].class, 17);
        assert_eq!(out[0][0].bbox, [30.0, 0.0, 180.0, 100.0]);
        assert_eq!(out[0][1].bbox, [60.0, 40.0, 270.0, 200.0]);
    }

    #[test]
    fn ssd_reads_only_count_rows_and_checks_shapes() {
        let boxes = arr(&[1, 2, 4], vec![0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.5, 0.5]);
        let classes = arr(&[1, 2], vec![1.0, 1.0]);
        let scores = arr(&[1, 2], vec![0.9, 0.9]);
        let out = decode(
            ModelFormat::SsdTflite,
            &[boxes.clone(), classes.clone(), scores.clone(), arr(&[1], vec![1.0])],
            10,
            10,
            &filter(),
        )
        .map(images_ok)
        .expect("ok");
        assert_eq!(out[0].len(), 1);
        let err =
            decode(ModelFormat::SsdTflite, &[boxes, classes], 10, 10, &filter()).expect_err("two outputs");
        assert!(matches!(err, DecodeError::OutputCount { expected: 4, found: 2, .. }));
    }

    #[test]
    fn yolov8_decodes_and_suppresses() {
        // 2 classes, 3 anchors: two overlapping boxes of class 0 and one of class 1.
        let mut v = vec![0.0; 6 * 3];
        let set = |v: &mut Vec<f32>, row: usize, a: usize, x: f32| v[row * 3 + a] = x;
        for (a, (cx, cy, w, h, s0, s1)) in [
            (50.0, 50.0, 20.0, 20.0, 0.9, 0.1),
            (52.0, 50.0, 20.0, 20.0, 0.8, 0.1),
            (50.0, 50.0, 20.0, 20.0, 0.1, 0.7),
        ]
        .into_iter()
        .enumerate()
        {
            for (row, x) in [cx, cy, w, h, s0, s1].into_iter().enumerate() {
                set(&mut v, row, a, x);
            }
        }
        let out = decode(ModelFormat::Yolov8, &[arr(&[1, 6, 3], v)], 640, 640, &filter())
            .map(images_ok)
            .expect("ok");
        let got: Vec<(u32, f32)> = out[0].iter().map(|d| (d.class, d.score)).collect();
        assert_eq!(got, vec![(0, 0.9), (1, 0.7)], "the 0.8 duplicate is suppressed, other class kept");
        assert_eq!(out[0][0].bbox, [40.0, 40.0, 60.0, 60.0]);
    }

    #[test]
    fn xyxy_filters_classes_and_caps() {
        let d = arr(
            &[1, 3, 6],
            vec![0., 0., 10., 10., 0.9, 1., 0., 0., 5., 5., 0.8, 2., 1., 1., 4., 4., 0.7, 1.],
        );
        let f = Filter { classes: Some(vec![1]), max_detections: 1, ..filter() };
        let out = decode(ModelFormat::DetectionsXyxy, &[d], 10, 10, &f).map(images_ok).expect("ok");
        assert_eq!(out[0].len(), 1);
        assert_eq!(out[0][0].score, 0.9);
    }

    #[test]
    fn class_thresholds_and_agnostic_nms() {
        let d = |bbox: [f32; 4], score: f32, class: u32| RawDetection { bbox, score, class };
        let dets = vec![
            d([0., 0., 10., 10.], 0.9, 1),
            d([1., 0., 11., 10.], 0.8, 2),
            d([50., 50., 60., 60.], 0.4, 1),
            d([80., 80., 90., 90.], 0.45, 3),
        ];
        let f = Filter { class_thresholds: vec![(1, 0.5)], ..filter() };
        let got: Vec<f32> = apply_filter(dets.clone(), &f).iter().map(|d| d.score).collect();
        assert_eq!(got, vec![0.9, 0.8, 0.45], "class 1 needs 0.5, the others 0.3");
        let f = Filter { agnostic_nms: true, ..filter() };
        let got: Vec<f32> = apply_filter(dets.clone(), &f).iter().map(|d| d.score).collect();
        assert_eq!(got, vec![0.9, 0.45, 0.4], "the class-2 box on the class-1 object goes");
        assert_eq!(apply_filter(apply_filter(dets.clone(), &f), &f), apply_filter(dets, &f), "idempotent");
    }

    #[test]
    fn iou_basics() {
        assert_eq!(iou(&[0., 0., 10., 10.], &[0., 0., 10., 10.]), 1.0);
        assert_eq!(iou(&[0., 0., 10., 10.], &[20., 20., 30., 30.]), 0.0);
        assert!((iou(&[0., 0., 10., 10.], &[5., 0., 15., 10.]) - 1.0 / 3.0).abs() < 1e-6);
    }
}
