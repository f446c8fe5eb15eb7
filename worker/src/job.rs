//! A LabelJob made ready to run: the document parsed and validated (refused before anything is
//! created), the model resolved, the input and output stores opened, and the settings digest
//! that decides whether an existing shard can be reused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use labeljob_api::v1alpha1::{LabelJob, OverwritePolicy};
use labeljob_api::{DocumentError, SpecErrors, parse_labeljob, validate_spec};
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
    #[error("{path}: {source}")]
    Document {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: DocumentError,
    },
    /// The spec breaks a rule.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every broken rule.
        #[source]
        source: SpecErrors,
    },
    /// The model cannot be used.
    #[error(transparent)]
    Model(#[from] ModelConfigError),
    /// A class in postprocess.classFilter is not one of the model's.
    #[error("spec.postprocess.classFilter: {0:?} is not a class of this model")]
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
}

impl JobContext {
    /// Read, validate and resolve a job file. Nothing is written.
    pub async fn load(path: &Path) -> Result<Arc<Self>, JobError> {
        let text = std::fs::read_to_string(path).map_err(|source| JobError::Read { path: path.into(), source })?;
        let job = parse_labeljob(&text).map_err(|source| JobError::Document { path: path.into(), source })?;
        validate_spec(&job.spec).map_err(|source| JobError::Invalid { path: path.into(), source })?;
        Self::from_job(job).await
    }

    /// Resolve an already-parsed, valid job.
    pub async fn from_job(job: LabelJob) -> Result<Arc<Self>, JobError> {
        labeljob_store::init_crypto();
        let spec = &job.spec;
        let fetched = match &spec.model.uri {
            Some(uri) if local_model_path(uri).is_none() => Some(fetch_model(uri).await?),
            _ => None,
        };
        let model = ModelConfig::resolve(&spec.model, fetched.as_deref())?;
        let classes = if spec.postprocess.class_filter.is_empty() {
            None
        } else {
            let ids = model.classes.ids_of(&spec.postprocess.class_filter).map_err(|n| JobError::UnknownClass(n.into()))?;
            Some(
                (0..model.classes.num_indices() as u32)
                    .filter(|i| model.classes.category(*i).is_some_and(|c| ids.contains(&c.id)))
                    .collect(),
            )
        };
        let filter = Filter {
            score_threshold: spec.postprocess.score_threshold,
            iou_threshold: spec.postprocess.iou_threshold,
            max_detections: spec.postprocess.max_detections as usize,
            classes,
        };
        let settings_digest = model.settings_digest(&spec.postprocess);
        let input_digest = hex::encode(Sha256::digest(serde_json::to_vec(&spec.input).unwrap_or_default()));
        let input = InputSource::new(&spec.input)?;
        let output = Location::parse(&spec.output.uri)?;
        Ok(Arc::new(Self { job, model, input, output, filter, settings_digest, input_digest }))
    }

    /// Overwrite policy of the output.
    pub fn overwrite(&self) -> OverwritePolicy {
        self.job.spec.output.overwrite
    }

    /// Number of shards.
    pub fn shards(&self) -> u32 {
        self.job.spec.workers.shards
    }

    /// The job's name (metadata.name, or `labeljob`).
    pub fn name(&self) -> &str {
        self.job.metadata.name.as_deref().unwrap_or("labeljob")
    }
}

/// Download a remote model once into `$LABELJOB_CACHE_DIR` (default `.cache/models`), named by
/// the sha256 of its URI.
async fn fetch_model(uri: &str) -> Result<PathBuf, JobError> {
    let dir = std::env::var_os("LABELJOB_CACHE_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".cache/models"));
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
