//! Hostile input (issue 9, items 9 and 10) against a real HTTP server on 127.0.0.1 (axum,
//! started and shut down by each test) and real directories:
//! - URL lists reach loopback only with `allowPrivateNetworks: true`; redirects are capped
//!   and never leave http(s);
//! - credentials in image URLs (presigned query strings, `user:password@`) reach neither the
//!   manifest, nor errors, nor retry log lines, while the fetch still uses the real URL;
//! - a `file://` symlink that leads outside the input prefix fails as that one image.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use labeljob_api::v1alpha1::InputSpec;
use labeljob_store::{InputSource, Manifest, RetryPolicy, StoreError, StoreOptions};
use tokio::sync::oneshot;

/// The secrets the list hands out; none may appear in any output.
const SECRETS: [&str; 5] = ["sigSECRET1", "AKIASECRET2", "tokSECRET3", "pwSECRET4", "sasSECRET5"];

const LIST: &str = "http://HOST/img/signed.jpg?X-Amz-Credential=AKIASECRET2&X-Amz-Signature=sigSECRET1&size=l\n\
http://alice:pwSECRET4@HOST/img/basic.jpg\n\
http://HOST/img/flaky.jpg?token=tokSECRET3\n\
http://HOST/img/missing.jpg?sv=2022&sig=sasSECRET5\n";

#[derive(Clone, Default)]
struct Served {
    host: String,
    hits: Arc<Mutex<Vec<String>>>,
}

async fn handle(
    served: State<Served>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = query.unwrap_or_default();
    let hit = {
        let mut hits = served.hits.lock().expect("lock");
        hits.push(path.clone());
        hits.iter().filter(|p| **p == path).count()
    };
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    match path.as_str() {
        "list.txt" => LIST.replace("HOST", &served.host).into_response(),
        // only the real, signed URL gets the image
        "img/signed.jpg" if query.contains("X-Amz-Signature=sigSECRET1") => "signed bytes".into_response(),
        // "alice:pwSECRET4" as HTTP basic authentication
        "img/basic.jpg" if auth == "Basic YWxpY2U6cHdTRUNSRVQ0" => "basic bytes".into_response(),
        "img/flaky.jpg" if hit == 1 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        "img/flaky.jpg" if query == "token=tokSECRET3" => "flaky bytes".into_response(),
        "img/signed.jpg" | "img/basic.jpg" | "img/flaky.jpg" => StatusCode::FORBIDDEN.into_response(),
        "loop" => redirect("/loop"),
        "to-file" => redirect("file:///etc/passwd"),
        "hops-3" => redirect("/hops-2"),
        "hops-2" => redirect("/hops-1"),
        "hops-1" => "# nothing listed\n".into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}

/// A server on 127.0.0.1; [`TestServer::stop`] shuts it down gracefully.
struct TestServer {
    base: String,
    served: Served,
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    async fn start() -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let served = Served { host: addr.to_string(), ..Served::default() };
        let app = Router::new().route("/{*path}", get(handle)).with_state(served.clone());
        let (shutdown, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stop = async move {
                let _ = rx.await;
            };
            axum::serve(listener, app).with_graceful_shutdown(stop).await.expect("serve");
        });
        TestServer { base: format!("http://{addr}"), served, shutdown, task }
    }

    fn hits(&self) -> usize {
        self.served.hits.lock().expect("lock").len()
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        self.task.await.expect("server task");
    }
}

fn input(uri: String, allow_private_networks: bool) -> InputSource {
    let spec = InputSpec {
        uri,
        include: Vec::new(),
        exclude: Vec::new(),
        credentials: None,
        max_images: None,
        allow_private_networks,
        dedup: Default::default(),
        timeouts: Default::default(),
    };
    let options = StoreOptions {
        retry: RetryPolicy {
            max_tries: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
        },
        ..StoreOptions::default()
    };
    InputSource::with_options(&spec, &options).expect("input")
}

/// An error and all its causes, as a log line or errors.jsonl could show them.
fn chain(err: &StoreError) -> String {
    let mut out = format!("{err} / {err:?}");
    let mut cause = std::error::Error::source(err);
    while let Some(e) = cause {
        out.push_str(&format!(" / {e}"));
        cause = e.source();
    }
    out
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} leaks {secret}: {text}");
    }
}

#[tokio::test]
async fn loopback_url_lists_need_allow_private_networks() {
    let server = TestServer::start().await;
    let err = input(format!("{}/list.txt", server.base), false).list().await.expect_err("loopback");
    assert!(matches!(err, StoreError::Forbidden { .. }), "{err:?}");
    assert!(chain(&err).contains("allowPrivateNetworks"), "{}", chain(&err));
    assert_eq!(server.hits(), 0, "nothing was requested");

    // a name that resolves to loopback is refused by the resolver, at connect time
    let port = server.base.rsplit(':').next().expect("port");
    let err = input(format!("http://localhost:{port}/list.txt"), false).list().await.expect_err("localhost");
    assert!(matches!(err, StoreError::Forbidden { .. }), "{err:?}");
    assert_eq!(server.hits(), 0, "nothing was requested");

    let listed = input(format!("{}/list.txt", server.base), true).list().await.expect("opted in");
    assert_eq!(listed.len(), 4);
    server.stop().await;
}

#[tokio::test]
async fn redirects_are_capped_and_stay_on_http() {
    let server = TestServer::start().await;
    let base = &server.base;
    let listed = input(format!("{base}/hops-3"), true).list().await.expect("three hops are followed");
    assert!(listed.is_empty());

    let err = input(format!("{base}/loop"), true).list().await.expect_err("redirect loop");
    assert!(chain(&err).contains("more than 5 redirects"), "{}", chain(&err));
    let loops = server.served.hits.lock().expect("lock").iter().filter(|p| *p == "loop").count();
    assert_eq!(loops, 6, "the first request and five redirects, not retried");

    // reqwest hands a redirect to another scheme back as the response: not followed
    let err = input(format!("{base}/to-file"), true).list().await.expect_err("file redirect");
    assert!(matches!(err, StoreError::HttpStatus { status: 302, .. }), "{err:?}");
    server.stop().await;
}

#[tokio::test]
async fn credentials_stay_out_of_manifest_errors_and_logs_but_fetches_use_them() {
    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || LogSink(sink.clone()))
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = TestServer::start().await;
    let list_uri = format!("{}/list.txt", server.base);
    let entries = input(list_uri.clone(), true).list().await.expect("list");
    let manifest = Manifest::new(entries);
    let jsonl = String::from_utf8(manifest.to_jsonl()).expect("utf8");
    assert_no_secret("manifest.jsonl", &jsonl);
    let uris: Vec<&str> = manifest.entries.iter().map(|e| e.uri.as_str()).collect();
    let host = &server.served.host;
    assert_eq!(
        uris,
        vec![
            format!("http://{host}/img/flaky.jpg?token=REDACTED"),
            format!("http://{host}/img/missing.jpg?sv=2022&sig=REDACTED"),
            format!("http://{host}/img/signed.jpg?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&size=l"),
            format!("http://REDACTED:REDACTED@{host}/img/basic.jpg"),
        ]
    );

    // a fresh process (a shard) has only the manifest: it re-reads the list for the real URLs
    let shard = input(list_uri, true);
    let frozen = Manifest::from_jsonl(jsonl.as_bytes()).expect("parse");
    let fetched = |i: usize| shard.fetch(&frozen.entries[i]);
    assert_eq!(fetched(3).await.expect("basic auth from the URL").as_ref(), b"basic bytes");
    assert_eq!(fetched(0).await.expect("flaky, after one retry").as_ref(), b"flaky bytes");
    assert_eq!(fetched(2).await.expect("presigned").as_ref(), b"signed bytes");
    let err = fetched(1).await.expect_err("404");
    assert!(err.is_not_found(), "{err:?}");
    assert_no_secret("a download error", &chain(&err));

    let mut gone = frozen.entries[0].clone();
    gone.key = format!("http://{host}/img/unlisted.jpg?sig=REDACTED");
    let err = shard.fetch(&gone).await.expect_err("not in the list any more");
    assert!(matches!(err, StoreError::NotListed { .. }), "{err:?}");
    server.stop().await;

    let err = shard.fetch(&frozen.entries[2]).await.expect_err("server is gone");
    assert!(matches!(err, StoreError::Http { .. }), "{err:?}");
    assert_no_secret("a connect error", &chain(&err));

    let logs = String::from_utf8(logs.lock().expect("lock").clone()).expect("utf8");
    assert!(logs.contains("transient HTTP failure, retrying"), "a retry was logged: {logs}");
    assert_no_secret("the log", &logs);
}

/// A `tracing` writer into a shared buffer.
struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(unix)]
#[tokio::test]
async fn file_symlinks_must_stay_inside_the_input_prefix() {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("secret.jpg"), b"outside bytes").expect("write");
    std::fs::create_dir(outside.path().join("dir")).expect("mkdir");
    std::fs::write(outside.path().join("dir/x.jpg"), b"outside dir bytes").expect("write");
    let root = tempfile::tempdir().expect("tempdir");
    let input_dir = root.path().join("in");
    std::fs::create_dir_all(input_dir.join("sub")).expect("mkdir");
    std::fs::write(input_dir.join("sub/a.jpg"), b"a bytes").expect("write");
    symlink(input_dir.join("sub/a.jpg"), input_dir.join("inner.jpg")).expect("link in");
    symlink(outside.path().join("secret.jpg"), input_dir.join("evil.jpg")).expect("link out");
    symlink("../../../../../../../../../etc/hostname", input_dir.join("relative.jpg")).expect("link up");
    symlink(outside.path().join("dir"), input_dir.join("linked")).expect("dir link out");

    let source = input(format!("file://{}", input_dir.display()), false);
    let entries = source.list().await.expect("list");
    let mut outcomes = Vec::new();
    for entry in &entries {
        let outcome = match source.fetch(entry).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(StoreError::OutsideInput { .. }) => "outside".to_string(),
            Err(err) if err.is_not_found() => "not found".to_string(),
            Err(err) => panic!("{}: {err:?}", entry.key),
        };
        outcomes.push((entry.key.as_str(), outcome));
    }
    let relative = if std::path::Path::new("/etc/hostname").exists() { "outside" } else { "not found" };
    let expected = [
        ("evil.jpg", "outside".to_string()),
        ("inner.jpg", "a bytes".to_string()),
        ("linked/x.jpg", "outside".to_string()),
        ("relative.jpg", relative.to_string()),
        ("sub/a.jpg", "a bytes".to_string()),
    ];
    // a dangling link may or may not be listed; every link out is refused, none is read
    let listed: Vec<_> = outcomes.iter().filter(|(k, _)| *k != "relative.jpg").cloned().collect();
    let want: Vec<_> = expected.iter().filter(|(k, _)| *k != "relative.jpg").cloned().collect();
    assert_eq!(listed, want);
    if let Some((_, got)) = outcomes.iter().find(|(k, _)| *k == "relative.jpg") {
        assert_eq!(got, relative);
    }
}
