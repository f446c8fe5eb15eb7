//! The four detection output tensors (`boxes`, `classes`, `scores`, `counts`) as the server
//! packs them and the client unpacks them, and the two message directions that carry them:
//! the server's response encoding (binary or JSON per output) and the client's request
//! building and response parsing. Pure functions. The client trusts nothing in a response:
//! element counts come from shapes by checked arithmetic and must match the bytes or values
//! present before they are used, the tensors' shapes must agree, and every count, class, score
//! and box must be a value a detector can give.

use serde::Deserialize;
use serde_json::Value;

use super::json_data::FlatData;
use super::protocol::{
    INPUT, InferRequest, InferResponse, OUTPUTS, Parameters, ProtocolError, RequestInput, RequestOutput,
    ResponseOutput, binary_size, split_body, take_binary,
};
use crate::model::RawDetection;

/// The detections of a batch as the four output tensors, `K` = the largest count.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionTensors {
    /// Images.
    pub n: usize,
    /// Rows per image.
    pub k: usize,
    /// `[N, K, 4]`.
    pub boxes: Vec<f32>,
    /// `[N, K]`.
    pub classes: Vec<i32>,
    /// `[N, K]`.
    pub scores: Vec<f32>,
    /// `[N]`.
    pub counts: Vec<i32>,
}

impl DetectionTensors {
    /// Pack detections; rows beyond an image's count are zero.
    pub fn pack(dets: &[Vec<RawDetection>]) -> Self {
        let n = dets.len();
        let k = dets.iter().map(Vec::len).max().unwrap_or(0);
        let mut t = Self {
            n,
            k,
            boxes: vec![0.0; n * k * 4],
            classes: vec![0; n * k],
            scores: vec![0.0; n * k],
            counts: vec![0; n],
        };
        for (i, img) in dets.iter().enumerate() {
            t.counts[i] = img.len() as i32;
            for (j, d) in img.iter().enumerate() {
                let r = i * k + j;
                t.boxes[r * 4..r * 4 + 4].copy_from_slice(&d.bbox);
                t.classes[r] = d.class as i32;
                t.scores[r] = d.score;
            }
        }
        t
    }

    /// Unpack into per-image detections (the first `counts[i]` rows of each image), refusing
    /// tensors whose lengths do not match `n` and `k`, a count outside `0..=k`, a negative
    /// class or a score or box coordinate that is not finite.
    pub fn unpack(&self) -> Result<Vec<Vec<RawDetection>>, ProtocolError> {
        let bad = |field: &str, reason: String| ProtocolError::Data { field: field.into(), reason };
        let rows = self.n.checked_mul(self.k).ok_or_else(|| bad("outputs", "N x K overflows".into()))?;
        if self.counts.len() != self.n
            || self.classes.len() != rows
            || self.scores.len() != rows
            || Some(self.boxes.len()) != rows.checked_mul(4)
        {
            return Err(bad(
                "outputs",
                format!("tensor lengths do not match N = {}, K = {}", self.n, self.k),
            ));
        }
        let mut out = Vec::with_capacity(self.n);
        for (i, &count) in self.counts.iter().enumerate() {
            let c = usize::try_from(count).ok().filter(|c| *c <= self.k).ok_or_else(|| {
                bad(&format!("outputs.counts[{i}]"), format!("{count} is not a count within K = {}", self.k))
            })?;
            let mut dets = Vec::with_capacity(c);
            for j in 0..c {
                let r = i * self.k + j;
                let class = u32::try_from(self.classes[r]).map_err(|_| {
                    bad(&format!("outputs.classes[{i}][{j}]"), format!("{} is negative", self.classes[r]))
                })?;
                let score = self.scores[r];
                let b = &self.boxes[r * 4..r * 4 + 4];
                if !score.is_finite() || b.iter().any(|v| !v.is_finite()) {
                    return Err(bad(
                        &format!("outputs[{i}][{j}]"),
                        "a score or box coordinate is not finite".into(),
                    ));
                }
                dets.push(RawDetection { bbox: [b[0], b[1], b[2], b[3]], score, class });
            }
            out.push(dets);
        }
        Ok(out)
    }

    fn tensor(&self, name: &str) -> (&'static str, Vec<i64>, Vec<u8>, Value) {
        let (n, k) = (self.n as i64, self.k as i64);
        let le_f = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let le_i = |v: &[i32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        match name {
            "boxes" => ("FP32", vec![n, k, 4], le_f(&self.boxes), Value::from(self.boxes.clone())),
            "classes" => ("INT32", vec![n, k], le_i(&self.classes), Value::from(self.classes.clone())),
            "scores" => ("FP32", vec![n, k], le_f(&self.scores), Value::from(self.scores.clone())),
            _ => ("INT32", vec![n], le_i(&self.counts), Value::from(self.counts.clone())),
        }
    }
}

/// Encode the response: the JSON part and the binary data after it (empty when no output is
/// binary; then the body is the JSON alone and no header-length header is sent).
pub fn encode_response(
    model_name: &str,
    id: Option<String>,
    tensors: &DetectionTensors,
    outputs: &[(&'static str, bool)],
) -> (Vec<u8>, Vec<u8>) {
    let mut binary = Vec::new();
    let mut out = Vec::with_capacity(outputs.len());
    for (name, as_binary) in outputs {
        let (datatype, shape, bytes, json) = tensors.tensor(name);
        let mut o =
            ResponseOutput { name: (*name).into(), datatype: datatype.into(), shape, ..Default::default() };
        if *as_binary {
            o.parameters.insert("binary_data_size".into(), Value::from(bytes.len()));
            binary.extend_from_slice(&bytes);
        } else {
            o.data = Some(json);
        }
        out.push(o);
    }
    let resp =
        InferResponse { model_name: model_name.into(), model_version: Some("1".into()), id, outputs: out };
    (serde_json::to_vec(&resp).unwrap_or_default(), binary)
}

/// Build a binary-extension request for `images` (each `width`×`height`×3): the body and the
/// length of its JSON part (the `Inference-Header-Content-Length` value).
pub fn build_request(images: &[&[u8]], width: u32, height: u32) -> (Vec<u8>, usize) {
    let size: usize = images.iter().map(|i| i.len()).sum();
    let mut params = Parameters::new();
    params.insert("binary_data_size".into(), Value::from(size));
    let binary = |name: &str| {
        let mut p = Parameters::new();
        p.insert("binary_data".into(), Value::Bool(true));
        RequestOutput { name: name.into(), parameters: p }
    };
    let req = InferRequest {
        inputs: vec![RequestInput {
            name: INPUT.into(),
            shape: vec![images.len() as i64, i64::from(height), i64::from(width), 3],
            datatype: "UINT8".into(),
            parameters: params,
            data: None,
        }],
        outputs: Some(OUTPUTS.iter().map(|n| binary(n)).collect()),
        ..Default::default()
    };
    let mut body = serde_json::to_vec(&req).unwrap_or_default();
    let header = body.len();
    body.reserve(size);
    for i in images {
        body.extend_from_slice(i);
    }
    (body, header)
}

/// An output tensor as the client reads it (numbers flattened while parsing).
#[derive(Debug, Deserialize)]
struct ParsedOutput {
    name: String,
    #[serde(default)]
    datatype: String,
    shape: Vec<i64>,
    #[serde(default)]
    parameters: Parameters,
    #[serde(default)]
    data: Option<FlatData<f64>>,
}

/// The JSON part of a response as the client reads it.
#[derive(Debug, Deserialize)]
struct ParsedResponse {
    outputs: Vec<ParsedOutput>,
}

/// Parse an infer response (binary or JSON outputs) into per-image detections.
pub fn parse_response(body: &[u8], header: Option<&str>) -> Result<Vec<Vec<RawDetection>>, ProtocolError> {
    let (json, binary) = split_body(body, header)?;
    let resp: ParsedResponse = serde_json::from_slice(json).map_err(ProtocolError::Json)?;
    let mut offset = 0usize;
    let mut values: [Option<(Vec<i64>, Vec<f64>)>; 4] = Default::default();
    for (i, o) in resp.outputs.iter().enumerate() {
        let field = format!("outputs[{i}]");
        let Some(slot) = OUTPUTS.iter().position(|n| *n == o.name) else { continue };
        let count = element_count(&o.shape, &field)?;
        let data = match binary_size(&o.parameters, &field)? {
            Some(size) => {
                let chunk = take_binary(binary, &mut offset, size, &field)?;
                numbers_le(chunk, &o.datatype, count, &field)?
            }
            None => {
                let data_field = format!("{field}.data");
                let data = o.data.as_ref().ok_or_else(|| ProtocolError::Data {
                    field: data_field.clone(),
                    reason: "missing".into(),
                })?;
                data.values(&data_field, count)?.to_vec()
            }
        };
        values[slot] = Some((o.shape.clone(), data));
    }
    let [boxes, classes, scores, counts] = values;
    let take = |v: Option<(Vec<i64>, Vec<f64>)>, name: &'static str| {
        v.ok_or(ProtocolError::Missing { field: "outputs", name })
    };
    let (bshape, boxes) = take(boxes, "boxes")?;
    let (cshape, classes) = take(classes, "classes")?;
    let (sshape, scores) = take(scores, "scores")?;
    let (nshape, counts) = take(counts, "counts")?;
    let (ni, ki) = match bshape.as_slice() {
        [n, k, 4] => (*n, *k),
        _ => {
            return Err(ProtocolError::Shape {
                field: "outputs.boxes".into(),
                found: bshape,
                expected: "[N, K, 4]".into(),
            });
        }
    };
    // Both are non-negative and their product fits: element_count checked it.
    let (n, k) = (ni as usize, ki as usize);
    for (name, shape, want) in
        [("classes", cshape, vec![ni, ki]), ("scores", sshape, vec![ni, ki]), ("counts", nshape, vec![ni])]
    {
        if shape != want {
            return Err(ProtocolError::Shape {
                field: format!("outputs.{name}"),
                found: shape,
                expected: format!("{want:?} to match boxes [{n}, {k}, 4]"),
            });
        }
    }
    let t = DetectionTensors {
        n,
        k,
        boxes: boxes.iter().map(|v| *v as f32).collect(),
        classes: integers(&classes, "outputs.classes")?,
        scores: scores.iter().map(|v| *v as f32).collect(),
        counts: integers(&counts, "outputs.counts")?,
    };
    t.unpack()
}

/// The element count of a shape: every dimension non-negative, the product without overflow.
fn element_count(shape: &[i64], field: &str) -> Result<usize, ProtocolError> {
    shape
        .iter()
        .try_fold(1usize, |acc, d| usize::try_from(*d).ok().and_then(|d| acc.checked_mul(d)))
        .ok_or_else(|| ProtocolError::Shape {
            field: format!("{field}.shape"),
            found: shape.to_vec(),
            expected: "non-negative dimensions whose product fits in memory".into(),
        })
}

/// Numbers that must be INT32 values (classes, counts).
fn integers(values: &[f64], field: &str) -> Result<Vec<i32>, ProtocolError> {
    values
        .iter()
        .map(|v| {
            let ok = v.fract() == 0.0 && *v >= f64::from(i32::MIN) && *v <= f64::from(i32::MAX);
            ok.then_some(*v as i32).ok_or_else(|| ProtocolError::Data {
                field: field.into(),
                reason: format!("{v} is not an INT32"),
            })
        })
        .collect()
}

fn numbers_le(chunk: &[u8], datatype: &str, count: usize, field: &str) -> Result<Vec<f64>, ProtocolError> {
    let width = match datatype {
        "FP32" | "INT32" => 4,
        "FP64" | "INT64" => 8,
        other => {
            return Err(ProtocolError::Datatype {
                field: format!("{field}.datatype"),
                found: other.into(),
                expected: "FP32, FP64, INT32 or INT64",
            });
        }
    };
    // Checked before anything is allocated: a huge shape with a small chunk fails here.
    if count.checked_mul(width) != Some(chunk.len()) {
        return Err(ProtocolError::BinarySize {
            field: format!("{field}.parameters.binary_data_size"),
            found: chunk.len(),
            expected: count.saturating_mul(width),
        });
    }
    Ok(chunk
        .chunks_exact(width)
        .map(|b| match (datatype, b) {
            ("FP32", [a, b, c, d]) => f64::from(f32::from_le_bytes([*a, *b, *c, *d])),
            ("INT32", [a, b, c, d]) => f64::from(i32::from_le_bytes([*a, *b, *c, *d])),
            ("FP64", b) => f64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
            (_, b) => i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f64,
        })
        .collect())
}
