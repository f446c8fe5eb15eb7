//! A LabelJob made ready to run: the document parsed and validated (refused before anything is
//! created), the model resolved, the input and output stores opened, and the settings digest
//! that decides whether an existing shard can be reused.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use labeljob_api::v1alpha1::{LabelJob, OverwritePolicy, PostprocessSpec};
use labeljob_api::{DocumentError, Resolved, SpecErrors, parse_labeljob, resolve};
use labeljob_store::{InputSource, Location, StoreError};
use sha2::{Digest, Sha256};

use crate::model::config::{ModelConfig, ModelConfigError, local_model_path};
use crate::model::decode::Filter;

/// Why a job cannot start.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Not a LabelJob.
    #[error("{}", path.display())]
    Document {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: DocumentError,
    },
    /// The spec breaks a rule.
    #[error("{}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every broken rule.
        #[source]
        source: SpecErrors,
    },
    /// The spec of a job built in code breaks a rule.
    #[error(transparent)]
    Spec(#[from] SpecErrors),
    /// The model cannot be used.
    #[error(transparent)]
    Model(#[from] ModelConfigError),
    /// A class named in postprocess (classFilter, classThresholds, classMap) is not the model's.
    #[error("spec.postprocess: {0:?} is not a class of this model")]
    UnknownClass(String),
    /// A store could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the downloaded model failed.
    #[error("cannot cache the model in {path}")]
    Cache {
        /// Where.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Everything the stages share.
#[derive(Debug)]
pub struct JobContext {
    /// The LabelJob as written.
    pub job: LabelJob,
    /// Its settings with every default filled in, as the operator builds from them.
    pub settings: Resolved,
    /// The model.
    pub model: ModelConfig,
    /// Where images come from.
    pub input: InputSource,
    /// Where results go.
    pub output: Location,
    /// Decoding filter (score, NMS IoU, max detections, class indices).
    pub filter: Filter,
    /// Digest of the model and every setting that changes results.
    pub settings_digest: String,
    /// Digest of the input spec (a changed input means a new plan).
    pub input_digest: String,
    /// Images in the frozen manifest, once planned ([`NOT_PLANNED`] before).
    planned_images: AtomicU64,
}

/// [`JobContext`]'s image count before planning.
const NOT_PLANNED: u64 = u64::MAX;

/// The shards a job of `images` images runs when `requested` are asked for: never more than
/// the images (a shard without images would only cost a pod, a shard file and a merge step),
/// at least one.
pub fn effective_shards(requested: u32, images: u64) -> u32 {
    u32::try_from(images).unwrap_or(u32::MAX).clamp(1, requested.max(1))
}

impl JobContext {
    /// Read, validate and resolve a job file. Nothing is written.
    pub async fn load(path: &Path) -> Result<Arc<Self>, JobError> {
        let text = read_capped(path).map_err(|source| JobError::Read { path: path.into(), source })?;
        let mut job =
            parse_labeljob(&text).map_err(|source| JobError::Document { path: path.into(), source })?;
        let settings =
            resolve(&job.spec).map_err(|source| JobError::Invalid { path: path.into(), source })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let spec = &mut job.spec;
        for uri in [&mut spec.input.uri, &mut spec.output.uri].into_iter().chain(spec.model.uri.as_mut()) {
            *uri = resolve_relative_file_uri(uri, base);
        }
        Self::with_settings(job, settings).await
    }

    /// Check and resolve an already-parsed job.
    pub async fn from_job(job: LabelJob) -> Result<Arc<Self>, JobError> {
        let settings = resolve(&job.spec)?;
        Self::with_settings(job, settings).await
    }

    /// Open a checked job with its resolved `settings`.
    async fn with_settings(job: LabelJob, settings: Resolved) -> Result<Arc<Self>, JobError> {
        labeljob_store::init_crypto();
        let spec = &job.spec;
        let fetched = match &spec.model.uri {
            Some(uri) if local_model_path(uri).is_none() => Some(fetch_model(uri).await?),
            _ => None,
        };
        let mut model = ModelConfig::resolve(&spec.model, fetched.as_deref())?;
        let filter = class_filter(&model, &spec.postprocess)?;
        model.classes = model.classes.remapped(&spec.postprocess.class_map);
        let settings_digest = model.settings_digest(&(&spec.postprocess, &spec.input.dedup));
        let input_digest = hex::encode(Sha256::digest(serde_json::to_vec(&spec.input).unwrap_or_default()));
        let input = InputSource::new(&spec.input)?;
        let output = Location::parse(&spec.output.uri)?;
        Ok(Arc::new(Self {
            job,
            settings,
            model,
            input,
            output,
            filter,
            settings_digest,
            input_digest,
            planned_images: AtomicU64::new(NOT_PLANNED),
        }))
    }

    /// Overwrite policy of the output.
    pub fn overwrite(&self) -> OverwritePolicy {
        self.job.spec.output.overwrite
    }

    /// Number of shards the job runs: `workers.shards`, cut to the number of images once the
    /// input is planned ([`effective_shards`]). Every stage plans before it uses this, so all
    /// agree on it.
    pub fn shards(&self) -> u32 {
        match self.planned_images.load(Ordering::Relaxed) {
            NOT_PLANNED => self.requested_shards(),
            images => effective_shards(self.requested_shards(), images),
        }
    }

    /// `workers.shards` as written.
    pub fn requested_shards(&self) -> u32 {
        self.job.spec.workers.shards
    }

    /// Record the size of the frozen manifest (called by [`crate::stages::plan`]).
    pub fn set_planned_images(&self, images: u64) {
        self.planned_images.store(images.min(NOT_PLANNED - 1), Ordering::Relaxed);
    }

    /// The job's name (metadata.name, or `labeljob`).
    pub fn name(&self) -> &str {
        self.job.metadata.name.as_deref().unwrap_or("labeljob")
    }
}

/// The decoding filter of a job: thresholds per class index (the decoders cut at the lowest),
/// the class filter, agnostic NMS. Class names are the model's (before `classMap`).
fn class_filter(model: &ModelConfig, p: &PostprocessSpec) -> Result<Filter, JobError> {
    let classes = &model.classes;
    let known = |name: &String| {
        classes.indices_named(name).next().map(|_| ()).ok_or_else(|| JobError::UnknownClass(name.clone()))
    };
    for name in p.class_filter.iter().chain(p.class_thresholds.keys()).chain(p.class_map.keys()) {
        known(name)?;
    }
    let kept = (!p.class_filter.is_empty())
        .then(|| p.class_filter.iter().flat_map(|n| classes.indices_named(n)).collect::<Vec<u32>>());
    let class_thresholds: Vec<(u32, f32)> = p
        .class_thresholds
        .iter()
        .flat_map(|(name, t)| classes.indices_named(name).map(move |i| (i, *t)))
        .collect();
    let lowest = class_thresholds.iter().map(|(_, t)| *t).fold(p.score_threshold, f32::min);
    Ok(Filter {
        score_threshold: lowest,
        iou_threshold: p.iou_threshold,
        max_detections: p.max_detections as usize,
        classes: kept.map(|mut k| {
            k.sort_unstable();
            k
        }),
        class_thresholds: (0..classes.num_indices() as u32)
            .filter(|i| classes.category(*i).is_some())
            .map(|i| {
                (i, class_thresholds.iter().find(|(c, _)| *c == i).map_or(p.score_threshold, |(_, t)| *t))
            })
            .filter(|(_, t)| *t != lowest)
            .collect(),
        agnostic_nms: p.agnostic_nms,
    })
}

/// Download a remote model once into `$LABELJOB_CACHE_DIR` (default `.cache/models`), named by
/// the sha256 of its URI.
async fn fetch_model(uri: &str) -> Result<PathBuf, JobError> {
    let dir = std::env::var_os("LABELJOB_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".cache/models"));
    let path = dir.join(format!("{}.onnx", hex::encode(Sha256::digest(uri.as_bytes()))));
    if path.is_file() {
        return Ok(path);
    }
    let (parent, file) = uri.rsplit_once('/').unwrap_or(("", uri));
    let bytes = Location::parse(parent)?.get(file).await?;
    std::fs::create_dir_all(&dir).map_err(|source| JobError::Cache { path: dir.clone(), source })?;
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, &bytes).map_err(|source| JobError::Cache { path: tmp.clone(), source })?;
    std::fs::rename(&tmp, &path).map_err(|source| JobError::Cache { path: path.clone(), source })?;
    Ok(path)
}

/// The file's text, reading at most one byte more than a LabelJob may have (so that an
/// oversized file is refused by [`parse_labeljob`] without being read whole).
fn read_capped(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let cap = labeljob_api::MAX_DOCUMENT_BYTES as u64 + 1;
    let mut text = String::new();
    std::fs::File::open(path)?.take(cap).read_to_string(&mut text)?;
    Ok(text)
}

/// `file://relative/dir` in a job file means relative to the file's directory (so samples work
/// from any working directory); absolute `file:///…` URIs and other schemes are unchanged.
pub fn resolve_relative_file_uri(uri: &str, base: &Path) -> String {
    let Some(rest) = uri.strip_prefix("file://") else { return uri.to_string() };
    if rest.starts_with('/') {
        return uri.to_string();
    }
    let joined = std::path::absolute(base.join(rest)).unwrap_or_else(|_| base.join(rest));
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    format!("file://{}", out.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_file_uris_follow_the_job_file() {
        assert_eq!(resolve_relative_file_uri("file://../out", Path::new("/a/b")), "file:///a/out");
        assert_eq!(resolve_relative_file_uri("file:///abs", Path::new("/a/b")), "file:///abs");
        assert_eq!(resolve_relative_file_uri("s3://bucket/x", Path::new("/a")), "s3://bucket/x");
    }

    #[test]
    fn shards_never_exceed_the_images() {
        assert_eq!(effective_shards(10_000, 5), 5);
        assert_eq!(effective_shards(4, 13), 4);
        assert_eq!(effective_shards(3, 3), 3);
        assert_eq!(effective_shards(8, 0), 1, "an empty input still has one (empty) shard");
        assert_eq!(effective_shards(0, 7), 1);
        assert_eq!(effective_shards(u32::MAX, u64::MAX), u32::MAX);
    }

    #[tokio::test]
    async fn invalid_job_is_refused_before_anything_is_created() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("out");
        let file = dir.path().join("job.yaml");
        std::fs::write(
            &file,
            format!(
                "apiVersion: labeljob.dev/v1alpha1\nkind: LabelJob\nmetadata: {{name: x}}\nspec:\n  input: {{uri: 'file:///nowhere'}}\n  model: {{builtin: ssd-mobilenet-v2-coco}}\n  output: {{uri: 'file://{}'}}\n  workers: {{shards: 2, parallelism: 5}}\n",
                out.display()
            ),
        )
        .expect("write");
        let err = JobContext::load(&file).await.expect_err("invalid");
        let cause = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
        assert_eq!(err.to_string(), file.display().to_string(), "the message names the file");
        assert!(cause.contains("workers.parallelism"), "the cause names the field: {cause}");
        assert!(!out.exists(), "nothing may be created for an invalid job");
    }
}
