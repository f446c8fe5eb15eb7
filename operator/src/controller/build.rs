//! Step 4 — build (pure). Turns a [`ValidatedJob`] and the [`Want`] that `decide` made into the
//! children to apply, one builder per row of the child table ([`Child`]): ConfigMap `NAME-job`
//! (the LabelJob document the worker reads), Job `NAME-plan`, Deployment + Service
//! `NAME-inference`, Indexed Job `NAME-shards`, Job `NAME-merge`. Every
//! child carries the controller owner reference, the `labeljob.dev/job` label and the
//! LabelJob's Kueue labels (`kueue.x-k8s.io/queue-name`, `…/priority-class`, which the inference
//! pod template carries too); every pod runs as non-root under the worker ServiceAccount
//! without its token.

pub mod inference;
pub mod jobs;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvFromSource,
    PodSecurityContext, PodSpec, SeccompProfile, SecretEnvSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use labeljob_api::LabelJob;

use super::children::{Child, Object, Objects, Want};
use super::validate::ValidatedJob;
use crate::JOB_LABEL;

/// Where the job file is mounted in worker pods.
pub const JOB_FILE: &str = "/etc/labeljob/job.yaml";
/// Port of the inference server.
pub const INFERENCE_PORT: i32 = 8000;
/// User and group id of every pod (non-root).
pub const POD_UID: i64 = 65532;

/// Settings of the operator that shape the children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorConfig {
    /// The `labeljob` worker image.
    pub worker_image: String,
    /// Its pull policy (None: the cluster default).
    pub image_pull_policy: Option<String>,
    /// ServiceAccount of worker and inference pods.
    pub service_account: String,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        OperatorConfig {
            worker_image: "ghcr.io/labeljob/labeljob-worker:latest".into(),
            image_pull_policy: None,
            service_account: "labeljob-worker".into(),
        }
    }
}

/// Why the children could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The LabelJob document for the ConfigMap could not be rendered.
    #[error("cannot render the job file: {0}")]
    JobFile(#[source] serde_yaml::Error),
}

/// Build the children `want` names (pure), in their slots of the child table.
pub fn build(v: &ValidatedJob, want: &Want, cfg: &OperatorConfig) -> Result<Objects, BuildError> {
    let mut children = Objects::default();
    for c in Child::ALL.into_iter().filter(|c| want.children.contains(*c)) {
        children[c] = Some(child(v, c, want.suspended.contains(c), cfg)?);
    }
    Ok(children)
}

/// The builder of each child: child `c` of `v`, suspended or not.
fn child(v: &ValidatedJob, c: Child, suspend: bool, cfg: &OperatorConfig) -> Result<Object, BuildError> {
    Ok(match c {
        Child::ConfigMap => config_map(v)?.into(),
        Child::PlanJob => jobs::plan_job(v, cfg, suspend).into(),
        Child::Service => inference::service(v).into(),
        Child::Deployment => inference::deployment(v, cfg, suspend).into(),
        Child::ShardsJob => jobs::shards_job(v, cfg, suspend).into(),
        Child::MergeJob => jobs::merge_job(v, cfg, suspend).into(),
    })
}

/// Labels of child `c` of `v` (and of its pods).
pub fn labels(v: &ValidatedJob, c: Child) -> BTreeMap<String, String> {
    BTreeMap::from([
        (JOB_LABEL.to_string(), v.name.clone()),
        ("app.kubernetes.io/name".to_string(), "labeljob".to_string()),
        ("app.kubernetes.io/component".to_string(), c.component().to_string()),
        ("app.kubernetes.io/managed-by".to_string(), crate::FIELD_MANAGER.to_string()),
    ])
}

/// Labels of child `c` of `v` with the LabelJob's Kueue labels.
pub fn labels_with_kueue(v: &ValidatedJob, c: Child) -> BTreeMap<String, String> {
    let mut l = labels(v, c);
    l.extend(v.kueue_labels.iter().map(|(k, val)| (k.clone(), val.clone())));
    l
}

/// Metadata of child `c`: name, namespace, labels (with Kueue's), controller owner reference.
pub fn meta(v: &ValidatedJob, c: Child) -> ObjectMeta {
    ObjectMeta {
        name: Some(c.name(&v.name)),
        namespace: Some(v.namespace.clone()),
        labels: Some(labels_with_kueue(v, c)),
        owner_references: Some(vec![v.owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// The LabelJob document workers read: apiVersion, kind, name, namespace and spec.
pub fn job_file(v: &ValidatedJob) -> Result<String, BuildError> {
    let mut doc = LabelJob::new(&v.name, v.spec.clone());
    doc.metadata.namespace = Some(v.namespace.clone());
    serde_yaml::to_string(&doc).map_err(BuildError::JobFile)
}

fn config_map(v: &ValidatedJob) -> Result<ConfigMap, BuildError> {
    Ok(ConfigMap {
        metadata: meta(v, Child::ConfigMap),
        data: Some(BTreeMap::from([("job.yaml".to_string(), job_file(v)?)])),
        ..ConfigMap::default()
    })
}

/// `envFrom` of the credentials Secrets (input, then output when different).
pub fn credentials_env(v: &ValidatedJob) -> Option<Vec<EnvFromSource>> {
    let mut names: Vec<&str> = Vec::new();
    for c in [&v.spec.input.credentials, &v.spec.output.credentials].into_iter().flatten() {
        if !names.contains(&c.secret_name.as_str()) {
            names.push(&c.secret_name);
        }
    }
    let env: Vec<EnvFromSource> = names
        .into_iter()
        .map(|name| EnvFromSource {
            secret_ref: Some(SecretEnvSource { name: name.to_string(), optional: Some(false) }),
            ..EnvFromSource::default()
        })
        .collect();
    (!env.is_empty()).then_some(env)
}

/// A `labeljob` container running `args`, non-root, read-only root, /tmp writable.
pub fn container(name: &str, cfg: &OperatorConfig, args: Vec<String>, with_job_file: bool) -> Container {
    let mut mounts =
        vec![VolumeMount { name: "tmp".into(), mount_path: "/tmp".into(), ..VolumeMount::default() }];
    if with_job_file {
        mounts.push(VolumeMount {
            name: "job".into(),
            mount_path: "/etc/labeljob".into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    Container {
        name: name.into(),
        image: Some(cfg.worker_image.clone()),
        image_pull_policy: cfg.image_pull_policy.clone(),
        command: Some(vec!["labeljob".into()]),
        args: Some(args),
        volume_mounts: Some(mounts),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Capabilities::default() }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// A pod spec around `container`: worker ServiceAccount without token, non-root, volumes.
pub fn pod_spec(v: &ValidatedJob, cfg: &OperatorConfig, container: Container, restart: &str) -> PodSpec {
    let mut volumes = vec![Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }];
    let mounts_job = container.volume_mounts.iter().flatten().any(|m| m.name == "job");
    if mounts_job {
        volumes.push(Volume {
            name: "job".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: Child::ConfigMap.name(&v.name),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    PodSpec {
        containers: vec![container],
        restart_policy: Some(restart.into()),
        service_account_name: Some(cfg.service_account.clone()),
        automount_service_account_token: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(POD_UID),
            run_as_group: Some(POD_UID),
            fs_group: Some(POD_UID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        volumes: Some(volumes),
        ..PodSpec::default()
    }
}

/// The URL shards call: the external endpoint, or the inference Service's cluster DNS name.
pub fn inference_endpoint(v: &ValidatedJob) -> String {
    match &v.spec.inference.endpoint {
        Some(ep) => ep.clone(),
        None => {
            format!("http://{}.{}.svc:{INFERENCE_PORT}", Child::Service.name(&v.name), v.namespace)
        }
    }
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
