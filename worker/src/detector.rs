//! The `Detector` seam between the shard pipeline and inference: the in-process engine, or a
//! remote Open Inference Protocol v2 server. Both take one resized RGB u8 image (model input
//! size) and return detections in model-input pixels; the engine also takes an image still to
//! be decoded, and decodes it on the thread that runs the model.

use async_trait::async_trait;

use crate::model::{Engine, InferError, RawDetection};

/// Why a detection call failed.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// In-process inference failed.
    #[error(transparent)]
    Engine(#[from] InferError),
    /// The remote server failed after retries.
    #[error("inference server: {0}")]
    Remote(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The answer for this image is malformed (a count beyond the tensor, a negative class,
    /// a box that is not finite, tensors that do not match): an error of this image, not
    /// detections, and not a reason to stop the others.
    #[error("malformed inference answer")]
    Malformed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl DetectError {
    /// Whether only this image failed (the shard goes on) rather than inference itself.
    pub fn is_per_image(&self) -> bool {
        matches!(
            self,
            DetectError::Malformed(_)
                | DetectError::Engine(InferError::BadOutput(_) | InferError::Unprepared)
        )
    }
}

/// Something that detects objects in model-sized images.
#[async_trait]
pub trait Detector: Send + Sync {
    /// Detect on one `width×height×3` RGB image.
    async fn detect(&self, image: Vec<u8>) -> Result<Vec<RawDetection>, DetectError>;

    /// The in-process engine, when this is one: the shard then hands it undecoded images, to
    /// decode on the inference threads ([`Engine::prepare_and_detect`]).
    fn engine(&self) -> Option<&Engine> {
        None
    }
}

#[async_trait]
impl Detector for Engine {
    async fn detect(&self, image: Vec<u8>) -> Result<Vec<RawDetection>, DetectError> {
        Ok(Engine::detect(self, image).await?)
    }

    fn engine(&self) -> Option<&Engine> {
        Some(self)
    }
}
