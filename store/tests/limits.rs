//! Input downloads are bounded (issue: hardening, cases 5 and 12): an image over the size limit
//! is refused from its declared size (file size, S3 object size, `Content-Length`) before its
//! body is read, or cut off as soon as an undeclared body passes the limit; a server that
//! accepts and never answers costs one read timeout per attempt and the image's deadline in
//! all (`input.timeouts`), for URL lists and S3 alike.
//!
//! The servers here are raw TCP listeners on 127.0.0.1 (started and dropped by each test) that
//! answer just enough HTTP for each case: a URL list, a response declaring 2 GiB and never
//! sending it, an endless chunked body, a request never answered. The timeouts are the test's
//! own (1–3 s); no test sleeps.

use std::time::Duration;

use labeljob_api::v1alpha1::{DownloadTimeouts, InputSpec};
use labeljob_store::{InputSource, Location, ManifestEntry, RetryPolicy, StoreError, StoreOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

const LIMIT: u64 = 1 << 20;
const TWO_GIB: u64 = 2 << 30;

/// A raw HTTP/1.1 server; every connection is answered by [`answer`] (by request path). Its
/// tasks end when it is dropped.
struct RawServer {
    addr: std::net::SocketAddr,
    _tasks: JoinSet<()>,
}

impl RawServer {
    async fn start() -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                conns.spawn(answer(stream, addr));
            }
        });
        RawServer { addr, _tasks: tasks }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Read one request head and answer it by path.
async fn answer(mut stream: TcpStream, addr: std::net::SocketAddr) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let file = path.rsplit('/').next().unwrap_or_default();
    let meta = "Last-Modified: Mon, 01 Dec 2025 00:00:00 GMT\r\nETag: \"abc\"\r\n";
    match file {
        "list.txt" => {
            let body = ["declared.jpg", "chunked.jpg", "small.jpg", "hang.jpg"]
                .map(|n| format!("http://{addr}/img/{n}\n"))
                .concat();
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            let _ = stream.write_all(format!("{head}{body}").as_bytes()).await;
        }
        "small.jpg" => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmall").await;
        }
        "declared.jpg" => {
            // declares 2 GiB and sends none of it: only the headers may be waited for
            let head = format!("HTTP/1.1 200 OK\r\n{meta}Content-Length: {TWO_GIB}\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            std::future::pending::<()>().await;
        }
        "hang.jpg" => std::future::pending::<()>().await,
        "chunked.jpg" => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").await;
            let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
            while stream.write_all(chunk.as_bytes()).await.is_ok() {}
        }
        _ => {
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").await;
        }
    }
}

fn spec(uri: String) -> InputSpec {
    InputSpec {
        uri,
        include: Vec::new(),
        exclude: Vec::new(),
        credentials: None,
        max_images: None,
        allow_private_networks: true,
        dedup: Default::default(),
        timeouts: Default::default(),
    }
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_tries: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        ..RetryPolicy::default()
    }
}

/// Run `f`, failing the test (instead of hanging it) if it takes more than a minute.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f).await.unwrap_or_else(|_| panic!("{what} hung"))
}

#[tokio::test]
async fn a_sparse_2_gib_file_is_refused_from_its_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = std::fs::File::create(dir.path().join("big.jpg")).expect("create");
    big.set_len(TWO_GIB).expect("sparse file");
    std::fs::write(dir.path().join("small.jpg"), b"small").expect("write");
    let uri = format!("file://{}", dir.path().display());
    let input = InputSource::new(&spec(uri.clone())).expect("input");
    let entries = input.list().await.expect("list");
    assert_eq!(entries.len(), 2);
    let err = input.fetch_capped(&entries[0], LIMIT).await.expect_err("over the limit");
    assert!(matches!(err, StoreError::TooLarge { size: Some(TWO_GIB), limit: LIMIT, .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("{uri}/big.jpg: {TWO_GIB} bytes exceeds the limit of {LIMIT} bytes"));
    assert_eq!(input.fetch_capped(&entries[1], LIMIT).await.expect("small").as_ref(), b"small");
    let loc = Location::parse(&uri).expect("location");
    let err = loc.get_capped("big.jpg", LIMIT).await.expect_err("object size");
    assert!(matches!(err, StoreError::TooLarge { size: Some(TWO_GIB), .. }), "{err:?}");
}

#[tokio::test]
async fn url_bodies_are_refused_from_content_length_or_cut_off() {
    let server = RawServer::start().await;
    let options = StoreOptions { retry: quick(), ..StoreOptions::default() };
    let input = InputSource::with_options(&spec(server.url("/list.txt")), &options).expect("input");
    let entries = input.list().await.expect("list");
    let by_name =
        |name: &str| -> &ManifestEntry { entries.iter().find(|e| e.key.ends_with(name)).expect("listed") };
    let err =
        bounded("declared", input.fetch_capped(by_name("declared.jpg"), LIMIT)).await.expect_err("2 GiB");
    assert!(matches!(err, StoreError::TooLarge { size: Some(TWO_GIB), .. }), "{err:?}");
    assert!(
        err.to_string().contains("/img/declared.jpg: 2147483648 bytes exceeds the limit of 1048576"),
        "{err}"
    );
    let err =
        bounded("chunked", input.fetch_capped(by_name("chunked.jpg"), LIMIT)).await.expect_err("endless");
    assert!(matches!(err, StoreError::TooLarge { size: None, .. }), "{err:?}");
    assert!(
        err.to_string().ends_with("/img/chunked.jpg: the body exceeds the limit of 1048576 bytes"),
        "{err}"
    );
    assert_eq!(input.fetch_capped(by_name("small.jpg"), LIMIT).await.expect("small").as_ref(), b"small");
}

#[tokio::test]
async fn an_s3_object_over_the_limit_is_refused_from_its_size() {
    let server = RawServer::start().await;
    let options = StoreOptions {
        retry: quick(),
        ..StoreOptions::from_vars([
            ("AWS_ACCESS_KEY_ID", "key"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", server.url("").as_str()),
            ("AWS_ALLOW_HTTP", "true"),
        ])
    };
    let loc = Location::parse_with("s3://bucket/img", &options).expect("s3");
    let err = bounded("s3 get", loc.get_capped("declared.jpg", LIMIT)).await.expect_err("2 GiB object");
    assert!(matches!(err, StoreError::TooLarge { size: Some(TWO_GIB), .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("s3://bucket/img/declared.jpg: {TWO_GIB} bytes exceeds the limit of {LIMIT} bytes")
    );
}

/// The timeouts of an input that waits `read` seconds for bytes and `deadline` per image.
fn timeouts(read: u32, deadline: u32) -> DownloadTimeouts {
    DownloadTimeouts { connect_seconds: 1, read_seconds: read, deadline_seconds: deadline }
}

fn retries(max_tries: u32) -> StoreOptions {
    StoreOptions { retry: RetryPolicy { max_tries, ..quick() }, ..StoreOptions::default() }
}

#[tokio::test]
async fn a_url_that_never_answers_costs_the_read_timeout_and_then_the_deadline() {
    let server = RawServer::start().await;
    let hang = |t: DownloadTimeouts, tries: u32| {
        let spec = InputSpec { timeouts: t, ..spec(server.url("/list.txt")) };
        InputSource::with_options(&spec, &retries(tries)).expect("input")
    };
    // two attempts, each cut by the 1 s read timeout (not the request timeout)
    let input = hang(timeouts(1, 60), 2);
    let entries = input.list().await.expect("list");
    let entry = entries.iter().find(|e| e.key.ends_with("/hang.jpg")).expect("listed").clone();
    let err = bounded("read timeout", input.fetch(&entry)).await.expect_err("no answer");
    assert!(matches!(&err, StoreError::Http { source, .. } if source.is_timeout()), "{err:?}");
    // endless retries are cut by the 3 s deadline of the image
    let input = hang(timeouts(1, 3), 1000);
    input.list().await.expect("list");
    let err = bounded("deadline", input.fetch(&entry)).await.expect_err("no answer");
    assert!(matches!(err, StoreError::Deadline { seconds: 3, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: not downloaded within the deadline of 3 s (input.timeouts.deadlineSeconds), retries included",
            entry.uri
        )
    );
}

#[tokio::test]
async fn an_s3_store_that_never_answers_costs_the_deadline() {
    let server = RawServer::start().await;
    let options = StoreOptions {
        retry: RetryPolicy { max_tries: 1000, ..quick() },
        ..StoreOptions::from_vars([
            ("AWS_ACCESS_KEY_ID", "key"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", server.url("").as_str()),
            ("AWS_ALLOW_HTTP", "true"),
        ])
    };
    let spec = InputSpec { timeouts: timeouts(1, 2), ..spec("s3://bucket/img".into()) };
    let input = InputSource::with_options(&spec, &options).expect("input");
    let entry = ManifestEntry {
        id: 0,
        key: "hang.jpg".into(),
        uri: "s3://bucket/img/hang.jpg".into(),
        size: None,
        etag: None,
    };
    let err = bounded("s3 deadline", input.fetch(&entry)).await.expect_err("no answer");
    assert!(matches!(err, StoreError::Deadline { seconds: 2, .. }), "{err:?}");
    assert!(err.to_string().starts_with("s3://bucket/img/hang.jpg: not downloaded within"), "{err}");
}
