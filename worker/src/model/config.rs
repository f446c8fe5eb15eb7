//! Model configuration: resolve a LabelJob's `model` section (a builtin name or a model URI,
//! plus overrides) into everything the pipeline needs — the ONNX file, its sha256, the output
//! decoder, the input geometry and the class map. Pure apart from reading the model file.

use std::path::{Path, PathBuf};

use labeljob_api::v1alpha1::{
    ChannelOrder, ClassPreset, InputDtype, Layout, ModelFormat, ModelSpec, ResizeMode,
};
use sha2::{Digest, Sha256};

use super::classes::ClassMap;

/// Where builtin models are looked up, in order: `$LABELJOB_MODELS_DIR`, `./models`, the
/// executable's `../share/labeljob/models`, `/opt/labeljob/models`.
pub const MODELS_DIR_ENV: &str = "LABELJOB_MODELS_DIR";

/// A builtin model's defaults.
struct Builtin {
    name: &'static str,
    file: &'static str,
    format: ModelFormat,
    width: u32,
    height: u32,
    resize: ResizeMode,
    layout: Layout,
    dtype: InputDtype,
    preset: ClassPreset,
}

const BUILTINS: &[Builtin] = &[Builtin {
    name: labeljob_api::DEFAULT_BUILTIN_MODEL,
    file: "ssd-mobilenet-v2-coco.onnx",
    format: ModelFormat::SsdTflite,
    width: 300,
    height: 300,
    resize: ResizeMode::Stretch,
    layout: Layout::Nhwc,
    dtype: InputDtype::Uint8,
    preset: ClassPreset::Coco90,
}];

/// Names of the builtin models.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTINS.iter().map(|b| b.name).collect()
}

/// Why a model cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelConfigError {
    /// Unknown builtin name.
    #[error("model.builtin {name:?} is not a builtin model (known: {known})")]
    UnknownBuiltin {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: String,
    },
    /// The builtin's file is not in any models directory.
    #[error("builtin model file {file} not found in {searched} (set {MODELS_DIR_ENV})")]
    BuiltinMissing {
        /// File name.
        file: String,
        /// Directories searched.
        searched: String,
    },
    /// A setting the model needs is missing.
    #[error("model.{0} is required for a model given by uri")]
    Missing(&'static str),
    /// Reading the model file failed.
    #[error("cannot read model file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file's digest differs from `model.sha256`.
    #[error("model file {path} has sha256 {actual}, but model.sha256 says {expected}")]
    DigestMismatch {
        /// The file.
        path: PathBuf,
        /// Expected digest.
        expected: String,
        /// Actual digest.
        actual: String,
    },
    /// Only local model files are handled here; remote URIs are fetched by the caller first.
    #[error("model.uri {0:?} must be fetched to a local file before use")]
    NotLocal(String),
}

/// Everything needed to run and decode a model.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Name the model is served under (builtin name, or the file stem).
    pub name: String,
    /// Local ONNX file.
    pub path: PathBuf,
    /// sha256 of the file (hex).
    pub sha256: String,
    /// Output decoder.
    pub format: ModelFormat,
    /// Input width in pixels.
    pub width: u32,
    /// Input height in pixels.
    pub height: u32,
    /// Resize mode.
    pub resize: ResizeMode,
    /// Input layout.
    pub layout: Layout,
    /// Input dtype.
    pub dtype: InputDtype,
    /// Channel order.
    pub channel_order: ChannelOrder,
    /// Mean and std for float inputs.
    pub normalize: Option<([f32; 3], [f32; 3])>,
    /// Class index → category.
    pub classes: ClassMap,
}

impl ModelConfig {
    /// Resolve `spec`. A `model.uri` must already be local (`file://` or a path); see
    /// [`local_model_path`].
    pub fn resolve(spec: &ModelSpec, fetched: Option<&Path>) -> Result<Self, ModelConfigError> {
        let builtin = match &spec.builtin {
            Some(name) => Some(BUILTINS.iter().find(|b| b.name == name).ok_or_else(|| {
                ModelConfigError::UnknownBuiltin { name: name.clone(), known: builtin_names().join(", ") }
            })?),
            None => None,
        };
        let (name, path) = match (builtin, &spec.uri) {
            (Some(b), _) => (b.name.to_string(), find_builtin(b.file)?),
            (None, Some(uri)) => {
                let path = match fetched {
                    Some(p) => p.to_path_buf(),
                    None => local_model_path(uri).ok_or_else(|| ModelConfigError::NotLocal(uri.clone()))?,
                };
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model").to_string();
                (stem, path)
            }
            (None, None) => return Err(ModelConfigError::Missing("builtin or model.uri")),
        };
        let format = spec.format.or(builtin.map(|b| b.format)).ok_or(ModelConfigError::Missing("format"))?;
        let size = spec.input_size.map(|s| (s.width, s.height)).or(builtin.map(|b| (b.width, b.height)));
        let (width, height) = size.ok_or(ModelConfigError::Missing("inputSize"))?;
        let resize = spec.resize.or(builtin.map(|b| b.resize)).unwrap_or(match format {
            ModelFormat::Yolov8 => ResizeMode::Letterbox,
            _ => ResizeMode::Stretch,
        });
        let layout = spec.layout.or(builtin.map(|b| b.layout)).unwrap_or(match format {
            ModelFormat::SsdTflite => Layout::Nhwc,
            _ => Layout::Nchw,
        });
        let dtype = spec.dtype.or(builtin.map(|b| b.dtype)).unwrap_or(match format {
            ModelFormat::SsdTflite => InputDtype::Uint8,
            _ => InputDtype::Float32,
        });
        let classes = match &spec.classes {
            Some(c) => ClassMap::from_spec(c),
            None => ClassMap::preset(builtin.map(|b| b.preset).unwrap_or(match format {
                ModelFormat::SsdTflite => ClassPreset::Coco90,
                _ => ClassPreset::Coco80,
            })),
        };
        let normalize = spec.normalize.as_ref().map(|n| {
            let arr = |v: &[f32]| {
                [
                    v.first().copied().unwrap_or(0.0),
                    v.get(1).copied().unwrap_or(0.0),
                    v.get(2).copied().unwrap_or(0.0),
                ]
            };
            (arr(&n.mean), arr(&n.std))
        });
        let sha256 = file_sha256(&path)?;
        if let Some(expected) = &spec.sha256
            && expected != &sha256
        {
            return Err(ModelConfigError::DigestMismatch {
                path,
                expected: expected.clone(),
                actual: sha256,
            });
        }
        Ok(Self {
            name,
            path,
            sha256,
            format,
            width,
            height,
            resize,
            layout,
            dtype,
            channel_order: spec.channel_order.unwrap_or(ChannelOrder::Rgb),
            normalize,
            classes,
        })
    }

    /// A digest of everything that changes a shard's output: the model bytes and the
    /// preprocessing/decoding settings. Shards written under another digest are redone.
    pub fn settings_digest(&self, postprocess: &impl serde::Serialize) -> String {
        let mut h = Sha256::new();
        h.update(self.sha256.as_bytes());
        let settings = serde_json::json!({
            "format": self.format, "width": self.width, "height": self.height,
            "resize": self.resize, "layout": self.layout, "dtype": self.dtype,
            "channelOrder": self.channel_order, "normalize": self.normalize,
            "categories": self.classes.categories(), "postprocess": postprocess,
        });
        h.update(settings.to_string().as_bytes());
        hex::encode(h.finalize())
    }
}

/// The local path of a `file://` URI or a plain path.
pub fn local_model_path(uri: &str) -> Option<PathBuf> {
    if let Some(rest) = uri.strip_prefix("file://") {
        return Some(PathBuf::from(rest));
    }
    if uri.contains("://") { None } else { Some(PathBuf::from(uri)) }
}

fn models_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os(MODELS_DIR_ENV) {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from("models"));
    if let Ok(exe) = std::env::current_exe()
        && let Some(bin) = exe.parent()
    {
        dirs.push(bin.join("../share/labeljob/models"));
        // target/{debug,release}/labeljob inside a checkout.
        dirs.push(bin.join("../../models"));
    }
    dirs.push(PathBuf::from("/opt/labeljob/models"));
    dirs
}

fn find_builtin(file: &str) -> Result<PathBuf, ModelConfigError> {
    let dirs = models_dirs();
    dirs.iter().map(|d| d.join(file)).find(|p| p.is_file()).ok_or_else(|| ModelConfigError::BuiltinMissing {
        file: file.into(),
        searched: dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
    })
}

/// sha256 (hex) of a file.
pub fn file_sha256(path: &Path) -> Result<String, ModelConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ModelConfigError::Read { path: path.into(), source })?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

#[cfg(test)]
mod tests {

    #[test]
    fn builtin_table_is_the_apis_list() {
        assert_eq!(builtin_names(), labeljob_api::BUILTIN_MODELS);
    }

    use super::*;

    #[test]
    fn resolves_the_builtin_model() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../models");
        let cfg = ModelConfig::resolve(
            &ModelSpec {
                uri: Some(format!("file://{dir}/ssd-mobilenet-v2-coco.onnx")),
                ..builtin_spec_uri()
            },
            None,
        )
        .expect("resolves");
        assert_eq!(cfg.sha256, "7eec0d343e8bf525668330a248fde8c0f0ee7e07a2aa13e6c60fddeec605d508");
        assert_eq!((cfg.width, cfg.height), (300, 300));
        assert_eq!(cfg.layout, Layout::Nhwc);
    }

    fn builtin_spec_uri() -> ModelSpec {
        ModelSpec {
            format: Some(ModelFormat::SsdTflite),
            input_size: Some(labeljob_api::v1alpha1::InputSize { width: 300, height: 300 }),
            ..Default::default()
        }
    }

    #[test]
    fn unknown_builtin_is_named() {
        let spec = ModelSpec { builtin: Some("yolo-nope".into()), ..Default::default() };
        let err = ModelConfig::resolve(&spec, None).expect_err("unknown builtin");
        assert!(err.to_string().contains("yolo-nope") && err.to_string().contains("ssd-mobilenet-v2-coco"));
    }

    #[test]
    fn digest_mismatch_is_refused() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../models");
        let spec = ModelSpec {
            uri: Some(format!("{dir}/ssd-mobilenet-v2-coco.onnx")),
            sha256: Some("0".repeat(64)),
            ..builtin_spec_uri()
        };
        assert!(matches!(ModelConfig::resolve(&spec, None), Err(ModelConfigError::DigestMismatch { .. })));
    }

    #[test]
    fn settings_digest_changes_with_thresholds() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../models");
        let spec = ModelSpec { uri: Some(format!("{dir}/ssd-mobilenet-v2-coco.onnx")), ..builtin_spec_uri() };
        let cfg = ModelConfig::resolve(&spec, None).expect("resolves");
        assert_ne!(cfg.settings_digest(&0.3), cfg.settings_digest(&0.4));
        assert_eq!(cfg.settings_digest(&0.3), cfg.settings_digest(&0.3));
    }
}
