//! The sample LabelJobs in config/samples parse as LabelJobs and pass the same checks the
//! operator and `labeljob run` apply. Runs everywhere (no cluster).

use std::path::PathBuf;

use labeljob_api::v1alpha1::Device;
use labeljob_api::{LabelJob, parse_labeljob, validate_spec};

fn sample(name: &str) -> LabelJob {
    let path = labeljob_e2e::repo_root().join("config/samples").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lj = parse_labeljob(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    validate_spec(&lj.spec).unwrap_or_else(|e| panic!("{name}: {e}"));
    lj
}

#[test]
fn s3_sample_reads_and_writes_s3_with_a_secret() {
    let lj = sample("labeljob-s3.yaml");
    assert!(lj.spec.input.uri.starts_with("s3://"));
    assert!(lj.spec.output.uri.starts_with("s3://"));
    let secret = lj.spec.input.credentials.as_ref().map(|c| c.secret_name.as_str());
    assert_eq!(secret, Some("s3-credentials"));
    assert!(lj.spec.workers.shards > 1 && lj.spec.inference.endpoint.is_none());
}

#[test]
fn gpu_sample_requests_a_gpu_on_a_gpu_node() {
    let lj = sample("labeljob-gpu.yaml");
    let inf = &lj.spec.inference;
    assert_eq!(inf.device, Some(Device::Cuda));
    let limits = inf.resources.as_ref().and_then(|r| r.limits.as_ref()).expect("limits");
    assert_eq!(limits.get("nvidia.com/gpu").map(|q| q.0.as_str()), Some("1"));
    assert!(!inf.node_selector.is_empty());
    assert!(inf.tolerations.iter().any(|t| t.key.as_deref() == Some("nvidia.com/gpu")));
}

#[test]
fn external_endpoint_sample_uses_an_existing_server() {
    let lj = sample("labeljob-external-endpoint.yaml");
    let inf = &lj.spec.inference;
    assert!(inf.endpoint.as_deref().is_some_and(|e| e.starts_with("http://")));
    assert!(inf.replicas.is_none() && inf.resources.is_none());
}

/// Every `labeljob-*.yaml` sample (including those other work adds) must be valid.
#[test]
fn every_valid_sample_validates() {
    let dir: PathBuf = labeljob_e2e::repo_root().join("config/samples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("config/samples exists") {
        let name = entry.expect("dir entry").file_name().to_string_lossy().into_owned();
        if name.starts_with("labeljob-") && name.ends_with(".yaml") {
            sample(&name);
            seen += 1;
        }
    }
    assert!(seen >= 3, "only {seen} samples in {}", dir.display());
}
