//! What one client can make `labeljob serve` hold, and for how long. Request memory is a byte
//! budget (`--max-buffered-bytes`): an infer request reserves twice its declared body before
//! a byte of the body is read (the body itself, then the images made from it: binary data is
//! copied once, JSON `data` takes at most half its text, see `json_data`), and gets 429 when
//! the budget cannot cover it. A `Content-Length` over `--max-body-bytes` is refused with 413
//! from the headers alone; a body must arrive within `--body-timeout-seconds` (408 after).
//! Connections are bounded by `conn` (header timeout, connection cap).
//!
//! So at most `--max-buffered-bytes` of request data is held at once, plus the engine's
//! queue (`--queue-capacity` images of the model's input size) and hyper's read buffer per
//! open connection ([`MAX_HEADER_BYTES`] × `--max-connections`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// Largest request head (request line and headers), and so the largest read buffer a
/// connection keeps (hyper's minimum is 8 KiB).
pub const MAX_HEADER_BYTES: usize = 64 << 10;

/// Smallest reservation of one infer request, so that the budget also bounds their number.
pub const MIN_RESERVATION_BYTES: usize = 64 << 10;

/// Limits on what clients can make the server hold.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body (413 above).
    pub max_body_bytes: usize,
    /// Request bodies and the tensors made from them, held at once (429 beyond).
    pub max_buffered_bytes: usize,
    /// Longest time from accepting a connection, or answering its last request, until the
    /// next request's headers are complete (then the connection is closed).
    pub header_timeout: Duration,
    /// Longest time a request body may take to arrive (408 after).
    pub body_timeout: Duration,
    /// Open connections at most; beyond, the longest-idle one is closed to admit a new one.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 << 20,
            max_buffered_bytes: 512 << 20,
            header_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

impl Limits {
    /// Why these limits cannot serve a request of the largest allowed size, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        let need = reservation(self.max_body_bytes);
        if need > self.max_buffered_bytes {
            return Err(format!(
                "--max-buffered-bytes {} cannot hold one request of --max-body-bytes {} (needs {need})",
                self.max_buffered_bytes, self.max_body_bytes
            ));
        }
        if self.max_connections == 0 {
            return Err("--max-connections must be at least 1".into());
        }
        Ok(())
    }
}

/// Bytes an infer request with a body of `body` bytes reserves.
pub fn reservation(body: usize) -> usize {
    body.saturating_mul(2).max(MIN_RESERVATION_BYTES)
}

/// The request-memory budget, counted in KiB.
#[derive(Debug, Clone)]
pub struct Budget {
    kib: Arc<Semaphore>,
    total: usize,
}

impl Budget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Self {
        let kib = (bytes / 1024).min(Semaphore::MAX_PERMITS);
        Self { kib: Arc::new(Semaphore::new(kib)), total: kib * 1024 }
    }

    /// Reserve room for a body of `body` bytes, or fail at once with `Busy` (429).
    pub fn try_reserve(&self, body: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        let need = reservation(body);
        let busy = || ApiError::Busy { needed: need, budget: self.total };
        let kib = u32::try_from(need.div_ceil(1024)).map_err(|_| busy())?;
        self.kib.clone().try_acquire_many_owned(kib).map_err(|_| busy())
    }
}

/// The declared body length: `None` without `Content-Length` (chunked), 413 above `limit`,
/// 400 when it is not a number.
pub fn content_length(headers: &HeaderMap, limit: usize) -> Result<Option<usize>, ApiError> {
    let Some(v) = headers.get(header::CONTENT_LENGTH) else { return Ok(None) };
    let text = v.to_str().map_err(|_| ApiError::ContentLength)?;
    let n: u64 = text.trim().parse().map_err(|_| ApiError::ContentLength)?;
    match usize::try_from(n) {
        Ok(n) if n <= limit => Ok(Some(n)),
        _ => Err(ApiError::PayloadTooLarge { limit }),
    }
}

/// Most bytes read and dropped after an early refusal (see [`linger`]).
pub const LINGER_BYTES: usize = 64 << 20;
/// A refused client that sends nothing for this long is closed on.
pub const LINGER_IDLE: Duration = Duration::from_secs(1);

/// After refusing a request from its headers alone (413 on `Content-Length`), read and drop
/// what the client is still sending — at most [`LINGER_BYTES`], within `timeout`, until it
/// pauses for [`LINGER_IDLE`] — so that a client still writing its body reads the refusal
/// instead of a broken pipe (a lingering close, as HTTP servers do). Nothing is kept: memory
/// stays one chunk. A client that sends nothing (a 2 GB `Content-Length` never sent) is closed
/// on after [`LINGER_IDLE`].
pub fn linger(body: Body, timeout: Duration) {
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        let mut left = LINGER_BYTES;
        let drain = async {
            while let Ok(Some(Ok(chunk))) = tokio::time::timeout(LINGER_IDLE, stream.next()).await {
                left = left.saturating_sub(chunk.len());
                if left == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, drain).await;
    });
}

/// Read a body of at most `limit` bytes (`declared` from `Content-Length`, if any) within
/// `timeout`, into one buffer allocated once for a declared length.
pub async fn read_body(
    body: Body,
    declared: Option<usize>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let read = async {
        let mut buf = Vec::with_capacity(declared.unwrap_or(0));
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(ApiError::Body)?;
            if buf.len().saturating_add(chunk.len()) > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(buf))
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| ApiError::BodyTimeout { seconds: timeout.as_secs_f64() })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn content_length_is_checked_before_the_body() {
        let mut h = HeaderMap::new();
        assert!(matches!(content_length(&h, 10), Ok(None)));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        assert!(matches!(content_length(&h, 10), Ok(Some(10))));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("2000000000"));
        assert!(matches!(content_length(&h, 10), Err(ApiError::PayloadTooLarge { limit: 10 })));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("99999999999999999999999"));
        assert!(matches!(content_length(&h, 10), Err(ApiError::ContentLength)));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("-1"));
        assert!(matches!(content_length(&h, 10), Err(ApiError::ContentLength)));
    }

    #[test]
    fn the_budget_refuses_what_it_cannot_cover_and_frees_on_drop() {
        let budget = Budget::new(1 << 20);
        let a = budget.try_reserve(256 << 10).expect("512 KiB of 1 MiB");
        let b = budget.try_reserve(200 << 10).expect("400 KiB more");
        let err = budget.try_reserve(100 << 10).expect_err("200 KiB do not fit in 112");
        assert!(matches!(err, ApiError::Busy { needed: 204_800, budget: 1_048_576 }), "{err}");
        // Tiny requests still reserve the floor.
        assert_eq!(reservation(0), MIN_RESERVATION_BYTES);
        assert!(budget.try_reserve(usize::MAX).is_err(), "no overflow");
        drop((a, b));
        let _again = budget.try_reserve(512 << 10).expect("freed");
    }

    #[test]
    fn limits_must_admit_one_largest_request() {
        assert!(Limits::default().check().is_ok());
        let l = Limits { max_body_bytes: 32 << 20, max_buffered_bytes: 32 << 20, ..Limits::default() };
        assert!(l.check().expect_err("too small").contains("--max-buffered-bytes"));
    }

    #[tokio::test]
    async fn bodies_are_capped_and_timed() {
        let ok = read_body(Body::from("abc"), Some(3), 3, Duration::from_secs(1)).await.expect("read");
        assert_eq!(&ok[..], b"abc");
        let err = read_body(Body::from("abcd"), None, 3, Duration::from_secs(1)).await.expect_err("big");
        assert!(matches!(err, ApiError::PayloadTooLarge { limit: 3 }));
        let never = Body::from_stream(futures::stream::pending::<Result<Bytes, std::io::Error>>());
        let err = read_body(never, Some(3), 3, Duration::from_millis(50)).await.expect_err("slow");
        assert!(matches!(err, ApiError::BodyTimeout { .. }), "{err}");
    }
}
