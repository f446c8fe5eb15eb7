//! Open Inference Protocol v2 (KServe v2 / Triton HTTP) messages and the binary tensor data
//! extension, for the one model shape LabelJob serves: input `images` UINT8 `[N, H, W, 3]`
//! (already resized by the client) and outputs `boxes` FP32 `[N, K, 4]`, `classes` INT32
//! `[N, K]`, `scores` FP32 `[N, K]`, `counts` INT32 `[N]`. Pure functions used by both the
//! server (parse requests, encode responses) and `oip::client` (build requests, parse
//! responses). Every error names the field at fault; the server answers them with 400.
//! Sizes from the wire (shapes, byte counts) are checked against the model, the request limit
//! and the bytes actually present, with checked arithmetic, before anything is allocated.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::json_data::FlatData;

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
    /// More images in one request than the server can ever queue.
    #[error(
        "{field}: {images} images in one request, but the queue holds {capacity} (--queue-capacity): send smaller batches"
    )]
    TooManyImages {
        /// The field.
        field: String,
        /// Sent.
        images: i64,
        /// Queue capacity.
        capacity: usize,
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
    pub data: Option<FlatData<u8>>,
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
        Some(v) => {
            v.as_u64().and_then(|n| usize::try_from(n).ok()).map(Some).ok_or_else(|| ProtocolError::Data {
                field: format!("{field}.parameters.binary_data_size"),
                reason: format!("{v} is not a byte count"),
            })
        }
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
/// data), checking name, datatype, shape (at most `max_images` images) and sizes.
pub fn parse_images(
    req: &InferRequest,
    binary: &[u8],
    width: u32,
    height: u32,
    max_images: usize,
) -> Result<Vec<Vec<u8>>, ProtocolError> {
    if req.inputs.is_empty() {
        return Err(ProtocolError::Missing { field: "inputs", name: INPUT });
    }
    let mut offset = 0usize;
    let mut images = None;
    for (i, input) in req.inputs.iter().enumerate() {
        let field = format!("inputs[{i}]");
        if input.name != INPUT || images.is_some() {
            return Err(ProtocolError::Unknown {
                field: format!("{field}.name"),
                name: input.name.clone(),
                known: format!("one {INPUT}"),
            });
        }
        if input.datatype != "UINT8" {
            return Err(ProtocolError::Datatype {
                field: format!("{field}.datatype"),
                found: input.datatype.clone(),
                expected: "UINT8",
            });
        }
        let (n, per_image) = image_shape(&input.shape, width, height, max_images, &field)?;
        let bad_size = || ProtocolError::Shape {
            field: format!("{field}.shape"),
            found: input.shape.clone(),
            expected: "a size that fits in memory".into(),
        };
        let want = n.checked_mul(per_image).ok_or_else(bad_size)?;
        let pixels: &[u8] = match binary_size(&input.parameters, &field)? {
            Some(size) => {
                if size != want {
                    return Err(ProtocolError::BinarySize {
                        field: format!("{field}.parameters.binary_data_size"),
                        found: size,
                        expected: want,
                    });
                }
                take_binary(binary, &mut offset, size, &field)?
            }
            None => {
                let data_field = format!("{field}.data");
                let data = input.data.as_ref().ok_or_else(|| ProtocolError::Data {
                    field: data_field.clone(),
                    reason: "missing (send `data` or parameters.binary_data_size)".into(),
                })?;
                data.values(&data_field, want)?
            }
        };
        // Only now, with `want` bytes present, are images allocated.
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

/// Check an input shape `[N, height, width, 3]` with `1 <= N <= max_images`; returns N and the
/// bytes per image.
fn image_shape(
    shape: &[i64],
    width: u32,
    height: u32,
    max_images: usize,
    field: &str,
) -> Result<(usize, usize), ProtocolError> {
    let (h, w) = (i64::from(height), i64::from(width));
    let n = match shape {
        [n, sh, sw, 3] if *n >= 1 && *sh == h && *sw == w => *n,
        _ => {
            return Err(ProtocolError::Shape {
                field: format!("{field}.shape"),
                found: shape.to_vec(),
                expected: format!("[N, {h}, {w}, 3] with N >= 1"),
            });
        }
    };
    let too_many =
        || ProtocolError::TooManyImages { field: format!("{field}.shape"), images: n, capacity: max_images };
    let n = usize::try_from(n).ok().filter(|n| *n <= max_images).ok_or_else(too_many)?;
    let per_image =
        (width as usize).checked_mul(height as usize).and_then(|p| p.checked_mul(3)).ok_or_else(|| {
            ProtocolError::Shape {
                field: format!("{field}.shape"),
                found: shape.to_vec(),
                expected: "a model input that fits in memory".into(),
            }
        })?;
    Ok((n, per_image))
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
