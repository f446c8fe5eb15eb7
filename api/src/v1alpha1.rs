//! `labeljob.dev/v1alpha1` `LabelJob`: the spec a user writes and the status the operator
//! observes. Doc comments become the CRD schema descriptions (`kubectl explain`), serde
//! defaults become schema defaults, and cross-field rules are CEL `x-kubernetes-validations`
//! so that `kubectl apply` refuses a bad job before anything is created.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod execution;
mod labels;
pub use execution::{
    DownloadTimeouts, MAX_BACKOFF_LIMIT_PER_INDEX, MAX_CONCURRENCY, MAX_SHARDS, WorkersSpec,
};
pub use labels::{Archive, DedupAction, DedupMode, DedupSpec, OutputFormat, ReviewMode, ReviewSpec};

/// Label a set of images with a detection model and write one COCO file.
///
/// The operator provisions an inference Deployment (unless `inference.endpoint` is set), runs
/// `workers.shards` worker shards that download, preprocess and detect, merges their COCO shards
/// into `output.uri`, reports progress in `status`, and tears the infrastructure down per
/// `teardown`. The same document runs on one machine with `labeljob run FILE`.
// `printcolumn(...)` is meant to be repeated (one per kubectl column);
// clippy's duplicated_attributes lint misreads the repeats as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "labeljob.dev",
    version = "v1alpha1",
    kind = "LabelJob",
    plural = "labeljobs",
    shortname = "lj",
    namespaced,
    status = "LabelJobStatus",
    derive = "PartialEq",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Progress", type_ = "string", json_path = ".status.progress"),
    printcolumn(name = "Img/s", type_ = "number", json_path = ".status.imagesPerSecond"),
    printcolumn(name = "ETA", type_ = "string", json_path = ".status.eta"),
    printcolumn(name = "Failed", type_ = "integer", json_path = ".status.images.failed"),
    printcolumn(name = "Review", type_ = "integer", json_path = ".status.images.review"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "Shards", type_ = "integer", json_path = ".spec.workers.shards", priority = 1),
    printcolumn(name = "Model", type_ = "string", json_path = ".status.model", priority = 1),
    printcolumn(name = "Output", type_ = "string", json_path = ".spec.output.uri", priority = 1),
    printcolumn(name = "GPU-s", type_ = "number", json_path = ".status.gpuSeconds", priority = 1),
    printcolumn(name = "Cost", type_ = "number", json_path = ".status.estimatedCost", priority = 1)
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.maxFailedFraction) || (self.maxFailedFraction >= 0.0 && self.maxFailedFraction <= 1.0)").message("maxFailedFraction must be between 0 and 1"))]
pub struct LabelJobSpec {
    /// Where the images come from.
    pub input: InputSpec,
    /// The detection model and how to feed it.
    pub model: ModelSpec,
    /// Filtering applied to the model's detections.
    #[serde(default)]
    pub postprocess: PostprocessSpec,
    /// The inference service: a Deployment the operator provisions, or an existing endpoint.
    #[serde(default)]
    pub inference: InferenceSpec,
    /// The worker shards that download, preprocess and call inference.
    #[serde(default)]
    pub workers: WorkersSpec,
    /// Where the merged COCO file and the shard files are written.
    pub output: OutputSpec,
    /// Send uncertain images to a review set instead of (or flagged in) the main set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewSpec>,
    /// Fail the job when more than this many images cannot be labelled (unset: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_failed_images: Option<u64>,
    /// Fail the job when more than this fraction (0–1) of the images cannot be labelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failed_fraction: Option<f64>,
    /// Fail the job when it has been running longer than this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub active_deadline_seconds: Option<i64>,
    /// Delete the LabelJob this many seconds after it finished (unset: keep it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: Option<i64>,
    /// Pause the job: workers and inference scale to zero; finished shards are kept.
    #[serde(default)]
    pub suspend: bool,
    /// What to do with the inference Deployment and the Jobs when the job ends.
    #[serde(default)]
    pub teardown: TeardownSpec,
}

/// The input image set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.uri.startsWith('s3://') || self.uri.startsWith('gs://') || self.uri.startsWith('az://') || self.uri.startsWith('file://') || self.uri.startsWith('https://') || self.uri.startsWith('http://')").message("input.uri must start with s3://, gs://, az://, file://, http:// or https://"))]
pub struct InputSpec {
    /// A prefix in object storage (`s3://bucket/prefix`, `gs://…`, `az://…`), a local
    /// directory (`file:///path`), or an `https://` URL of a text file listing one image URL
    /// per line.
    #[schemars(length(min = 1))]
    pub uri: String,
    /// Globs, relative to `uri`, of the keys to label. Empty: every key ending in .jpg, .jpeg,
    /// .png, .webp or .bmp (any case). At most 256 globs of at most 1024 characters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 1024)))]
    pub include: Vec<String>,
    /// Globs, relative to `uri`, of keys to leave out even when included. At most 256 globs of
    /// at most 1024 characters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 1024)))]
    pub exclude: Vec<String>,
    /// Credentials for the input store. Unset: the environment (workload identity, IRSA,
    /// instance metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsSpec>,
    /// Label only the first N images of the sorted listing (sample mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_images: Option<u64>,
    /// Allow `https://` URL lists, and the image URLs they list, to reach private, loopback,
    /// link-local, carrier-grade NAT and cloud metadata addresses (10/8, 172.16/12,
    /// 192.168/16, 127/8, 169.254/16, 100.64/10, ::1, fc00::/7, fe80::/10, …), directly or by a
    /// redirect. Off by default: every resolved address and every redirect hop is checked and
    /// such addresses are refused, so that a URL list cannot make workers fetch internal
    /// services. Has no effect on object store inputs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_private_networks: bool,
    /// Duplicate images (default: byte-identical copies are labelled once).
    #[serde(default, skip_serializing_if = "DedupSpec::is_default")]
    pub dedup: DedupSpec,
    /// Time limits of image downloads (default: connect 10 s, read 30 s, 120 s per image in
    /// all, retries included).
    #[serde(default, skip_serializing_if = "DownloadTimeouts::is_default")]
    pub timeouts: DownloadTimeouts,
}

/// A reference to a Secret whose keys become environment variables of the worker pods
/// (e.g. `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSpec {
    /// Name of a Secret in the LabelJob's namespace.
    #[schemars(length(min = 1))]
    pub secret_name: String,
}

/// The detection model.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.builtin) != has(self.uri)").message("set exactly one of model.builtin and model.uri"))]
pub struct ModelSpec {
    /// A model shipped with LabelJob, e.g. `ssd-mobilenet-v2-coco`. Its format, input and
    /// classes are known; fields set here override them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<String>,
    /// An ONNX model file (`s3://…`, `file://…`, `https://…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Expected sha256 of the model file (hex); the job fails when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: Option<String>,
    /// How to decode the model's outputs into boxes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ModelFormat>,
    /// Model input size in pixels (width and height).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_size: Option<InputSize>,
    /// How images are fitted to the input size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<ResizeMode>,
    /// Tensor layout of the model input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
    /// Element type of the model input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<InputDtype>,
    /// Channel order of the model input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_order: Option<ChannelOrder>,
    /// For float32 inputs: `(pixel / 255 - mean) / std` per channel. Unset: `pixel / 255`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<Normalize>,
    /// What the model's class indices mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<ClassesSpec>,
}

/// Output decoder of a detection model.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ModelFormat {
    /// TFLite SSD with postprocess (NMS inside): boxes [N,K,4] as ymin,xmin,ymax,xmax in 0–1,
    /// classes [N,K], scores [N,K], count [N].
    #[serde(rename = "ssd-tflite")]
    SsdTflite,
    /// Ultralytics YOLOv8 ONNX export: [N, 4+C, A] with cx,cy,w,h in input pixels; NMS applied.
    #[serde(rename = "yolov8")]
    Yolov8,
    /// Post-NMS detections [N, K, 6]: x1,y1,x2,y2 in input pixels, score, class.
    #[serde(rename = "detections-xyxy")]
    DetectionsXyxy,
}

/// Width and height of the model input.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub struct InputSize {
    /// Width in pixels.
    #[schemars(range(min = 1, max = 8192))]
    pub width: u32,
    /// Height in pixels.
    #[schemars(range(min = 1, max = 8192))]
    pub height: u32,
}

impl InputSize {
    /// The largest side (the schema's `maximum`, which a test holds equal).
    pub const MAX_SIDE: u32 = 8192;

    /// Both sides within 1–[`InputSize::MAX_SIDE`]; else why not.
    pub fn check(&self) -> Result<(), String> {
        let ok = |v: u32| (1..=Self::MAX_SIDE).contains(&v);
        if ok(self.width) && ok(self.height) {
            Ok(())
        } else {
            Err(format!("{}x{} is outside 1–{}", self.width, self.height, Self::MAX_SIDE))
        }
    }
}

/// Resize mode.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Scale width and height independently to the input size.
    Stretch,
    /// Keep the aspect ratio and pad (grey 114) to the input size, centred.
    Letterbox,
}

/// Input tensor layout.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Layout {
    /// Batch, height, width, channels.
    #[serde(rename = "NHWC")]
    Nhwc,
    /// Batch, channels, height, width.
    #[serde(rename = "NCHW")]
    Nchw,
}

/// Input element type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InputDtype {
    /// Raw 0–255 pixels.
    Uint8,
    /// Normalised floats.
    Float32,
}

/// Channel order.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ChannelOrder {
    /// Red, green, blue.
    #[serde(rename = "RGB")]
    Rgb,
    /// Blue, green, red (OpenCV-trained models).
    #[serde(rename = "BGR")]
    Bgr,
}

/// Per-channel normalisation for float inputs: `(pixel / 255 - mean) / std`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct Normalize {
    /// Mean per channel, in the input's channel order.
    #[schemars(length(min = 3, max = 3))]
    pub mean: Vec<f32>,
    /// Standard deviation per channel, in the input's channel order (non-zero).
    #[schemars(length(min = 3, max = 3))]
    pub std: Vec<f32>,
}

/// The model's classes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.preset) != (has(self.names) && size(self.names) > 0)").message("set exactly one of classes.preset and classes.names"))]
pub struct ClassesSpec {
    /// A known class list with official COCO category ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<ClassPreset>,
    /// Class names by model index (index 0 → category id 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

/// Class presets.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClassPreset {
    /// Model index + 1 is the COCO category id (TensorFlow detection models, torchvision).
    Coco90,
    /// Model index is the position in the 80 COCO 2017 classes (Ultralytics YOLO).
    Coco80,
}

/// Detection filtering.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostprocessSpec {
    /// Keep detections scoring at least this (0–1).
    #[serde(default = "default_score_threshold")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub score_threshold: f32,
    /// IoU above which non-maximum suppression drops the weaker box (0–1).
    #[serde(default = "default_iou_threshold")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub iou_threshold: f32,
    /// Keep at most this many detections per image, best first.
    #[serde(default = "default_max_detections")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_detections: u32,
    /// Keep only these class names (empty: all classes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_filter: Vec<String>,
    /// Score threshold per class name (0–1), replacing `scoreThreshold` for that class.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub class_thresholds: BTreeMap<String, f32>,
    /// Rename or merge classes on output: model class name → output name. Classes mapped to
    /// the same name become one category (its id: the smallest of theirs).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub class_map: BTreeMap<String, String>,
    /// Class-agnostic non-maximum suppression after the per-class one: of boxes of any class
    /// overlapping more than `iouThreshold`, keep the best (one box per object).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub agnostic_nms: bool,
}

fn default_score_threshold() -> f32 {
    0.3
}
fn default_iou_threshold() -> f32 {
    0.5
}
fn default_max_detections() -> u32 {
    100
}

impl Default for PostprocessSpec {
    fn default() -> Self {
        Self {
            score_threshold: default_score_threshold(),
            iou_threshold: default_iou_threshold(),
            max_detections: default_max_detections(),
            class_filter: Vec::new(),
            class_thresholds: BTreeMap::new(),
            class_map: BTreeMap::new(),
            agnostic_nms: false,
        }
    }
}

/// The inference service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.endpoint) || (!has(self.replicas) && !has(self.resources))").message("inference.endpoint uses an existing server: do not set inference.replicas or inference.resources with it"))]
pub struct InferenceSpec {
    /// Use an existing Open Inference Protocol v2 server (Triton, KServe, `labeljob serve`),
    /// e.g. `http://triton.ml:8000`. No inference Deployment is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("inference.endpoint must be an http:// or https:// URL"))]
    pub endpoint: Option<String>,
    /// Model name on the endpoint (default: the builtin name, or `model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    /// Inference pods to run (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 64))]
    pub replicas: Option<i32>,
    /// Resources of each inference pod, e.g. `limits: {nvidia.com/gpu: 1}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Execution device of the inference server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    /// Node labels the inference pods must match (e.g. a GPU node pool).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the inference pods (e.g. `nvidia.com/gpu` taints).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Largest batch the server groups requests into (models with a fixed batch of 1 run
    /// item by item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1024))]
    pub max_batch_size: Option<u32>,
    /// Longest a request waits for others to fill a batch, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10000))]
    pub max_batch_delay_ms: Option<u32>,
    /// Price of one GPU for one hour, in any currency: a decimal string such as `"2.48"` or a
    /// whole number, at least 0. With it the status shows `estimatedCost` = `gpuSeconds` / 3600
    /// × this price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "cost_schema")]
    pub cost_per_gpu_hour: Option<IntOrString>,
}

/// `costPerGpuHour`: an integer or a decimal string (the form of a Kubernetes quantity; the
/// apiserver checks the pattern of strings, `validate_spec` the sign of integers).
fn cost_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "nullable": true,
        "pattern": "^[0-9]+(\\.[0-9]+)?$",
        "x-kubernetes-int-or-string": true,
    })
}

impl InferenceSpec {
    /// `costPerGpuHour` as a number, when it is set and valid (a whole number or a decimal
    /// string, at least 0).
    pub fn cost_per_gpu_hour(&self) -> Option<f64> {
        match self.cost_per_gpu_hour.as_ref()? {
            IntOrString::Int(n) => (*n >= 0).then_some(f64::from(*n)),
            IntOrString::String(s) => {
                let (whole, frac) = s.split_once('.').unwrap_or((s, "0"));
                let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
                (digits(whole) && digits(frac)).then(|| s.parse().ok()).flatten()
            }
        }
    }
}

/// Execution device.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// ONNX Runtime's CPU execution provider.
    Cpu,
    /// ONNX Runtime's CUDA execution provider (a CUDA image and a GPU node).
    Cuda,
}

/// Where results go.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.uri.startsWith('s3://') || self.uri.startsWith('gs://') || self.uri.startsWith('az://') || self.uri.startsWith('file://')").message("output.uri must start with s3://, gs://, az:// or file://"))]
pub struct OutputSpec {
    /// A prefix (`s3://bucket/prefix`, `gs://…`, `az://…`, `file:///dir`) receiving
    /// `manifest.jsonl`, `shards/`, `annotations.json`, `results.json`, `errors.jsonl` and
    /// `report.json`.
    #[schemars(length(min = 1))]
    pub uri: String,
    /// What to do when the prefix already holds results.
    #[serde(default)]
    pub overwrite: OverwritePolicy,
    /// Credentials for the output store (unset: those of the input, then the environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsSpec>,
    /// Label formats to write (COCO is always written): `coco`, `yolo`, `voc`, `cvat`,
    /// `labelstudio`.
    #[serde(default = "labels::default_formats")]
    #[schemars(length(min = 1, max = 5))]
    pub formats: Vec<OutputFormat>,
    /// How the per-image formats (`yolo`, `voc`) are packaged: `zip` (default) writes each as
    /// one archive (`yolo.zip`, `voc.zip`: the file CVAT's and Ultralytics' importers take, and
    /// one object in object storage instead of one per image); `none` writes directories
    /// (`yolo/labels/<stem>.txt`, `voc/Annotations/<stem>.xml`).
    #[serde(default)]
    pub archive: Archive,
}

/// Handling of existing results under `output.uri`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum OverwritePolicy {
    /// Keep shards finished for the same manifest, model and settings; redo the rest.
    #[default]
    Resume,
    /// Start over: existing shards are ignored and rewritten.
    Replace,
    /// Refuse to run when results from another manifest, model or settings exist.
    Fail,
}

/// What happens to the infrastructure when the job ends.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeardownSpec {
    /// On success: delete the inference Deployment, Service and Jobs, or retain them.
    #[serde(default)]
    pub on_success: TeardownPolicy,
    /// On failure: delete the inference Deployment, Service and Jobs, or retain them.
    #[serde(default)]
    pub on_failure: TeardownPolicy,
}

impl Default for TeardownSpec {
    fn default() -> Self {
        Self { on_success: TeardownPolicy::Delete, on_failure: TeardownPolicy::Delete }
    }
}

/// Teardown policy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum TeardownPolicy {
    /// Delete the children (the LabelJob and the output are kept).
    #[default]
    Delete,
    /// Keep the children for inspection.
    Retain,
}

/// Observed state of a LabelJob.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelJobStatus {
    /// Where the job is in its lifecycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Images done out of the total, e.g. `1200/5000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Latest observations, one condition per type, rewritten every pass: `SpecValid` (the
    /// spec passed validation; False with reason `InvalidSpec` and the reasons), `InferenceReady`
    /// (an inference pod is available, or `inference.endpoint` is used), `ShardsComplete` (every
    /// shard finished), `Merged` (the merged output is written), `Complete` (True once
    /// Succeeded; False with the failure's reason once Failed, e.g. `ShardsFailed`,
    /// `EmptyInput`; False `InProgress` before), `Suspended` (`spec.suspend` is in effect).
    /// There is no `Ready` condition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation of the spec these observations are for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Image counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<ImageCounts>,
    /// Shard counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<ShardCounts>,
    /// Throughput in images per second. While Running: the recent rate, from the change of
    /// `images.processed` between observations (smoothed over about 30 s; unset until two
    /// observations). Once the shards are done: their average over the Running phase only
    /// (the shards Job's start to its completion), start-up of inference not included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_per_second: Option<f64>,
    /// When `images.processed` last changed (or was last found unchanged for 30 s): the base of
    /// the next `imagesPerSecond` (microsecond precision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_time: Option<MicroTime>,
    /// Estimated time left while Running, from `imagesPerSecond` and the images left, e.g.
    /// `4m10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta: Option<String>,
    /// The model: `model.builtin`, or the file name of `model.uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// When the job started running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the job succeeded or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// URI of the merged `annotations.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// sha256 of the frozen manifest (the input set the job labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    /// GPU time the job held, in GPU-seconds: the GPUs each inference pod requests
    /// (`nvidia.com/gpu` or any other `…/gpu` resource; limits, else requests) × the inference
    /// Deployment's `availableReplicas` (its Ready pods), summed over the time between the
    /// operator's observations. Every change of `availableReplicas` wakes the operator (it
    /// watches the Deployment), so each interval is counted with the pods that were Ready in it.
    /// Pods that are starting, gated by Kueue or suspended count nothing. Counted until the job
    /// ends; unset when no GPU is requested or `inference.endpoint` is used. Status only: the
    /// worker's `report.json` does not know it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_seconds: Option<f64>,
    /// `gpuSeconds` / 3600 × `inference.costPerGpuHour` (same currency), rounded to 4 decimals;
    /// unset without a price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_cost: Option<f64>,
    /// GPUs held by available inference pods at `gpuTime`: what `gpuSeconds` grows by per second
    /// until the next observation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    /// When `gpuSeconds` was last brought up to date (microsecond precision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_time: Option<MicroTime>,
}

/// Lifecycle phase.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// Accepted, nothing created yet.
    Pending,
    /// Inference Deployment starting, input being planned.
    Provisioning,
    /// Worker shards running.
    Running,
    /// Shards done, the merge Job running.
    Merging,
    /// Merged output written.
    Succeeded,
    /// Shards exhausted retries, the error budget or the deadline was exceeded.
    Failed,
    /// `suspend: true`: scaled to zero.
    Suspended,
}

impl Phase {
    /// Whether the job has ended.
    pub fn is_finished(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Image counts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageCounts {
    /// Images in the manifest.
    pub total: u64,
    /// Images done (labelled or failed). Never decreases while a job runs: a retried shard
    /// starts its count again, and the total holds until the retry catches up.
    pub processed: u64,
    /// Images that could not be labelled.
    pub failed: u64,
    /// Images routed to the review set (`spec.review`), from the merge's report; unset
    /// before the merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<u64>,
    /// Duplicate images found (`spec.input.dedup`), from the merge's report; unset before the
    /// merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<u64>,
}

/// Shard counts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShardCounts {
    /// Shards in the job.
    pub total: u32,
    /// Shards finished.
    pub succeeded: u32,
    /// Shards that exhausted their retries.
    pub failed: u32,
    /// Shards running now.
    pub active: u32,
}
