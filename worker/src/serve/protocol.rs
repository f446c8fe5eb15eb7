//! Open Inference Protocol v2 (KServe v2 / Triton HTTP) messages and the binary tensor data
//! extension, for the one model shape LabelJob serves: input `images` UINT8 `[N, H, W, 3]`
//! (already resized by the client) and outputs `boxes` FP32 `[N, K, 4]`, `classes` INT32
//! `[N, K]`, `scores` FP32 `[N, K]`, `counts` INT32 `[N]`. Pure functions used by both the
//! server (parse requests, encode responses) and `oip_client` (build requests, parse
//! responses). Every error names the field at fault; the server answers them with 400.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Header carrying the length of the JSON part of a binary-extension body.
pub const HEADER_LENGTH: &str = "inference-header-content-length";
/// Name of the image input.
pub const INPUT: &str = "images";
/// Output names, in the order the server returns them by default.
pub const OUTPUTS: [&str; 4] = ["boxes", "classes", "scores", "counts"];
/// Platform reported in the model metadata.
pub const PLATFORM: &str = "onnxruntime_onnx";

/// Why a message is malformed (HTTP 400 on the server).
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The JSON part does not parse.
    #[error("invalid JSON in the request: {0}")]
    Json(#[source] serde_json::Error),
    /// The header-length header is not a number within the body.
    #[error("Inference-Header-Content-Length {value:?} is not a length within the {body}-byte body")]
    HeaderLength {
        /// The header as sent.
        value: String,
        /// Body length.
        body: usize,
    },
    /// A required tensor is absent.
    #[error("{field}: no tensor named {name:?}")]
    Missing {
        /// Where it was looked for.
        field: &'static str,
        /// The tensor.
        name: &'static str,
    },
    /// A tensor that this model does not have.
    #[error("{field}: unknown tensor {name:?} (this model has {known})")]
    Unknown {
        /// The field, e.g. `inputs[1].name`.
        field: String,
        /// The name sent.
        name: String,
        /// The names that exist.
        known: String,
    },
    /// Wrong datatype.
    #[error("{field}: datatype {found:?}, expected {expected}")]
    Datatype {
        /// The field.
        field: String,
        /// Sent.
        found: String,
        /// Wanted.
        expected: &'static str,
    },
    /// Wrong shape.
    #[error("{field}: shape {found:?}, expected {expected}")]
    Shape {
        /// The field.
        field: String,
        /// Sent.
        found: Vec<i64>,
        /// Wanted.
        expected: String,
    },
    /// Binary data of the wrong size, or not enough binary data after the header.
    #[error("{field}: {found} bytes of binary data, expected {expected}")]
    BinarySize {
        /// The field.
        field: String,
        /// Bytes given.
        found: usize,
        /// Bytes needed.
        expected: usize,
    },
    /// Tensor data that is absent or not numbers of the datatype.
    #[error("{field}: {reason}")]
    Data {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

/// Free-form `parameters` object.
pub type Parameters = Map<String, Value>;

/// `POST /v2/models/{name}/infer` request (JSON part).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InferRequest {
    /// Request id, echoed in the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Request parameters (`binary_data_output`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub parameters: Parameters,
    /// Input tensors.
    pub inputs: Vec<RequestInput>,
    /// Requested outputs (absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<RequestOutput>>,
}

/// One input tensor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestInput {
    /// Tensor name.
    pub name: String,
    /// Shape.
    pub shape: Vec<i64>,
    /// OIP datatype, e.g. `UINT8`.
    pub datatype: String,
    /// `binary_data_size` when the data follows the JSON part.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub parameters: Parameters,
    /// Row-major data (flat or nested) when not binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// One requested output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestOutput {
    /// Tensor name.
    pub name: String,
    /// `binary_data: true` for binary output.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub parameters: Parameters,
}

/// Inference response (JSON part).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InferResponse {
    /// Model name.
    pub model_name: String,
    /// Model version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// The request's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Output tensors.
    pub outputs: Vec<ResponseOutput>,
}

/// One output tensor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseOutput {
    /// Tensor name.
    pub name: String,
    /// OIP datatype.
    pub datatype: String,
    /// Shape.
    pub shape: Vec<i64>,
    /// `binary_data_size` when the data follows the JSON part.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub parameters: Parameters,
    /// Row-major flat data when not binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// `GET /v2/models/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Model name.
    pub name: String,
    /// Available versions.
    #[serde(default)]
    pub versions: Vec<String>,
    /// Backend platform.
    #[serde(default)]
    pub platform: String,
    /// Inputs.
    pub inputs: Vec<TensorMetadata>,
    /// Outputs.
    pub outputs: Vec<TensorMetadata>,
}

/// A tensor in the model metadata (`-1` marks a variable dimension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorMetadata {
    /// Tensor name.
    pub name: String,
    /// OIP datatype.
    pub datatype: String,
    /// Shape.
    pub shape: Vec<i64>,
}

/// The metadata of a detection model with `width`×`height` input.
pub fn model_metadata(name: &str, width: u32, height: u32) -> ModelMetadata {
    let t = |name: &str, datatype: &str, shape: &[i64]| TensorMetadata {
        name: name.into(),
        datatype: datatype.into(),
        shape: shape.to_vec(),
    };
    ModelMetadata {
        name: name.into(),
        versions: vec!["1".into()],
        platform: PLATFORM.into(),
        inputs: vec![t(INPUT, "UINT8", &[-1, i64::from(height), i64::from(width), 3])],
        outputs: vec![
            t("boxes", "FP32", &[-1, -1, 4]),
            t("classes", "INT32", &[-1, -1]),
            t("scores", "FP32", &[-1, -1]),
            t("counts", "INT32", &[-1]),
        ],
    }
}

/// Split a body into its JSON part and the binary data after it, given the
/// `Inference-Header-Content-Length` header (absent: all JSON).
pub fn split_body<'a>(body: &'a [u8], header: Option<&str>) -> Result<(&'a [u8], &'a [u8]), ProtocolError> {
    let Some(value) = header else { return Ok((body, &[])) };
    let n: usize = value
        .trim()
        .parse()
        .ok()
        .filter(|n| *n <= body.len())
        .ok_or_else(|| ProtocolError::HeaderLength { value: value.into(), body: body.len() })?;
    Ok(body.split_at(n))
}

/// Parse the JSON part of an infer request.
pub fn parse_request(json: &[u8]) -> Result<InferRequest, ProtocolError> {
    serde_json::from_slice(json).map_err(ProtocolError::Json)
}

pub(crate) fn binary_size(params: &Parameters, field: &str) -> Result<Option<usize>, ProtocolError> {
    match params.get("binary_data_size") {
        None => Ok(None),
        Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| ProtocolError::Data {
            field: format!("{field}.parameters.binary_data_size"),
            reason: format!("{v} is not a byte count"),
        }),
    }
}

/// The next `size` bytes of the binary section at `*offset` (advanced past them), for the
/// tensor named by `field`.
pub(crate) fn take_binary<'a>(
    binary: &'a [u8],
    offset: &mut usize,
    size: usize,
    field: &str,
) -> Result<&'a [u8], ProtocolError> {
    let end = offset.saturating_add(size);
    let chunk = binary.get(*offset..end).ok_or(ProtocolError::BinarySize {
        field: format!("{field} binary data"),
        found: binary.len().saturating_sub(*offset),
        expected: size,
    })?;
    *offset = end;
    Ok(chunk)
}

/// Take the `width`×`height` RGB images out of a request's `images` input (binary or JSON
/// data), checking name, datatype, shape and sizes.
pub fn parse_images(
    req: &InferRequest,
    binary: &[u8],
    width: u32,
    height: u32,
) -> Result<Vec<Vec<u8>>, ProtocolError> {
    if req.inputs.is_empty() {
        return Err(ProtocolError::Missing { field: "inputs", name: INPUT });
    }
    let mut offset = 0usize;
    let mut images = None;
    for (i, input) in req.inputs.iter().enumerate() {
        let field = format!("inputs[{i}]");
        if input.name != INPUT {
            return Err(ProtocolError::Unknown {
                field: format!("{field}.name"),
                name: input.name.clone(),
                known: INPUT.into(),
            });
        }
        if input.datatype != "UINT8" {
            return Err(ProtocolError::Datatype {
                field: format!("{field}.datatype"),
                found: input.datatype.clone(),
                expected: "UINT8",
            });
        }
        let (h, w) = (i64::from(height), i64::from(width));
        let n = match input.shape.as_slice() {
            [n, sh, sw, 3] if *n >= 1 && *sh == h && *sw == w => *n as usize,
            _ => {
                return Err(ProtocolError::Shape {
                    field: format!("{field}.shape"),
                    found: input.shape.clone(),
                    expected: format!("[N, {h}, {w}, 3] with N >= 1"),
                });
            }
        };
        let per_image = width as usize * height as usize * 3;
        let want = n.checked_mul(per_image).ok_or_else(|| ProtocolError::Shape {
            field: format!("{field}.shape"),
            found: input.shape.clone(),
            expected: "a size that fits in memory".into(),
        })?;
        let pixels: Vec<u8> = match binary_size(&input.parameters, &field)? {
            Some(size) => {
                if size != want {
                    return Err(ProtocolError::BinarySize {
                        field: format!("{field}.parameters.binary_data_size"),
                        found: size,
                        expected: want,
                    });
                }
                take_binary(binary, &mut offset, size, &field)?.to_vec()
            }
            None => json_u8(input.data.as_ref(), want, &format!("{field}.data"))?,
        };
        images = Some(pixels.chunks_exact(per_image).map(<[u8]>::to_vec).collect::<Vec<_>>());
    }
    if offset != binary.len() {
        return Err(ProtocolError::BinarySize {
            field: "binary data after the JSON header".into(),
            found: binary.len(),
            expected: offset,
        });
    }
    images.ok_or(ProtocolError::Missing { field: "inputs", name: INPUT })
}

/// Flatten nested JSON arrays of integers 0–255, checking the count.
fn json_u8(data: Option<&Value>, want: usize, field: &str) -> Result<Vec<u8>, ProtocolError> {
    let data = data.ok_or_else(|| ProtocolError::Data {
        field: field.into(),
        reason: "missing (send `data` or parameters.binary_data_size)".into(),
    })?;
    let mut out = Vec::with_capacity(want);
    let mut stack = vec![data];
    // Depth-first, left to right: push children reversed.
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Number(n) => {
                let b = n.as_u64().filter(|b| *b <= 255).ok_or_else(|| ProtocolError::Data {
                    field: field.into(),
                    reason: format!("{n} is not a UINT8"),
                })?;
                out.push(b as u8);
            }
            other => {
                return Err(ProtocolError::Data {
                    field: field.into(),
                    reason: format!("{other} is not a UINT8"),
                });
            }
        }
        if out.len() > want {
            break;
        }
    }
    if out.len() != want {
        return Err(ProtocolError::Data {
            field: field.into(),
            reason: format!(
                "{} values for a shape of {want}",
                if out.len() > want { "more".to_string() } else { out.len().to_string() }
            ),
        });
    }
    Ok(out)
}

/// Which outputs to return and whether each goes as binary data.
pub fn requested_outputs(req: &InferRequest) -> Result<Vec<(&'static str, bool)>, ProtocolError> {
    let default_binary = req.parameters.get("binary_data_output").and_then(Value::as_bool).unwrap_or(false);
    let Some(outputs) = &req.outputs else {
        return Ok(OUTPUTS.iter().map(|n| (*n, default_binary)).collect());
    };
    outputs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let name = OUTPUTS.iter().find(|n| **n == o.name).ok_or_else(|| ProtocolError::Unknown {
                field: format!("outputs[{i}].name"),
                name: o.name.clone(),
                known: OUTPUTS.join(", "),
            })?;
            let binary = o.parameters.get("binary_data").and_then(Value::as_bool).unwrap_or(default_binary);
            Ok((*name, binary))
        })
        .collect()
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
