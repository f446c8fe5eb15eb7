//! The inference Deployment and Service `NAME-inference`: `labeljob serve` on port 8000 with
//! the LabelJob's resources, node selector and tolerations (e.g. `nvidia.com/gpu`), probed on
//! the Open Inference Protocol health endpoints. Suspended jobs scale it to zero. With a Kueue
//! queue name, the Deployment and its pod template carry the Kueue labels: Kueue's `deployment`
//! integration (v0.15+) reads them from the Deployment, its `pod` integration (earlier
//! releases) from each pod, which then waits behind Kueue's scheduling gate until admitted.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ContainerPort, HTTPGetAction, PodTemplateSpec, Probe, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use labeljob_api::resolve::{DEFAULT_MAX_BATCH_DELAY_MS, DEFAULT_MAX_BATCH_SIZE};
use labeljob_api::v1alpha1::Device;

use super::{INFERENCE_PORT, OperatorConfig, container, credentials_env, labels_with_kueue, meta, pod_spec};
use crate::JOB_LABEL;
use crate::controller::children::Child;
use crate::controller::validate::ValidatedJob;

/// GPU resource name that selects the CUDA execution provider by default.
pub use labeljob_api::resolve::GPU_RESOURCE;

fn selector(v: &ValidatedJob) -> BTreeMap<String, String> {
    BTreeMap::from([
        (JOB_LABEL.to_string(), v.name.clone()),
        ("app.kubernetes.io/component".to_string(), Child::Deployment.component().to_string()),
    ])
}

/// `labeljob serve` with the resolved settings; a batching flag only where it differs from
/// the flag's default (the same constant as the spec's default).
fn serve_args(v: &ValidatedJob) -> Vec<String> {
    let inf = &v.resolved.inference;
    let model = v.spec.model.builtin.clone().or_else(|| v.spec.model.uri.clone()).unwrap_or_default();
    let mut args = vec!["serve".into(), "--model".into(), model, "--port".into(), INFERENCE_PORT.to_string()];
    if inf.max_batch_size != DEFAULT_MAX_BATCH_SIZE {
        args.extend(["--max-batch-size".into(), inf.max_batch_size.to_string()]);
    }
    if inf.max_batch_delay_ms != DEFAULT_MAX_BATCH_DELAY_MS {
        args.extend(["--max-batch-delay-ms".into(), inf.max_batch_delay_ms.to_string()]);
    }
    let device = match inf.device {
        Device::Cpu => "cpu",
        Device::Cuda => "cuda",
    };
    args.extend(["--device".into(), device.into()]);
    args
}

fn probe(path: &str, initial_delay: i32, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

/// Deployment `NAME-inference`.
pub fn deployment(v: &ValidatedJob, cfg: &OperatorConfig, suspend: bool) -> Deployment {
    let inf = &v.spec.inference;
    let mut c = container(Child::Deployment.component(), cfg, serve_args(v), false);
    c.ports = Some(vec![ContainerPort {
        name: Some("http".into()),
        container_port: INFERENCE_PORT,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }]);
    c.readiness_probe = Some(probe("/v2/health/ready", 2, 5, 3));
    c.liveness_probe = Some(probe("/v2/health/live", 15, 10, 6));
    c.resources = inf.resources.clone();
    // A model in object storage is read with the job's credentials.
    if v.spec.model.uri.is_some() {
        c.env_from = credentials_env(v);
    }
    let mut pod = pod_spec(v, cfg, c, "Always");
    pod.node_selector = (!inf.node_selector.is_empty()).then(|| inf.node_selector.clone());
    pod.tolerations = (!inf.tolerations.is_empty()).then(|| inf.tolerations.clone());
    Deployment {
        metadata: meta(v, Child::Deployment),
        spec: Some(DeploymentSpec {
            replicas: Some(if suspend { 0 } else { v.resolved.inference.replicas }),
            selector: LabelSelector { match_labels: Some(selector(v)), ..LabelSelector::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels_with_kueue(v, Child::Deployment)),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// Service `NAME-inference` on port 8000.
pub fn service(v: &ValidatedJob) -> Service {
    Service {
        metadata: meta(v, Child::Service),
        spec: Some(ServiceSpec {
            selector: Some(selector(v)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: INFERENCE_PORT,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
