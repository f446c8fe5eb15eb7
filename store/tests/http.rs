//! `http://` URL-list inputs against a real HTTP server (axum on 127.0.0.1, started and shut
//! down by each test): list parsing and filtering, image fetches, retries of 503 until 200,
//! bounded retries, and 404 without retries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use labeljob_api::v1alpha1::InputSpec;
use labeljob_store::{InputSource, RetryPolicy, StoreError, StoreOptions};
use tokio::sync::oneshot;

/// Per-path request counters and the number of 503s to answer before succeeding.
#[derive(Clone, Default)]
struct Served {
    /// `127.0.0.1:PORT` of the server, for absolute URLs in the list.
    host: String,
    hits: Arc<Mutex<HashMap<String, u32>>>,
    fail_first: Arc<Mutex<HashMap<String, u32>>>,
}

impl Served {
    fn hit(&self, path: &str) -> u32 {
        let mut hits = self.hits.lock().expect("lock");
        let n = hits.entry(path.to_string()).or_default();
        *n += 1;
        *n
    }

    fn hits(&self, path: &str) -> u32 {
        self.hits.lock().expect("lock").get(path).copied().unwrap_or(0)
    }

    fn fail_first(&self, path: &str, times: u32) {
        self.fail_first.lock().expect("lock").insert(path.to_string(), times);
    }

    fn should_fail(&self, path: &str, hit: u32) -> bool {
        self.fail_first.lock().expect("lock").get(path).is_some_and(|n| hit <= *n)
    }
}

const LIST: &str = "# test images\n\
http://HOST/img/b.jpg\n\
\n\
/img/a.png\n\
img/c.jpg?size=large\n\
http://HOST/img/b.jpg\n\
   http://HOST/other/d.webp   \n";

async fn handle(served: State<Served>, Path(path): Path<String>) -> (StatusCode, Vec<u8>) {
    let path = format!("/{path}");
    let hit = served.hit(&path);
    if served.should_fail(&path, hit) || path == "/always-503" {
        return (StatusCode::SERVICE_UNAVAILABLE, b"busy".to_vec());
    }
    match path.as_str() {
        "/list.txt" | "/list-flaky.txt" => (StatusCode::OK, LIST.replace("HOST", &served.host).into_bytes()),
        "/bad-list.txt" => (StatusCode::OK, b"http://h/a.jpg\nmailto:x@y\n".to_vec()),
        "/forbidden" => (StatusCode::FORBIDDEN, Vec::new()),
        p if p.starts_with("/img/") || p.starts_with("/other/") => {
            (StatusCode::OK, format!("bytes of {p}").into_bytes())
        }
        _ => (StatusCode::NOT_FOUND, Vec::new()),
    }
}

/// A server on 127.0.0.1; dropped → graceful shutdown.
struct TestServer {
    base: String,
    served: Served,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    async fn start() -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let served = Served { host: addr.to_string(), ..Served::default() };
        let app = Router::new().route("/{*path}", get(handle)).with_state(served.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
        });
        TestServer { base: format!("http://{addr}"), served, shutdown: Some(tx), task: Some(task) }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn fast_retries(max_tries: u32) -> StoreOptions {
    StoreOptions {
        retry: RetryPolicy {
            max_tries,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
        },
        ..StoreOptions::default()
    }
}

fn input(uri: String, include: &[&str], max_images: Option<u64>, tries: u32) -> InputSource {
    let spec = InputSpec {
        uri,
        include: include.iter().map(|s| s.to_string()).collect(),
        exclude: Vec::new(),
        credentials: None,
        max_images,
        allow_private_networks: true,
        dedup: Default::default(),
        timeouts: Default::default(),
    };
    InputSource::with_options(&spec, &fast_retries(tries)).expect("input")
}

#[tokio::test]
async fn url_list_is_parsed_sorted_deduplicated_and_fetched() {
    let server = TestServer::start().await;
    let base = &server.base;
    let source = input(format!("{base}/list.txt"), &[], None, 3);
    let entries = source.list().await.expect("list");
    let urls: Vec<_> = entries.iter().map(|e| e.uri.as_str()).collect();
    let expected = [
        format!("{base}/img/a.png"),
        format!("{base}/img/b.jpg"),
        format!("{base}/img/c.jpg?size=large"),
        format!("{base}/other/d.webp"),
    ];
    assert_eq!(urls, expected.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(entries.iter().enumerate().all(|(i, e)| e.id == i as u64 && e.key == e.uri && e.size.is_none()));

    let bytes = source.fetch(&entries[2]).await.expect("fetch");
    assert_eq!(bytes.as_ref(), b"bytes of /img/c.jpg");

    // globs match the URL path; maxImages cuts after sorting
    let only_img = input(format!("{base}/list.txt"), &["img/*.jpg"], None, 3).list().await.expect("list");
    let keys: Vec<_> = only_img.iter().map(|e| e.key.clone()).collect();
    assert_eq!(keys, vec![format!("{base}/img/b.jpg"), format!("{base}/img/c.jpg?size=large")]);
    let cut = input(format!("{base}/list.txt"), &[], Some(1), 3).list().await.expect("list");
    assert_eq!(cut.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn transient_503_is_retried_until_200() {
    let server = TestServer::start().await;
    server.served.fail_first("/list-flaky.txt", 2);
    server.served.fail_first("/img/b.jpg", 3);
    let source = input(format!("{}/list-flaky.txt", server.base), &[], None, 4);
    let entries = source.list().await.expect("list after two 503s");
    assert_eq!(entries.len(), 4);
    assert_eq!(server.served.hits("/list-flaky.txt"), 3, "two 503s then 200");

    let b = entries.iter().find(|e| e.uri.ends_with("/img/b.jpg")).expect("b");
    assert_eq!(source.fetch(b).await.expect("fetch after three 503s").as_ref(), b"bytes of /img/b.jpg");
    assert_eq!(server.served.hits("/img/b.jpg"), 4);
    server.stop().await;
}

#[tokio::test]
async fn retries_are_bounded_and_not_found_is_not_retried() {
    let server = TestServer::start().await;
    let base = server.base.clone();
    let err = input(format!("{base}/always-503"), &[], None, 3).list().await.expect_err("always 503");
    assert!(matches!(err, StoreError::HttpStatus { status: 503, .. }), "{err:?}");
    assert_eq!(server.served.hits("/always-503"), 3, "max_tries requests in all");

    let err = input(format!("{base}/missing.txt"), &[], None, 3).list().await.expect_err("404");
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(server.served.hits("/missing.txt"), 1, "404 is not retried");

    let err = input(format!("{base}/forbidden"), &[], None, 3).list().await.expect_err("403");
    assert!(matches!(err, StoreError::HttpStatus { status: 403, .. }), "{err:?}");
    assert_eq!(server.served.hits("/forbidden"), 1, "403 is not retried");

    let err = input(format!("{base}/bad-list.txt"), &[], None, 3).list().await.expect_err("mailto line");
    assert!(matches!(err, StoreError::UrlListLine { line: 2, .. }), "{err:?}");
    server.stop().await;
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    // a port that was free a moment ago: nothing listens there
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let started = std::time::Instant::now();
    let err = input(format!("http://{addr}/list.txt"), &[], None, 3).list().await.expect_err("refused");
    assert!(matches!(&err, StoreError::Http { source, .. } if source.is_connect()), "{err:?}");
    // two jittered backoffs (at least half of 20 ms + 40 ms) were waited between the three tries
    assert!(started.elapsed() >= Duration::from_millis(30), "{:?}", started.elapsed());
}
