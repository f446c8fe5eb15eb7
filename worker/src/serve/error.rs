//! Errors of `labeljob serve`: `ServeError` for start-up (bind, model, session, warm-up) and
//! `ApiError`, one enum for every request failure, mapped to an HTTP status code and the Open
//! Inference Protocol error body `{"error": "..."}` (TEI's ErrorType → StatusCode pattern).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::model::InferError;
use crate::model::config::ModelConfigError;
use crate::model::session::SessionError;
use crate::oip::protocol::ProtocolError;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}")]
    Bind {
        /// Address.
        addr: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// `--model` is not usable.
    #[error(transparent)]
    Model(#[from] ModelConfigError),
    /// `--format`/`--input-size` are required for a model file.
    #[error("--model {0}: a model file needs --format and --input-size")]
    ModelSettings(String),
    /// Limits that cannot serve a request of the largest allowed size.
    #[error("{0}")]
    Limits(String),
    /// The session could not be built (bad model, no ORT library, no CUDA).
    #[error("loading the model: {0}")]
    Session(#[source] SessionError),
    /// The warm-up inference failed.
    #[error("warm-up inference failed")]
    Warmup(#[source] InferError),
    /// The loader thread panicked.
    #[error("the model loader stopped unexpectedly")]
    Loader(#[source] tokio::task::JoinError),
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No such model on this server.
    #[error("unknown model {name:?} (this server has {served:?})")]
    ModelNotFound {
        /// Asked for.
        name: String,
        /// Served.
        served: String,
    },
    /// No such model version.
    #[error("model {name:?} has no version {version:?} (it has \"1\")")]
    VersionNotFound {
        /// Model.
        name: String,
        /// Asked for.
        version: String,
    },
    /// The model is still loading.
    #[error("model {0:?} is not ready yet")]
    NotReady(String),
    /// The request is malformed.
    #[error(transparent)]
    BadRequest(#[from] ProtocolError),
    /// The body is over `--max-body-bytes`.
    #[error("request body is larger than the limit of {limit} bytes (--max-body-bytes)")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// `Content-Length` is not a byte count.
    #[error("Content-Length is not a byte count")]
    ContentLength,
    /// The body could not be read.
    #[error("cannot read the request body")]
    Body(#[source] axum::Error),
    /// The body did not arrive in time.
    #[error("the request body did not arrive within {seconds} s (--body-timeout-seconds)")]
    BodyTimeout {
        /// The limit.
        seconds: f64,
    },
    /// The request-memory budget cannot cover this request now.
    #[error(
        "the server is busy: this request needs {needed} bytes of its {budget}-byte request budget (--max-buffered-bytes), retry later"
    )]
    Busy {
        /// Bytes this request reserves.
        needed: usize,
        /// The whole budget.
        budget: usize,
    },
    /// Inference failed.
    #[error(transparent)]
    Infer(#[from] InferError),
    /// A parsing task stopped unexpectedly.
    #[error("request parsing stopped unexpectedly")]
    Join(#[source] tokio::task::JoinError),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::ModelNotFound { .. } | Self::VersionNotFound { .. } => StatusCode::NOT_FOUND,
            Self::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadRequest(_) | Self::Body(_) | Self::ContentLength => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Infer(InferError::Overloaded(_)) => StatusCode::TOO_MANY_REQUESTS,
            // The server sends pixels, never images to prepare: `Unprepared` is the client's.
            Self::Infer(InferError::BadInput { .. } | InferError::Unprepared) => StatusCode::BAD_REQUEST,
            Self::Infer(InferError::Stopped) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Infer(InferError::Model(_) | InferError::BadOutput(_)) | Self::Join(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

/// Seconds a client should wait after a 429 or 503.
pub const RETRY_AFTER_SECONDS: u64 = 1;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        let mut resp = (status, Json(serde_json::json!({ "error": self.to_string() }))).into_response();
        if matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_protocol() {
        let cases = [
            (ApiError::ModelNotFound { name: "x".into(), served: "y".into() }, 404),
            (ApiError::PayloadTooLarge { limit: 1 }, 413),
            (ApiError::Infer(InferError::Overloaded(4)), 429),
            (ApiError::NotReady("m".into()), 503),
            (ApiError::Busy { needed: 2, budget: 1 }, 429),
            (ApiError::BodyTimeout { seconds: 1.0 }, 408),
            (ApiError::ContentLength, 400),
        ];
        for (err, code) in cases {
            let resp = err.into_response();
            assert_eq!(resp.status().as_u16(), code);
            assert_eq!(resp.headers().contains_key(header::RETRY_AFTER), code == 429 || code == 503);
        }
    }
}
