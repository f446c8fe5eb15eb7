//! The input side of a LabelJob: list `spec.input` once into manifest entries and fetch
//! single images.
//!
//! Two kinds of input:
//! - a store prefix (`file://`, `s3://`, `gs://`, `az://`): every object under it, keys
//!   relative to the prefix;
//! - an `http(s)://` URL of a text file listing one image URL per line (blank lines and lines
//!   starting with `#` ignored; relative URLs resolve against the list's URL; duplicates
//!   dropped). Key and URI of an entry are the image URL *redacted* ([`redact_uri`]).
//!
//! Credentials in image URLs (presigned query strings, `user:password@`) never reach the
//! manifest, and so no shard file, COCO file, error list or log line: the manifest keeps the
//! redacted URL, and fetching maps it back to the real URL by reading the URL list again
//! (once per process, [`InputSource::fetch`]). Re-reading instead of persisting the secret
//! part somewhere "safer" keeps the rule simple — no output file ever holds a credential —
//! and a list regenerated with fresh signatures since planning is picked up, as long as it
//! still lists the same redacted URLs. Downloads only reach public addresses unless the job
//! sets `allowPrivateNetworks` ([`crate::netguard`]).
//!
//! Time: each attempt of a download has `input.timeouts.connectSeconds` to connect and
//! `readSeconds` between bytes; each image `deadlineSeconds` in all, retries included
//! ([`StoreError::Deadline`]), for URL lists and object stores alike.
//!
//! `file://` inputs: a symbolic link is followed only while its target stays inside the
//! input directory; one that leads outside fails as that one image
//! ([`StoreError::OutsideInput`]). An odd entry (a name that is not UTF-8 or holds a control
//! character, a dangling or looping link, a FIFO, an unreadable directory) is listed as an
//! entry with a [`ListingProblem`] ([`crate::localdir`]): one failed image, not a failed job.
//!
//! Filters: `include` / `exclude` are globs where `*` and `?` stay within one path segment
//! and `**` spans segments (`photos/**/*.jpg`), case-sensitive. They match the key of store
//! objects, and the URL's path (no leading `/`, no query) for URL lists. No `include` means:
//! store keys ending in .jpg .jpeg .png .webp .bmp (any case); for URL lists every listed URL.
//! The listing is sorted by key and cut to `maxImages`; ids are positions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use labeljob_api::v1alpha1::{DownloadTimeouts, InputSpec};
use tokio::sync::OnceCell;
use tracing::{debug, warn};

use crate::localdir;
use crate::manifest::ListingProblem;
use crate::redact::redact_uri;
use crate::retry::HttpClient;
use crate::{
    Location, Manifest, ManifestEntry, NetworkPolicy, ObjectInfo, Result, RetryPolicy, StoreError,
    StoreOptions,
};

/// The largest image [`InputSource::fetch`] reads unless told otherwise (the decoder's limit).
pub const DEFAULT_MAX_IMAGE_BYTES: u64 = 256 << 20;
/// The largest URL list read (about two million URLs of a hundred characters).
pub const MAX_URL_LIST_BYTES: u64 = 256 << 20;

/// File name extensions taken as images when no `include` is given (compared lower-cased).
pub const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "bmp"];

/// Where the images come from.
#[derive(Clone, Debug)]
enum Source {
    Store(Location),
    UrlList(UrlList),
}

/// An `http(s)://` URL list.
#[derive(Clone, Debug)]
struct UrlList {
    /// The list's URL, as configured (may hold credentials: never shown).
    url: url::Url,
    /// The list's URL redacted: what errors and logs show.
    shown: String,
    /// Redacted image URL (the manifest key) → real URL; read once per process, by the
    /// first listing or the first fetch, and shared by clones.
    urls: Arc<OnceCell<HashMap<String, url::Url>>>,
}

/// Which keys are taken.
#[derive(Clone, Debug)]
struct KeyFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    /// Without `include`: require an image extension (store listings) or take all (URL lists).
    extensions_by_default: bool,
}

impl KeyFilter {
    fn new(include: &[String], exclude: &[String], extensions_by_default: bool) -> Result<Self> {
        Ok(Self { include: glob_set(include)?, exclude: glob_set(exclude)?, extensions_by_default })
    }

    fn matches(&self, key: &str) -> bool {
        let included = match &self.include {
            Some(set) => set.is_match(key),
            None => !self.extensions_by_default || has_image_extension(key),
        };
        included && !self.exclude.as_ref().is_some_and(|set| set.is_match(key))
    }

    /// Whether everything below the directory `dir` is excluded (`thumbs/**` for `thumbs`).
    fn excludes_dir(&self, dir: &str) -> bool {
        self.exclude.as_ref().is_some_and(|set| set.is_match(format!("{dir}/x")))
    }
}

fn glob_set(patterns: &[String]) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob_err = |source| StoreError::Glob { pattern: pattern.clone(), source };
        builder.add(GlobBuilder::new(pattern).literal_separator(true).build().map_err(glob_err)?);
    }
    let set = builder.build().map_err(|source| StoreError::Glob { pattern: patterns.join(", "), source })?;
    Ok(Some(set))
}

/// Whether `key` ends in one of [`IMAGE_EXTENSIONS`], in any case.
pub fn has_image_extension(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty() && IMAGE_EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e))
    })
}

/// The input of a LabelJob, ready to list and fetch.
#[derive(Clone, Debug)]
pub struct InputSource {
    source: Source,
    filter: KeyFilter,
    max_images: Option<u64>,
    http: HttpClient,
    /// `input.timeouts.deadlineSeconds`: one image's download in all.
    deadline: Duration,
}

/// `options` with the connect, read and request timeouts of `spec.input.timeouts` (a request
/// never needs longer than the whole image's deadline).
fn with_timeouts(options: &StoreOptions, t: &DownloadTimeouts) -> StoreOptions {
    let mut options = options.clone();
    let retry = &mut options.retry;
    retry.connect_timeout = Duration::from_secs(t.connect_seconds.into());
    retry.read_timeout = Duration::from_secs(t.read_seconds.into());
    retry.request_timeout = Duration::from_secs(t.deadline_seconds.into());
    options
}

impl InputSource {
    /// An input configured from the process environment.
    pub fn new(spec: &InputSpec) -> Result<InputSource> {
        Self::with_options(spec, &StoreOptions::default())
    }

    /// An input with explicit store options (credentials, retries). The timeouts of the
    /// options' retry policy are replaced by those of `spec.timeouts`.
    pub fn with_options(spec: &InputSpec, options: &StoreOptions) -> Result<InputSource> {
        let options = &with_timeouts(options, &spec.timeouts);
        let uri = spec.uri.as_str();
        let (source, extensions_by_default) = if uri.starts_with("http://") || uri.starts_with("https://") {
            let url =
                url::Url::parse(uri).map_err(|source| StoreError::Url { uri: redact_uri(uri), source })?;
            let shown = redact_uri(url.as_str());
            (Source::UrlList(UrlList { url, shown, urls: Arc::default() }), false)
        } else {
            (Source::Store(Location::parse_with(uri, options)?), true)
        };
        Ok(InputSource {
            source,
            filter: KeyFilter::new(&spec.include, &spec.exclude, extensions_by_default)?,
            max_images: spec.max_images,
            http: HttpClient::new(options.retry.clone(), network_policy(spec))?,
            deadline: Duration::from_secs(spec.timeouts.deadline_seconds.into()),
        })
    }

    /// The input URI (normalised for stores), redacted: safe to show.
    pub fn uri(&self) -> &str {
        match &self.source {
            Source::Store(location) => location.uri(),
            Source::UrlList(list) => &list.shown,
        }
    }

    /// The store location, unless the input is a URL list.
    pub fn location(&self) -> Option<&Location> {
        match &self.source {
            Source::Store(location) => Some(location),
            Source::UrlList(_) => None,
        }
    }

    /// The retry policy used for downloads.
    pub fn retry_policy(&self) -> &RetryPolicy {
        self.http.policy()
    }

    /// List the input: filtered, sorted by key, cut to `maxImages`, ids = positions. The
    /// entries that cannot be images ([`InputSource::list_manifest`]) are among them.
    pub async fn list(&self) -> Result<Vec<ManifestEntry>> {
        Ok(self.list_manifest().await?.entries)
    }

    /// The listing as a manifest: [`InputSource::list`], with the odd entries of a `file://`
    /// input ([`crate::localdir`]) as entries that carry their problem.
    pub async fn list_manifest(&self) -> Result<Manifest> {
        let mut listed: Vec<(ManifestEntry, Option<ListingProblem>)> = match &self.source {
            Source::Store(location) => self.list_store(location).await?,
            Source::UrlList(list) => self.list_urls(list).await?.into_iter().map(|e| (e, None)).collect(),
        };
        listed.sort_by(|a, b| a.0.key.cmp(&b.0.key));
        // URL lists may list an image twice; an odd entry's printable key may equal a real one
        listed.dedup_by(|a, b| a.0.key == b.0.key && a.0.uri == b.0.uri);
        if let Some(max) = self.max_images {
            listed.truncate(usize::try_from(max).unwrap_or(usize::MAX));
        }
        let mut problems = BTreeMap::new();
        let mut entries = Vec::with_capacity(listed.len());
        for (id, (mut entry, problem)) in listed.into_iter().enumerate() {
            entry.id = id as u64;
            if let Some(p) = problem {
                problems.insert(entry.id, p);
            }
            entries.push(entry);
        }
        debug!(uri = self.uri(), images = entries.len(), odd = problems.len(), "listed input");
        Ok(Manifest::with_problems(entries, problems))
    }

    async fn list_store(&self, location: &Location) -> Result<Vec<(ManifestEntry, Option<ListingProblem>)>> {
        let entry = |o: ObjectInfo| ManifestEntry {
            id: 0,
            uri: redact_uri(&location.child_uri(&o.key)),
            key: o.key,
            size: Some(o.size),
            etag: o.etag,
        };
        let Some(dir) = location.local_dir() else {
            let objects = location.list("").await?;
            return Ok(objects
                .into_iter()
                .filter(|o| self.filter.matches(&o.key))
                .map(|o| (entry(o), None))
                .collect());
        };
        // a missing local input directory is an error, not an empty job
        if !tokio::fs::try_exists(dir).await.unwrap_or(false) {
            return Err(StoreError::NotFound { uri: location.uri().to_string() });
        }
        let walked = dir.to_path_buf();
        let (files, bad) = tokio::task::spawn_blocking(move || localdir::walk(&walked))
            .await
            .map_err(|e| StoreError::Io { path: dir.to_path_buf(), source: std::io::Error::other(e) })??;
        let mut out: Vec<_> =
            files.into_iter().filter(|o| self.filter.matches(&o.key)).map(|o| (entry(o), None)).collect();
        for b in bad {
            let wanted = match b.is_dir {
                true => !self.filter.excludes_dir(&b.key),
                false => self.filter.matches(&b.key),
            };
            if !wanted {
                continue;
            }
            warn!(
                uri = location.uri(),
                entry = b.key,
                reason = b.problem.reason,
                "odd input entry: one failed image"
            );
            let uri = redact_uri(&location.child_uri_of_bytes(&b.raw));
            let e = ManifestEntry { id: 0, key: b.key, uri, size: None, etag: None };
            out.push((e, Some(b.problem)));
        }
        Ok(out)
    }

    async fn list_urls(&self, list: &UrlList) -> Result<Vec<ManifestEntry>> {
        let urls = self.read_url_list(list).await?;
        let entries = urls
            .iter()
            .filter(|(_, u)| self.filter.matches(u.path().trim_start_matches('/')))
            .map(|(key, _)| ManifestEntry {
                id: 0,
                key: key.clone(),
                uri: key.clone(),
                size: None,
                etag: None,
            })
            .collect();
        // the first reading serves later fetches in this process (a second listing, as on
        // resume, leaves the first in place)
        let _first_stays = list.urls.set(urls);
        Ok(entries)
    }

    /// Download and parse the URL list into redacted key → real URL (first occurrence wins).
    async fn read_url_list(&self, list: &UrlList) -> Result<HashMap<String, url::Url>> {
        let body = self.http.get(&list.url, MAX_URL_LIST_BYTES).await?;
        let mut urls = HashMap::new();
        for url in parse_url_list(&list.url, &String::from_utf8_lossy(&body))? {
            urls.entry(redact_uri(url.as_str())).or_insert(url);
        }
        Ok(urls)
    }

    /// The bytes of one image, at most [`DEFAULT_MAX_IMAGE_BYTES`] ([`InputSource::fetch_capped`]).
    pub async fn fetch(&self, entry: &ManifestEntry) -> Result<Bytes> {
        self.fetch_capped(entry, DEFAULT_MAX_IMAGE_BYTES).await
    }

    /// The bytes of one image, at most `max_bytes`: a larger one is [`StoreError::TooLarge`],
    /// refused from its declared size (object size, file size, `Content-Length`) before its
    /// body is read, or cut off once more than the limit has arrived. Transient failures are
    /// retried per the retry policy (by object_store's client for cloud stores);
    /// [`StoreError::NotFound`] is returned at once. URL-list images are fetched from the
    /// real URL that the list (read once per process) gives for the entry's redacted key:
    /// [`StoreError::NotListed`] when it lists it no more.
    ///
    /// The whole of it, retries included, has `input.timeouts.deadlineSeconds`: then
    /// [`StoreError::Deadline`].
    pub async fn fetch_capped(&self, entry: &ManifestEntry, max_bytes: u64) -> Result<Bytes> {
        let deadline = self.deadline;
        tokio::time::timeout(deadline, self.fetch_now(entry, max_bytes)).await.unwrap_or_else(|_| {
            Err(StoreError::Deadline { uri: redact_uri(&entry.uri), seconds: deadline.as_secs() })
        })
    }

    async fn fetch_now(&self, entry: &ManifestEntry, max_bytes: u64) -> Result<Bytes> {
        let bytes = match &self.source {
            Source::Store(location) => location.get_contained(&entry.key, max_bytes).await?,
            Source::UrlList(list) => {
                let urls = list.urls.get_or_try_init(|| self.read_url_list(list)).await?;
                // manifests written before redaction keep real URLs as keys: redact to look up
                let key = redact_uri(&entry.key);
                let url = urls
                    .get(&key)
                    .ok_or_else(|| StoreError::NotListed { uri: key.clone(), list: list.shown.clone() })?;
                self.http.get(url, max_bytes).await?
            }
        };
        if let Some(size) = entry.size.filter(|s| *s != bytes.len() as u64) {
            let uri = redact_uri(&entry.uri);
            warn!(uri, planned = size, fetched = bytes.len(), "image changed since planning");
        }
        Ok(bytes)
    }
}

/// The network policy a job's input asks for.
fn network_policy(spec: &InputSpec) -> NetworkPolicy {
    match spec.allow_private_networks {
        true => NetworkPolicy::AllowPrivate,
        false => NetworkPolicy::PublicOnly,
    }
}

/// At most this many characters of a bad URL-list line are quoted in its error (a "list"
/// may be any document).
const QUOTED_CHARS: usize = 100;

/// Parse a URL list: one URL per line, `#` comment lines and blank lines ignored, relative
/// URLs resolved against `list`; only http(s) URLs. Errors name the 1-based line.
pub fn parse_url_list(list: &url::Url, text: &str) -> Result<Vec<url::Url>> {
    let mut urls = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line_err = |source| StoreError::UrlListLine {
            list: redact_uri(list.as_str()),
            line: index + 1,
            text: redact_uri(line).chars().take(QUOTED_CHARS).collect(),
            source,
        };
        let url = list.join(line).map_err(|e| line_err(Some(e)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(line_err(None));
        }
        urls.push(url);
    }
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_extensions_any_case() {
        for key in ["a.jpg", "x/b.JPEG", "c.Png", "d/e/f.webp", "g.BMP"] {
            assert!(has_image_extension(key), "{key}");
        }
        for key in ["a.gif", "b.jpg.txt", "jpg", "dir.jpg/readme", ".jpg", "x/.png", "noext"] {
            assert!(!has_image_extension(key), "{key}");
        }
    }

    #[test]
    fn globs_stay_within_segments_unless_double_star() {
        let f = KeyFilter::new(&["*.jpg".into()], &[], true).expect("filter");
        assert!(f.matches("a.jpg"));
        assert!(!f.matches("sub/a.jpg"));
        let f = KeyFilter::new(&["**/*.jpg".into()], &["**/skip/**".into()], true).expect("filter");
        assert!(f.matches("a.jpg") && f.matches("x/y/a.jpg"));
        assert!(!f.matches("x/skip/a.jpg"));
        assert!(!f.matches("a.JPG"), "user globs are case-sensitive");
    }

    #[test]
    fn exclude_applies_to_default_include() {
        let f = KeyFilter::new(&[], &["thumbs/**".into()], true).expect("filter");
        assert!(f.matches("photos/a.jpg"));
        assert!(!f.matches("thumbs/a.jpg"));
        assert!(!f.matches("photos/a.txt"));
        let urls = KeyFilter::new(&[], &[], false).expect("filter");
        assert!(urls.matches("render/12345"), "URL lists take every URL by default");
    }

    #[test]
    fn invalid_glob_is_reported() {
        let err = KeyFilter::new(&["a[".into()], &[], true).expect_err("bad glob");
        assert!(matches!(&err, StoreError::Glob { pattern, .. } if pattern == "a["), "{err:?}");
    }

    #[test]
    fn url_list_parsing() {
        let list = url::Url::parse("https://example.org/sets/list.txt").expect("url");
        let text = "# photos\n\nhttps://cdn.example.org/a.jpg\n  b/c.png  \n/abs/d.webp\r\n#x\n";
        let urls: Vec<String> =
            parse_url_list(&list, text).expect("parse").iter().map(|u| u.to_string()).collect();
        assert_eq!(
            urls,
            vec![
                "https://cdn.example.org/a.jpg",
                "https://example.org/sets/b/c.png",
                "https://example.org/abs/d.webp"
            ]
        );
        let err = parse_url_list(&list, "https://h/a.jpg\n\nftp://h/b.jpg\n").expect_err("ftp");
        assert!(matches!(err, StoreError::UrlListLine { line: 3, source: None, .. }), "{err:?}");
        let err = parse_url_list(&list, "http://[::1/a.jpg").expect_err("bad url");
        assert!(matches!(err, StoreError::UrlListLine { line: 1, source: Some(_), .. }), "{err:?}");
    }
}
