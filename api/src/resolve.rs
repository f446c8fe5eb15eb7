//! Resolve (pure): check a spec ([`validate_spec`]) and fill in every default the spec leaves
//! open, once, into [`Resolved`]. The operator builds its children from these values and the
//! worker runs with them, so a default is written in one place: the constants below (the serve
//! flags default to them too). Defaults that serde fills while parsing (`workers.shards`,
//! `postprocess.scoreThreshold`, …) are schema defaults and live beside their fields.

use k8s_openapi::api::core::v1::ResourceRequirements;

use crate::v1alpha1::{Device, InferenceSpec, LabelJobSpec};
use crate::validate::{SpecErrors, validate_spec};

/// Inference pods when `inference.replicas` is not set.
pub const DEFAULT_INFERENCE_REPLICAS: i32 = 1;
/// Largest batch the inference server groups requests into when `inference.maxBatchSize` is
/// not set.
pub const DEFAULT_MAX_BATCH_SIZE: u32 = 8;
/// Longest a request waits for a batch to fill, in milliseconds, when
/// `inference.maxBatchDelayMs` is not set.
pub const DEFAULT_MAX_BATCH_DELAY_MS: u32 = 2;
/// The device of in-process inference when `inference.device` is not set.
pub const DEFAULT_LOCAL_DEVICE: Device = Device::Cpu;
/// The GPU resource whose request makes the inference server run on CUDA by default.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";
/// The name a model file (not a builtin model) is served under when `inference.modelName` is
/// not set.
pub const DEFAULT_FILE_MODEL_NAME: &str = "model";

/// A spec's inference settings, every default filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedInference {
    /// Pods of the inference Deployment: `replicas`, else [`DEFAULT_INFERENCE_REPLICAS`].
    pub replicas: i32,
    /// Device of the inference server (the Deployment's pods): `device`, else CUDA when the
    /// pods' resources name [`GPU_RESOURCE`], else CPU.
    pub device: Device,
    /// Device of in-process inference (`labeljob run`, a shard without an endpoint): `device`,
    /// else [`DEFAULT_LOCAL_DEVICE`] (the resources ask a cluster for GPUs, not this machine).
    pub local_device: Device,
    /// `maxBatchSize`, else [`DEFAULT_MAX_BATCH_SIZE`].
    pub max_batch_size: u32,
    /// `maxBatchDelayMs`, else [`DEFAULT_MAX_BATCH_DELAY_MS`].
    pub max_batch_delay_ms: u32,
    /// The model's name on the inference server: `modelName`, else the builtin model's name,
    /// else [`DEFAULT_FILE_MODEL_NAME`].
    pub model_name: String,
}

/// A spec's worker settings, every default filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedWorkers {
    /// Shards running at once: `workers.parallelism`, else `workers.shards` (all of them).
    pub parallelism: u32,
}

/// The settings of a checked spec with every default filled in: what the operator builds
/// from and the worker runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The inference service.
    pub inference: ResolvedInference,
    /// The worker shards.
    pub workers: ResolvedWorkers,
}

/// Whether `resources` (limits or requests) name [`GPU_RESOURCE`].
pub fn requests_gpu(resources: Option<&ResourceRequirements>) -> bool {
    resources
        .is_some_and(|r| [&r.limits, &r.requests].into_iter().flatten().any(|m| m.contains_key(GPU_RESOURCE)))
}

fn inference(spec: &LabelJobSpec) -> ResolvedInference {
    let inf: &InferenceSpec = &spec.inference;
    let server_default = if requests_gpu(inf.resources.as_ref()) { Device::Cuda } else { Device::Cpu };
    ResolvedInference {
        replicas: inf.replicas.unwrap_or(DEFAULT_INFERENCE_REPLICAS),
        device: inf.device.unwrap_or(server_default),
        local_device: inf.device.unwrap_or(DEFAULT_LOCAL_DEVICE),
        max_batch_size: inf.max_batch_size.unwrap_or(DEFAULT_MAX_BATCH_SIZE),
        max_batch_delay_ms: inf.max_batch_delay_ms.unwrap_or(DEFAULT_MAX_BATCH_DELAY_MS),
        model_name: inf
            .model_name
            .clone()
            .or_else(|| spec.model.builtin.clone())
            .unwrap_or_else(|| DEFAULT_FILE_MODEL_NAME.to_string()),
    }
}

/// Check `spec` and fill in its defaults (pure): `Err` lists every rule it breaks, as
/// [`validate_spec`] does.
pub fn resolve(spec: &LabelJobSpec) -> Result<Resolved, SpecErrors> {
    validate_spec(spec)?;
    let w = &spec.workers;
    Ok(Resolved {
        inference: inference(spec),
        workers: ResolvedWorkers { parallelism: w.parallelism.unwrap_or(w.shards) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::tests::spec;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    #[test]
    fn an_empty_spec_resolves_to_the_documented_defaults() {
        let r = resolve(&spec("")).expect("valid");
        assert_eq!(
            r.inference,
            ResolvedInference {
                replicas: 1,
                device: Device::Cpu,
                local_device: Device::Cpu,
                max_batch_size: 8,
                max_batch_delay_ms: 2,
                model_name: "ssd-mobilenet-v2-coco".into(),
            }
        );
        let shards = spec("").workers.shards;
        assert_eq!(r.workers, ResolvedWorkers { parallelism: shards }, "every shard at once");
    }

    #[test]
    fn set_values_win_over_defaults() {
        let s = spec(
            "  inference: {replicas: 3, device: cuda, maxBatchSize: 16, maxBatchDelayMs: 0, modelName: ssd}\n  workers: {shards: 4, parallelism: 2}\n",
        );
        let r = resolve(&s).expect("valid");
        let i = &r.inference;
        assert_eq!((i.replicas, i.device, i.local_device), (3, Device::Cuda, Device::Cuda));
        assert_eq!((i.max_batch_size, i.max_batch_delay_ms, i.model_name.as_str()), (16, 0, "ssd"));
        assert_eq!(r.workers.parallelism, 2);
    }

    #[test]
    fn a_gpu_request_picks_cuda_for_the_server_only() {
        let mut s = spec("");
        s.inference.resources = Some(ResourceRequirements {
            limits: Some([(GPU_RESOURCE.to_string(), Quantity("1".into()))].into()),
            ..ResourceRequirements::default()
        });
        let r = resolve(&s).expect("valid");
        assert_eq!((r.inference.device, r.inference.local_device), (Device::Cuda, Device::Cpu));
        s.model.builtin = None;
        s.model.uri = Some("file:///m.onnx".into());
        s.model.format = Some(crate::v1alpha1::ModelFormat::Yolov8);
        s.model.input_size = Some(crate::v1alpha1::InputSize { width: 640, height: 640 });
        assert_eq!(resolve(&s).expect("valid").inference.model_name, DEFAULT_FILE_MODEL_NAME);
    }

    #[test]
    fn an_invalid_spec_is_refused_as_validate_spec_refuses_it() {
        let s = spec("  workers: {shards: 2, parallelism: 3}\n");
        assert_eq!(resolve(&s).map(|_| ()), validate_spec(&s));
        assert!(resolve(&s).is_err());
    }
}
