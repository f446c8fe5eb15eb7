//! [`Location`]: one prefix in object storage, addressed by relative keys.
//!
//! `file:///abs/dir`, `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`
//! (or `azure://`) parse into an object_store client plus a prefix. Cloud clients are configured
//! from the process environment (`AWS_*`: static keys, IRSA web identity, EKS Pod Identity,
//! IMDS; `GOOGLE_*`; `AZURE_*`) and/or explicit variables ([`StoreOptions`]), e.g. the keys of
//! a LabelJob's credentials Secret read by the operator; see [`crate::cloud`] for endpoints.
//! Request, connect and read timeouts and retries come from [`StoreOptions::retry`] unless
//! the environment sets `*_TIMEOUT` / `*_CONNECT_TIMEOUT` / `*_READ_TIMEOUT`.
//!
//! A request the store refuses (HTTP 401/403) or a client that cannot be configured is
//! reported with the URI and the credentials in use ([`credential_source`]: variable names
//! and where they came from, never their values).
//!
//! Writes are atomic (readers never see a partial object): object stores are atomic per
//! PUT, and `file://` (object_store's `LocalFileSystem`) writes a staging file and renames it.
//! [`Location::put_if_absent`] is `PutMode::Create`: `If-None-Match: *` on S3, a hard link
//! on `file://`; exactly one of concurrent writers wins.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ClientConfigKey, ObjectStore, ObjectStoreExt, PutMode, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use crate::cloud::{azure_builder, credential_source, gcs_builder, s3_builder};
use crate::{Result, RetryPolicy, StoreError, init_crypto};

/// Files at least this large go up as multipart uploads, in parts of this size.
pub const MULTIPART_PART_SIZE: usize = 10 * 1024 * 1024;
/// Parts of one multipart upload in flight at once.
const MULTIPART_CONCURRENCY: usize = 4;

/// How cloud clients are configured.
#[derive(Clone, Debug, Default)]
pub struct StoreOptions {
    /// Environment-style variables (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`, `GOOGLE_…`,
    /// `AZURE_…`) that take precedence over the process environment.
    pub vars: BTreeMap<String, String>,
    /// Ignore the process environment: configure from `vars` alone.
    pub ignore_process_env: bool,
    /// Retries of cloud requests.
    pub retry: RetryPolicy,
    /// Where `vars` came from, for error messages (e.g. `Secret ns/name`).
    pub origin: Option<String>,
}

impl StoreOptions {
    /// Options from these variables only (the process environment is not read).
    pub fn from_vars<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        Self {
            vars: vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            ignore_process_env: true,
            retry: RetryPolicy::default(),
            origin: None,
        }
    }

    /// The same options, saying in error messages that they came from `origin`.
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Where the configuration comes from, as error messages say it.
    pub(crate) fn origin(&self) -> String {
        match (&self.origin, self.ignore_process_env, self.vars.is_empty()) {
            (Some(origin), _, _) => origin.clone(),
            (None, true, _) => "the given variables".into(),
            (None, false, true) => "the environment".into(),
            (None, false, false) => "the given variables and the environment".into(),
        }
    }

    /// A variable from `vars`, else (unless ignored) from the process environment.
    pub(crate) fn lookup(&self, key: &str) -> Option<String> {
        self.vars.get(key).cloned().or_else(|| match self.ignore_process_env {
            true => None,
            false => std::env::var(key).ok(),
        })
    }

    /// Request, connect and read timeouts from the retry policy, for the client keys the
    /// environment (`{prefix}TIMEOUT`, `{prefix}CONNECT_TIMEOUT`, `{prefix}READ_TIMEOUT`)
    /// does not set.
    pub(crate) fn timeouts(&self, prefix: &str) -> Vec<(ClientConfigKey, String)> {
        let policy = &self.retry;
        [
            ("TIMEOUT", ClientConfigKey::Timeout, policy.request_timeout),
            ("CONNECT_TIMEOUT", ClientConfigKey::ConnectTimeout, policy.connect_timeout),
            ("READ_TIMEOUT", ClientConfigKey::ReadTimeout, policy.read_timeout),
        ]
        .into_iter()
        .filter(|(name, _, _)| self.lookup(&format!("{prefix}{name}")).is_none())
        .map(|(_, key, value)| (key, format!("{}ms", value.as_millis())))
        .collect()
    }

    /// The explicit variables whose name starts with `prefix`, lower-cased (object_store keys).
    pub(crate) fn vars_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (String, &'a str)> + 'a {
        self.vars
            .iter()
            .filter(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
    }
}

/// Metadata of one object, its key relative to the [`Location`] it was listed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Key relative to the location (`images/a.jpg`), `/`-separated.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The store's entity tag (opaque; S3 keeps its quotes).
    pub etag: Option<String>,
}

/// A prefix in object storage.
#[derive(Clone, Debug)]
pub struct Location {
    uri: String,
    /// `scheme://bucket` (`file://` for local directories): what object URIs start with.
    root: String,
    /// Which credentials the client uses ([`credential_source`]); empty for `file://`.
    credentials: Arc<str>,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    local_dir: Option<std::path::PathBuf>,
}

impl Location {
    /// Parse a location URI, configuring cloud clients from the process environment.
    pub fn parse(uri: &str) -> Result<Location> {
        Self::parse_with(uri, &StoreOptions::default())
    }

    /// Parse a location URI with explicit client options.
    pub fn parse_with(uri: &str, options: &StoreOptions) -> Result<Location> {
        let invalid = |reason| StoreError::InvalidUri { uri: uri.to_string(), reason };
        let (scheme, rest) = uri.split_once("://").ok_or_else(|| invalid("missing scheme://"))?;
        if scheme == "file" {
            return Self::parse_file(uri);
        }
        let rest = rest.trim_end_matches('/');
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("missing bucket or container name"));
        }
        let prefix = Path::parse(prefix)
            .map_err(|source| StoreError::InvalidKey { key: prefix.to_string(), source })?;
        init_crypto();
        let credentials = credential_source(scheme, options);
        let configure =
            |source| StoreError::Configure { uri: uri.to_string(), credentials: credentials.clone(), source };
        let store: Arc<dyn ObjectStore> = match scheme {
            "s3" | "s3a" => Arc::new(s3_builder(bucket, options).build().map_err(configure)?),
            "gs" => Arc::new(gcs_builder(bucket, options).build().map_err(configure)?),
            "az" | "azure" => Arc::new(azure_builder(bucket, options).build().map_err(configure)?),
            _ => return Err(invalid("scheme must be file, s3, gs, az or azure")),
        };
        let scheme = if scheme == "azure" { "az" } else { scheme };
        let uri = match prefix.as_ref() {
            "" => format!("{scheme}://{bucket}"),
            p => format!("{scheme}://{bucket}/{p}"),
        };
        let root = format!("{scheme}://{bucket}");
        Ok(Location { uri, root, credentials: credentials.into(), store, prefix, local_dir: None })
    }

    fn parse_file(uri: &str) -> Result<Location> {
        let invalid = |reason| StoreError::InvalidUri { uri: uri.to_string(), reason };
        let url = url::Url::parse(uri).map_err(|source| StoreError::Url { uri: uri.to_string(), source })?;
        let dir = url.to_file_path().map_err(|()| invalid("file:// needs an absolute local path"))?;
        let prefix = Path::from_absolute_path(&dir)
            .map_err(|source| StoreError::InvalidKey { key: dir.display().to_string(), source })?;
        if prefix.as_ref().is_empty() {
            return Err(invalid("the root directory cannot be a location"));
        }
        Ok(Location {
            uri: format!("file:///{}", prefix.as_ref()),
            root: "file://".into(),
            credentials: "".into(),
            store: Arc::new(LocalFileSystem::new()),
            prefix,
            local_dir: Some(dir),
        })
    }

    /// Which credentials the client uses and where they come from (names, never values).
    pub fn credentials(&self) -> &str {
        &self.credentials
    }

    /// The location's URI, normalised (no trailing `/`).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The full URI of `rel` under this location, its path percent-escaped
    /// ([`crate::uri`]): `s3://b/p/a%20b%23.jpg` for `a b#.jpg`.
    pub fn child_uri(&self, rel: &str) -> String {
        self.child_uri_of_bytes(rel.as_bytes())
    }

    /// [`Location::child_uri`] of a relative path of any bytes (a local file name that is
    /// not UTF-8 still gets its exact URI).
    pub fn child_uri_of_bytes(&self, rel: &[u8]) -> String {
        let rel = rel.strip_prefix(b"/").unwrap_or(rel);
        let mut path = self.prefix.as_ref().as_bytes().to_vec();
        if !path.is_empty() && !rel.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(rel);
        format!("{}/{}", self.root, crate::uri::escape_path(&path))
    }

    /// For `file://` locations, the local directory.
    pub fn local_dir(&self) -> Option<&std::path::Path> {
        self.local_dir.as_deref()
    }

    /// The underlying object_store client (paths from [`Location::object_path`]).
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The object_store path of `rel`; `..`, `.` and empty segments are refused.
    pub fn object_path(&self, rel: &str) -> Result<Path> {
        let rel = rel.trim_matches('/');
        let joined = match (self.prefix.as_ref(), rel) {
            (p, "") => p.to_string(),
            ("", r) => r.to_string(),
            (p, r) => format!("{p}/{r}"),
        };
        Path::parse(joined).map_err(|source| StoreError::InvalidKey { key: rel.to_string(), source })
    }

    /// The key of `path` relative to this location, if it lies under it.
    fn key_of(&self, path: &Path) -> Option<String> {
        let parts: Vec<_> = path.prefix_match(&self.prefix)?.collect();
        Some(parts.iter().map(|p| p.as_ref()).collect::<Vec<_>>().join("/"))
    }

    fn store_err(&self, op: &'static str, rel: &str, source: object_store::Error) -> StoreError {
        match source {
            object_store::Error::NotFound { .. } => StoreError::NotFound { uri: self.child_uri(rel) },
            source if is_refused(&source) => StoreError::Denied {
                op,
                uri: self.child_uri(rel),
                credentials: self.credentials.to_string(),
                source: Box::new(source),
            },
            source => StoreError::ObjectStore { op, uri: self.child_uri(rel), source },
        }
    }

    /// The bytes of `rel`; [`StoreError::NotFound`] when it does not exist.
    pub async fn get(&self, rel: &str) -> Result<Bytes> {
        let path = self.object_path(rel)?;
        let result = self.store.get(&path).await.map_err(|e| self.store_err("get", rel, e))?;
        result.bytes().await.map_err(|e| self.store_err("get", rel, e))
    }

    /// The bytes of `rel`, at most `max_bytes` of them: an object whose size (the store's
    /// metadata) is larger is [`StoreError::TooLarge`] before its body is read, and a body
    /// that grows past the limit while it streams in is cut off with the same error. Memory:
    /// the object, never more than the limit.
    pub async fn get_capped(&self, rel: &str, max_bytes: u64) -> Result<Bytes> {
        let path = self.object_path(rel)?;
        let result = self.store.get(&path).await.map_err(|e| self.store_err("get", rel, e))?;
        let too_large = |size| StoreError::TooLarge { uri: self.child_uri(rel), size, limit: max_bytes };
        if result.meta.size > max_bytes {
            return Err(too_large(Some(result.meta.size)));
        }
        // the size is within the limit, so within usize as well
        let mut buf = crate::readbuf::take(usize::try_from(result.meta.size).unwrap_or(0));
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.try_next().await.map_err(|e| self.store_err("get", rel, e))? {
            if (buf.len() as u64).saturating_add(chunk.len() as u64) > max_bytes {
                return Err(too_large(None));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(buf))
    }

    /// The bytes of `rel`, at most `max_bytes` ([`Location::get_capped`]), read only from
    /// inside the location: for `file://` locations, when `rel` is (or passes through) a
    /// symbolic link whose target lies outside the location's directory,
    /// [`StoreError::OutsideInput`] and nothing is read; a file larger than the limit is
    /// refused from its size, unread. Cloud stores have no links.
    pub async fn get_contained(&self, rel: &str, max_bytes: u64) -> Result<Bytes> {
        let Some(dir) = self.local_dir.as_deref() else {
            return self.get_capped(rel, max_bytes).await;
        };
        // the key must be a valid object path (no `.`, `..`, empty or control-character
        // segments); the file is the directory's own path joined with it (no URL round trip,
        // so no name object_store would refuse, such as `a#1`, is unreadable)
        self.object_path(rel)?;
        let file = dir.join(rel.trim_matches('/'));
        let (dir, uri, path) = (dir.to_path_buf(), self.child_uri(rel), file.clone());
        // One blocking task for the checks and the read (std::fs, straight into a buffer of the
        // file's size): no hand-off per step and no copy through an intermediate buffer.
        tokio::task::spawn_blocking(move || read_contained(&dir, &file, &uri, max_bytes))
            .await
            .map_err(|e| StoreError::Io { path, source: std::io::Error::other(e) })?
    }

    /// The bytes of `rel`, or `None` when it does not exist.
    pub async fn get_opt(&self, rel: &str) -> Result<Option<Bytes>> {
        match self.get(rel).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Size and etag of `rel`; [`StoreError::NotFound`] when it does not exist.
    pub async fn head(&self, rel: &str) -> Result<ObjectInfo> {
        let path = self.object_path(rel)?;
        let meta = self.store.head(&path).await.map_err(|e| self.store_err("head", rel, e))?;
        Ok(ObjectInfo { key: rel.trim_matches('/').to_string(), size: meta.size, etag: meta.e_tag })
    }

    /// Write `rel`, replacing any previous object, atomically.
    pub async fn put(&self, rel: &str, bytes: Bytes) -> Result<()> {
        let path = self.object_path(rel)?;
        self.store.put(&path, PutPayload::from(bytes)).await.map_err(|e| self.store_err("put", rel, e))?;
        Ok(())
    }

    /// Write `rel` only if it does not exist yet: `true` when this call created it, `false`
    /// when it already existed (nothing written). Race-free between concurrent writers.
    pub async fn put_if_absent(&self, rel: &str, bytes: Bytes) -> Result<bool> {
        let path = self.object_path(rel)?;
        let opts = PutMode::Create.into();
        match self.store.put_opts(&path, PutPayload::from(bytes), opts).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                Ok(false)
            }
            Err(e) => Err(self.store_err("put_if_absent", rel, e)),
        }
    }

    /// Upload the local file `local` to `rel`, as a multipart upload when it is at least
    /// [`MULTIPART_PART_SIZE`] bytes (memory: a few parts). Returns the bytes uploaded.
    pub async fn put_file(&self, rel: &str, local: &std::path::Path) -> Result<u64> {
        let io_err = |source| StoreError::Io { path: local.to_path_buf(), source };
        let mut file = tokio::fs::File::open(local).await.map_err(io_err)?;
        let size = file.metadata().await.map_err(io_err)?.len();
        if size < MULTIPART_PART_SIZE as u64 {
            let mut buf = Vec::with_capacity(size as usize);
            file.read_to_end(&mut buf).await.map_err(io_err)?;
            let len = buf.len() as u64;
            self.put(rel, Bytes::from(buf)).await?;
            return Ok(len);
        }
        let path = self.object_path(rel)?;
        let upload = self.store.put_multipart(&path).await.map_err(|e| self.store_err("put_file", rel, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, MULTIPART_PART_SIZE);
        let mut buf = vec![0u8; 1024 * 1024];
        let mut sent = 0u64;
        loop {
            let n = match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(source) => {
                    let _ = writer.abort().await;
                    return Err(io_err(source));
                }
            };
            if let Err(e) = writer.wait_for_capacity(MULTIPART_CONCURRENCY).await {
                let _ = writer.abort().await;
                return Err(self.store_err("put_file", rel, e));
            }
            writer.write(&buf[..n]);
            sent += n as u64;
        }
        writer.finish().await.map_err(|e| self.store_err("put_file", rel, e))?;
        Ok(sent)
    }

    /// The objects under `rel_prefix` (a directory-like prefix: `""` for everything,
    /// `progress/` or `progress`), keys relative to this location, sorted by key.
    pub async fn list(&self, rel_prefix: &str) -> Result<Vec<ObjectInfo>> {
        let path = self.object_path(rel_prefix)?;
        let prefix = if path.as_ref().is_empty() { None } else { Some(&path) };
        let metas: Vec<_> = match self.store.list(prefix).try_collect().await {
            Ok(metas) => metas,
            // a missing local directory lists as empty, like an unused cloud prefix
            Err(object_store::Error::NotFound { .. }) if self.local_dir.is_some() => Vec::new(),
            Err(e) => return Err(self.store_err("list", rel_prefix, e)),
        };
        let mut objects: Vec<ObjectInfo> = metas
            .into_iter()
            .filter_map(|m| {
                let key = self.key_of(&m.location)?;
                Some(ObjectInfo { key, size: m.size, etag: m.e_tag })
            })
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Delete `rel`; deleting a missing object succeeds.
    pub async fn delete(&self, rel: &str) -> Result<()> {
        let path = self.object_path(rel)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.store_err("delete", rel, e)),
        }
    }
}

/// Whether the store refused the request's credentials: HTTP 401 or 403. Most operations
/// report them as `PermissionDenied` / `Unauthenticated`; some (Azure and GCS listings) wrap
/// the HTTP error in `Generic`, whose status object_store does not expose by type, so the
/// cause chain is read for the status its HTTP error prints.
fn is_refused(err: &object_store::Error) -> bool {
    if matches!(
        err,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) {
        return true;
    }
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if ["status code: 401 Unauthorized", "status code: 403 Forbidden"].iter().any(|s| text.contains(s)) {
            return true;
        }
        next = e.source();
    }
    false
}

/// [`Location::get_contained`] for a `file://` location: `file` (inside `dir`), read when its
/// real path lies inside `dir`'s and its size is at most `max_bytes`. Blocking.
fn read_contained(dir: &std::path::Path, file: &std::path::Path, uri: &str, max_bytes: u64) -> Result<Bytes> {
    use std::io::Read;
    let io_err = |path: &std::path::Path, source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => StoreError::NotFound { uri: uri.to_string() },
        _ => StoreError::Io { path: path.to_path_buf(), source },
    };
    let root = std::fs::canonicalize(dir).map_err(|e| io_err(dir, e))?;
    let real = std::fs::canonicalize(file).map_err(|e| io_err(file, e))?;
    if !real.starts_with(&root) {
        return Err(StoreError::OutsideInput { path: file.to_path_buf(), dir: dir.to_path_buf() });
    }
    // read the resolved path, which had no links when checked (a directory on it replaced
    // by a link in between is a race this does not close; the directory is the job's)
    let f = std::fs::File::open(&real).map_err(|e| io_err(file, e))?;
    let size = f.metadata().map_err(|e| io_err(file, e))?.len();
    let too_large = |size| StoreError::TooLarge { uri: uri.to_string(), size, limit: max_bytes };
    if size > max_bytes {
        return Err(too_large(Some(size)));
    }
    // a file that grows after the size was read is cut at one byte past the limit
    let mut buf = crate::readbuf::take(usize::try_from(size).unwrap_or(0));
    f.take(max_bytes.saturating_add(1)).read_to_end(&mut buf).map_err(|e| io_err(file, e))?;
    if buf.len() as u64 > max_bytes {
        return Err(too_large(None));
    }
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `file://` read goes into a recycled buffer, and holds only the file's bytes even when
    /// the buffer held a longer image before.
    #[test]
    fn a_local_read_reuses_a_recycled_buffer() {
        let _turn = crate::readbuf::exclusive();
        let dir = tempfile::tempdir().expect("tempdir");
        let long: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("long.jpg"), &long).expect("write");
        std::fs::write(dir.path().join("short.jpg"), b"short image body").expect("write");
        let read =
            |name: &str| read_contained(dir.path(), &dir.path().join(name), name, 1 << 30).expect(name);

        let first = read("long.jpg");
        assert_eq!(first.as_ref(), long.as_slice());
        let ptr = first.as_ptr();
        crate::readbuf::recycle(first);
        let again = read("long.jpg");
        assert_eq!(again.as_ptr(), ptr, "the second read did not reuse the first one's buffer");
        assert_eq!(again.as_ref(), long.as_slice());
        crate::readbuf::recycle(again);
        let short = read("short.jpg");
        assert_eq!(short.as_ptr(), ptr, "the pool's one buffer fits the short file too");
        assert_eq!(short.as_ref(), b"short image body", "no byte of the earlier image shows");
    }

    fn no_env() -> StoreOptions {
        StoreOptions::from_vars(Vec::<(String, String)>::new())
    }

    #[test]
    fn cloud_uris_normalise() {
        let s3 = StoreOptions::from_vars([
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ]);
        let cases = [
            ("s3://bucket", "s3://bucket", &s3),
            ("s3://bucket/", "s3://bucket", &s3),
            ("s3://bucket/a/b/", "s3://bucket/a/b", &s3),
            ("gs://bucket/x", "gs://bucket/x", &no_env()),
        ];
        for (uri, normalised, options) in cases {
            let loc = Location::parse_with(uri, options).expect(uri);
            assert_eq!(loc.uri(), normalised);
            assert_eq!(loc.child_uri("k.json"), format!("{normalised}/k.json"));
            assert!(loc.local_dir().is_none());
        }
        let loc = Location::parse_with("s3://bucket/a", &s3).expect("s3");
        assert_eq!(loc.object_path("b/c.jpg").expect("path").as_ref(), "a/b/c.jpg");
        assert_eq!(loc.object_path("").expect("path").as_ref(), "a");
    }

    #[test]
    fn azure_needs_an_account_and_accepts_both_schemes() {
        let err = Location::parse_with("az://container/p", &no_env()).expect_err("no account");
        assert!(matches!(err, StoreError::Configure { .. }), "{err:?}");
        let opts = StoreOptions::from_vars([
            ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
            ("AZURE_STORAGE_ACCOUNT_KEY", "c2VjcmV0"),
        ]);
        for uri in ["az://container/p", "azure://container/p/"] {
            let loc = Location::parse_with(uri, &opts).expect(uri);
            assert_eq!(loc.uri(), "az://container/p");
        }
    }

    #[test]
    fn explicit_vars_win_over_the_process_environment() {
        let mut opts = StoreOptions::from_vars([("PATH", "from-vars")]);
        assert_eq!(opts.lookup("PATH").as_deref(), Some("from-vars"));
        assert_eq!(opts.lookup("LABELJOB_SURELY_UNSET_VARIABLE"), None);
        opts.vars.clear();
        assert_eq!(opts.lookup("PATH"), None, "process environment ignored");
        opts.ignore_process_env = false;
        assert_eq!(opts.lookup("PATH"), std::env::var("PATH").ok());
    }

    #[test]
    fn timeouts_come_from_the_policy_unless_set() {
        let opts = no_env();
        let t = opts.timeouts("AWS_");
        assert_eq!(t.len(), 3);
        assert!(t.contains(&(ClientConfigKey::Timeout, "120000ms".to_string())));
        assert!(t.contains(&(ClientConfigKey::ConnectTimeout, "10000ms".to_string())));
        assert!(t.contains(&(ClientConfigKey::ReadTimeout, "30000ms".to_string())));
        let opts = StoreOptions::from_vars([("AWS_TIMEOUT", "5s"), ("AWS_READ_TIMEOUT", "1s")]);
        assert_eq!(opts.timeouts("AWS_"), vec![(ClientConfigKey::ConnectTimeout, "10000ms".to_string())]);
    }

    #[test]
    fn file_locations_keep_their_directory() {
        let loc = Location::parse("file:///var/data/images/").expect("file");
        assert_eq!(loc.uri(), "file:///var/data/images");
        assert_eq!(loc.local_dir(), Some(std::path::Path::new("/var/data/images/")));
        assert_eq!(loc.object_path("a/b.jpg").expect("path").as_ref(), "var/data/images/a/b.jpg");
        assert_eq!(loc.key_of(&Path::from("var/data/images/a/b.jpg")).as_deref(), Some("a/b.jpg"));
        assert_eq!(loc.key_of(&Path::from("var/data/other/b.jpg")), None);
    }
}
