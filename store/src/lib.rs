//! LabelJob storage: where images come from and where results go.
//!
//! - [`Location`]: one prefix in object storage (`file://`, `s3://`, `gs://`, `az://`) with
//!   atomic `put`, race-free `put_if_absent`, multipart `put_file`, sorted `list`.
//! - [`cloud`]: the cloud clients' configuration (variables, endpoints) and which credentials
//!   they use.
//! - [`InputSource`]: the input side of a LabelJob — a store prefix or an `http(s)://` URL
//!   list — listed with the job's globs into [`ManifestEntry`]s and fetched with retries.
//! - [`manifest`]: the frozen input listing (`manifest.jsonl`) and contiguous shard ranges.
//! - [`localdir`]: listing `file://` inputs, where an odd entry is one failed image.
//! - [`layout`]: the object keys of the output prefix.
//! - [`exit`]: the worker's exit codes, which the operator's Jobs match and read back.
//! - [`progress`]: per-shard progress objects, written by workers and read by the operator.
//! - [`readbuf`]: reused buffers for image bodies (fewer fresh pages per read).
//! - [`plan()`]: freeze the input listing once per output prefix.
//! - [`redact`]: [`redact_uri`], the one credential redaction used wherever a URI is written
//!   or logged.
//! - [`netguard`]: which addresses URL-list downloads may reach (no internal ones by default).
//! - [`uri`]: object URIs with their path percent-escaped, as every output writes them.
//!
//! All fallible functions return [`StoreError`].

pub mod cloud;
pub mod exit;
pub mod input;
pub mod layout;
pub mod localdir;
pub mod location;
pub mod manifest;
pub mod netguard;
pub mod plan;
pub mod progress;
pub mod readbuf;
pub mod redact;
pub mod report;
pub mod retry;
pub mod uri;

pub use input::InputSource;
pub use location::{Location, ObjectInfo, StoreOptions};
pub use manifest::{ListingProblem, Manifest, ManifestEntry, shard_range};
pub use netguard::NetworkPolicy;
pub use plan::{PlanInfo, plan, read_plan_info};
pub use progress::{ShardProgress, read_progress, write_progress};
pub use redact::redact_uri;
pub use report::{ReportImages, read_report_images};
pub use retry::{Backoff, RetryPolicy};

/// Install the `ring` rustls crypto provider for this process (reqwest is built with
/// `rustls-no-provider`). Idempotent: a provider installed earlier, by this function or
/// anyone else, is kept.
pub fn init_crypto() {
    // Err means a provider is already installed, which is what we want.
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URI is not one of the supported forms.
    #[error("invalid storage URI {uri:?}: {reason}")]
    InvalidUri {
        /// The URI as given.
        uri: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The URI could not be parsed as a URL.
    #[error("invalid URL {uri:?}")]
    Url {
        /// The URI as given.
        uri: String,
        /// The parser's error.
        #[source]
        source: url::ParseError,
    },
    /// A key (relative path) is not a valid object path (empty segment, `.` or `..`, …).
    #[error("invalid object key {key:?}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// Why object_store refused it.
        #[source]
        source: object_store::path::Error,
    },
    /// Building the object store client for a URI failed (missing bucket, bad config,
    /// unreadable credentials).
    #[error("cannot configure object store for {uri} (credentials: {credentials})")]
    Configure {
        /// The location's URI.
        uri: String,
        /// Which credentials were configured, and where from (names, never values).
        credentials: String,
        /// The builder's error.
        #[source]
        source: object_store::Error,
    },
    /// The object (or the HTTP resource) does not exist.
    #[error("not found: {uri}")]
    NotFound {
        /// Full URI of the missing object.
        uri: String,
    },
    /// The store refused a request (HTTP 401/403): wrong, expired or insufficient credentials.
    #[error("{op} {uri}: the store refused the credentials ({credentials})")]
    Denied {
        /// The operation (`get`, `put`, `list`, …).
        op: &'static str,
        /// Full URI of the object or prefix.
        uri: String,
        /// Which credentials were used, and where from (names, never values).
        credentials: String,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },
    /// An object store operation failed.
    #[error("{op} {uri} failed")]
    ObjectStore {
        /// The operation (`get`, `put`, `list`, …).
        op: &'static str,
        /// Full URI of the object or prefix.
        uri: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// A local file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The local path.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot build HTTP client")]
    HttpClient(#[source] reqwest::Error),
    /// An HTTP request failed (connect, timeout, body).
    #[error("GET {url} failed")]
    Http {
        /// The URL (redacted).
        url: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// A download was refused: its address (resolved, or of a redirect hop) is private,
    /// loopback, link-local or metadata and the job does not allow private networks.
    #[error("GET {url} refused")]
    Forbidden {
        /// The URL (redacted).
        url: String,
        /// Which address or redirect was refused.
        #[source]
        source: netguard::GuardError,
    },
    /// An image of the frozen manifest is no longer in the URL list it was planned from.
    #[error("{uri} is no longer listed in {list}")]
    NotListed {
        /// The image's URI (redacted).
        uri: String,
        /// The URL list's URL (redacted).
        list: String,
    },
    /// A `file://` input entry is a symbolic link that leads outside the input prefix.
    #[error("{path} leads outside the input directory {dir} (symbolic link)")]
    OutsideInput {
        /// The entry's path in the input directory.
        path: std::path::PathBuf,
        /// The input directory.
        dir: std::path::PathBuf,
    },
    /// An object, file or download is larger than the limit: refused from its size (object
    /// metadata, file size, `Content-Length`) before its bytes are read, or, when no size
    /// was declared, as soon as more than the limit arrived.
    #[error(
        "{uri}: {} exceeds the limit of {limit} bytes",
        size.map_or_else(|| "the body".to_string(), |s| format!("{s} bytes"))
    )]
    TooLarge {
        /// Full URI of the object or the URL (redacted).
        uri: String,
        /// Its size, when declared.
        size: Option<u64>,
        /// The limit.
        limit: u64,
    },
    /// A download did not finish within its deadline (`input.timeouts.deadlineSeconds`),
    /// retries included.
    #[error(
        "{uri}: not downloaded within the deadline of {seconds} s (input.timeouts.deadlineSeconds), retries included"
    )]
    Deadline {
        /// The image's URI (redacted).
        uri: String,
        /// The deadline.
        seconds: u64,
    },
    /// An HTTP request returned an unexpected status.
    #[error("GET {url}: HTTP {status}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// A line of a URL list is not a usable http(s) URL.
    #[error("{list}: line {line}: invalid image URL {text:?}")]
    UrlListLine {
        /// The URL list's URL.
        list: String,
        /// 1-based line number.
        line: usize,
        /// The line's text.
        text: String,
        /// The parser's error, when it was a parse error (not a wrong scheme).
        #[source]
        source: Option<url::ParseError>,
    },
    /// An include or exclude glob is invalid.
    #[error("invalid glob {pattern:?}")]
    Glob {
        /// The pattern.
        pattern: String,
        /// globset's error.
        #[source]
        source: globset::Error,
    },
    /// A line of `manifest.jsonl` is not a valid entry.
    #[error("manifest line {line}: {problem}")]
    ManifestLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: &'static str,
        /// The JSON error, when the line did not parse.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// A JSON object in the store could not be parsed or written.
    #[error("invalid JSON in {uri}")]
    Json {
        /// Full URI of the object.
        uri: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// A small control object (report, lock) is larger than the reader accepts.
    #[error("{uri} is {size} bytes, more than the {limit} bytes this reader accepts")]
    ObjectTooLarge {
        /// Full URI of the object.
        uri: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

impl StoreError {
    /// Whether this error means the object or resource does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. } | StoreError::NotListed { .. })
    }
}

/// Result alias of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
