//! One ONNX Runtime session: load the ORT library once per process, build a session for a
//! model (CPU or CUDA), turn u8 RGB images into the model's input tensor, run it and decode the
//! outputs. Blocking: it is owned by an inference thread (see `engine`), never by async code.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use labeljob_api::v1alpha1::{ChannelOrder, Device, InputDtype, Layout};
use ndarray::ArrayD;
use ort::environment::Environment;
use ort::session::{Session, builder::GraphOptimizationLevel};
use ort::value::{TensorElementType, TensorRef, ValueType};

use super::config::ModelConfig;
use super::decode::{self, Filter};
use super::signed_weights::{self, WeightSigning};
use crate::imaging::{Tensor, to_tensor};

/// Environment variable naming libonnxruntime.so (the same one `ort` reads).
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// Session errors.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// libonnxruntime could not be found or loaded.
    #[error(
        "cannot load ONNX Runtime from {path}: {message} (run scripts/fetch-ort.sh and set ORT_DYLIB_PATH)"
    )]
    Library {
        /// Path tried.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// ORT refused the model or the run.
    #[error("ONNX Runtime: {0}")]
    Ort(#[from] ort::Error),
    /// The model's input is not what the config says.
    #[error("model input {name:?} has {found}, but the config expects {expected}")]
    InputMismatch {
        /// Input name.
        name: String,
        /// What the model declares.
        found: String,
        /// What the config expects.
        expected: String,
    },
    /// An output could not be read as numbers.
    #[error("model output {0:?} is not a numeric tensor")]
    Output(String),
    /// Decoding the outputs failed.
    #[error(transparent)]
    Decode(#[from] decode::DecodeError),
    /// The CUDA execution provider is not available.
    #[error("--device cuda: {0}")]
    Cuda(String),
    /// Preprocessing produced a bad tensor.
    #[error("preprocess: {0}")]
    Tensor(#[source] crate::imaging::TensorError),
    /// An inference thread could not be started, or its session's load panicked.
    #[error("inference thread: {0}")]
    Thread(String),
}

static ORT_ENV: OnceLock<Result<Environment, String>> = OnceLock::new();

/// The library to load: `explicit`, else `$ORT_DYLIB_PATH`, else `.cache/ort/lib/libonnxruntime.so`
/// in the working directory or next to the executable's checkout, else the system's.
pub fn ort_library_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os(ORT_DYLIB_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let mut candidates = vec![PathBuf::from(".cache/ort/lib/libonnxruntime.so")];
    if let Ok(exe) = std::env::current_exe()
        && let Some(bin) = exe.parent()
    {
        candidates.push(bin.join("../../.cache/ort/lib/libonnxruntime.so"));
        candidates.push(bin.join("../lib/libonnxruntime.so"));
    }
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| PathBuf::from("libonnxruntime.so"))
}

/// Load libonnxruntime once per process and return its environment.
pub fn init_ort(explicit: Option<&Path>) -> Result<&'static Environment, SessionError> {
    let path = ort_library_path(explicit);
    let res = ORT_ENV.get_or_init(|| {
        let builder = ort::init_from(&path).map_err(|e| e.to_string())?;
        builder.with_name("labeljob").build().map_err(|e| e.to_string())
    });
    res.as_ref().map_err(|message| SessionError::Library { path, message: message.clone() })
}

/// A loaded model.
pub struct ModelSession {
    session: Session,
    input_name: String,
    output_names: Vec<String>,
    /// Largest batch the model accepts (1 for fixed-batch models).
    pub max_batch: usize,
    config: ModelConfig,
}

impl std::fmt::Debug for ModelSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSession")
            .field("model", &self.config.name)
            .field("max_batch", &self.max_batch)
            .finish()
    }
}

impl ModelSession {
    /// Build a session with `threads` intra-op threads on `device`; on CPU, `weights` says
    /// whether uint8 weights are loaded re-signed ([`signed_weights`]).
    pub fn load(
        config: &ModelConfig,
        threads: usize,
        device: Device,
        weights: WeightSigning,
    ) -> Result<Self, SessionError> {
        let env = init_ort(None)?;
        let mut builder = Session::builder(env)
            .map_err(SessionError::Ort)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| SessionError::Ort(e.into()))?
            .with_intra_threads(threads.max(1))
            .map_err(|e| SessionError::Ort(e.into()))?
            .with_inter_threads(1)
            .map_err(|e| SessionError::Ort(e.into()))?
            // Spinning threads would steal the cores decode needs.
            .with_intra_op_spinning(false)
            .map_err(|e| SessionError::Ort(e.into()))?;
        if device == Device::Cuda {
            builder = with_cuda(builder)?;
        }
        let session = match resigned_model(&config.path, device, weights) {
            Some(bytes) => builder.commit_from_memory(&bytes)?,
            None => builder.commit_from_file(&config.path)?,
        };
        let input = session.inputs().first().ok_or_else(|| SessionError::InputMismatch {
            name: String::new(),
            found: "no inputs".into(),
            expected: "one image input".into(),
        })?;
        let input_name = input.name().to_string();
        let (ty, shape) = match input.dtype() {
            ValueType::Tensor { ty, shape, .. } => (*ty, shape.to_vec()),
            other => {
                return Err(SessionError::InputMismatch {
                    name: input_name,
                    found: format!("{other:?}"),
                    expected: "a tensor".into(),
                });
            }
        };
        let want_ty = match config.dtype {
            labeljob_api::v1alpha1::InputDtype::Uint8 => TensorElementType::Uint8,
            labeljob_api::v1alpha1::InputDtype::Float32 => TensorElementType::Float32,
        };
        if ty != want_ty || shape.len() != 4 {
            return Err(SessionError::InputMismatch {
                name: input_name,
                found: format!("{ty:?} {shape:?}"),
                expected: format!("{want_ty:?} with 4 dimensions"),
            });
        }
        let max_batch = if shape[0] > 0 { shape[0] as usize } else { usize::MAX };
        let output_names = session.outputs().iter().map(|o| o.name().to_string()).collect();
        Ok(Self { session, input_name, output_names, max_batch, config: config.clone() })
    }

    /// The model's input size, width × height.
    pub fn input_size(&self) -> (u32, u32) {
        (self.config.width, self.config.height)
    }

    /// Run a batch of `width×height×3` RGB u8 images (already resized) and decode the
    /// detections, in model-input pixels. Batches larger than the model takes are split. An
    /// image whose output values are malformed is an `Err` of its own
    /// ([`decode::BadOutput`]); the others are decoded.
    pub fn detect(
        &mut self,
        images: &[&[u8]],
        filter: &Filter,
    ) -> Result<Vec<decode::ImageDetections>, SessionError> {
        let mut all = Vec::with_capacity(images.len());
        let chunk = self.max_batch.max(1);
        for part in images.chunks(chunk) {
            all.extend(self.detect_batch(part, filter)?);
        }
        Ok(all)
    }

    fn detect_batch(
        &mut self,
        images: &[&[u8]],
        filter: &Filter,
    ) -> Result<Vec<decode::ImageDetections>, SessionError> {
        let c = &self.config;
        let (w, h) = (c.width as usize, c.height as usize);
        let as_is = c.dtype == InputDtype::Uint8
            && c.layout == Layout::Nhwc
            && c.channel_order == ChannelOrder::Rgb
            && c.normalize.is_none();
        let outputs = match images {
            // One image in the model's own layout is the tensor already: no copy.
            [one] if as_is && one.len() == w * h * 3 => {
                let view = TensorRef::from_array_view(([1, h, w, 3], *one))?;
                self.session.run(ort::inputs![self.input_name.as_str() => view])?
            }
            _ => match to_tensor(images, c.width, c.height, c.layout, c.dtype, c.channel_order, c.normalize)
                .map_err(SessionError::Tensor)?
            {
                Tensor::U8(a) => self
                    .session
                    .run(ort::inputs![self.input_name.as_str() => TensorRef::from_array_view(a.view())?])?,
                Tensor::F32(a) => self
                    .session
                    .run(ort::inputs![self.input_name.as_str() => TensorRef::from_array_view(a.view())?])?,
            },
        };
        let mut arrays: Vec<ArrayD<f32>> = Vec::with_capacity(self.output_names.len());
        for name in &self.output_names {
            let v = outputs.get(name.as_str()).ok_or_else(|| SessionError::Output(name.clone()))?;
            let arr = if let Ok(a) = v.try_extract_array::<f32>() {
                a.to_owned()
            } else if let Ok(a) = v.try_extract_array::<i64>() {
                a.mapv(|x| x as f32)
            } else if let Ok(a) = v.try_extract_array::<i32>() {
                a.mapv(|x| x as f32)
            } else {
                return Err(SessionError::Output(name.clone()));
            };
            arrays.push(arr);
        }
        Ok(decode::decode(c.format, &arrays, c.width, c.height, filter)?)
    }
}

/// Largest model file re-signed in memory (the rewrite holds about four copies of it at its
/// peak, for a moment before the session loads); a larger one is loaded from its file as it is.
const MAX_RESIGN_BYTES: u64 = 256 << 20;

/// The model at `path` with its uint8 weights re-signed, or `None` to load the file as it is:
/// not a CPU session, `--int8-weights off`, a CPU whose int8 kernels are not exact for it,
/// nothing to re-sign, or a file this cannot read (ORT's own load then reports why).
fn resigned_model(path: &Path, device: Device, weights: WeightSigning) -> Option<Vec<u8>> {
    static SAID: std::sync::Once = std::sync::Once::new();
    if device != Device::Cpu || weights == WeightSigning::Off || !signed_weights::cpu_is_exact() {
        return None;
    }
    let bytes = read_at_most(path, MAX_RESIGN_BYTES)?;
    match signed_weights::resign(&bytes) {
        Ok(Some(r)) => {
            SAID.call_once(|| {
                tracing::info!(
                    model = %path.display(),
                    nodes = r.nodes,
                    "loading uint8 weights as int8 for this CPU's exact int8 kernels (AVX512-VNNI): same outputs, faster (--int8-weights off to load the file as it is)"
                );
            });
            Some(r.bytes)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::debug!(model = %path.display(), error = %e, "not re-signing weights: not a protobuf message");
            None
        }
    }
}

/// The file at `path` if it holds at most `max` bytes: the size is read from the open file and
/// the read stops one byte past `max`, so a file that grows in between is refused too.
fn read_at_most(path: &Path, max: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len > max {
        return None;
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).ok()?);
    file.take(max.checked_add(1)?).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= max).then_some(bytes)
}

#[cfg(feature = "cuda")]
fn with_cuda(
    builder: ort::session::builder::SessionBuilder,
) -> Result<ort::session::builder::SessionBuilder, SessionError> {
    use ort::ep::ExecutionProvider;
    let ep = ort::ep::CUDA::default();
    match ort::ep::CUDA::is_available() {
        Ok(true) => {}
        Ok(false) => {
            return Err(SessionError::Cuda(
                "the loaded ONNX Runtime has no CUDA execution provider (use the onnxruntime-gpu library and a GPU node)".into(),
            ));
        }
        Err(e) => return Err(SessionError::Cuda(e.to_string())),
    }
    builder
        .with_execution_providers([ep.build().error_on_failure()])
        .map_err(|e| SessionError::Cuda(e.to_string()))
}

#[cfg(not(feature = "cuda"))]
fn with_cuda(
    _builder: ort::session::builder::SessionBuilder,
) -> Result<ort::session::builder::SessionBuilder, SessionError> {
    Err(SessionError::Cuda(
        "this labeljob was built without the `cuda` feature (cargo build --features cuda)".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/ssd-mobilenet-v2-coco.onnx")
    }

    #[test]
    fn the_default_model_is_re_signed_only_on_cpu_with_auto_on_an_exact_cpu() {
        let path = model_path();
        assert!(resigned_model(&path, Device::Cpu, WeightSigning::Off).is_none(), "--int8-weights off");
        assert!(resigned_model(&path, Device::Cuda, WeightSigning::Auto).is_none(), "CUDA");
        let auto = resigned_model(&path, Device::Cpu, WeightSigning::Auto);
        assert_eq!(
            auto.is_some(),
            signed_weights::cpu_is_exact(),
            "auto re-signs exactly where the CPU is exact"
        );
        assert!(
            resigned_model(Path::new("/nonexistent/model.onnx"), Device::Cpu, WeightSigning::Auto).is_none()
        );
    }

    #[test]
    fn a_file_over_the_limit_is_not_read() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("m.onnx");
        std::fs::write(&path, [7u8; 100]).expect("write");
        assert_eq!(read_at_most(&path, 100).map(|b| b.len()), Some(100));
        assert!(read_at_most(&path, 99).is_none());
    }
}
