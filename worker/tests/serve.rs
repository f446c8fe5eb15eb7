//! `labeljob serve` against real HTTP on 127.0.0.1 with the real SSD model: metadata and
//! readiness, binary and JSON inference equal to in-process inference, every error status
//! (400, 404, 413, 429) with the server still ready afterwards, graceful shutdown draining a
//! request in flight, the client's metadata check and retries, `--device cuda` failing
//! clearly, and the engine preparing images on its inference threads. Needs libonnxruntime
//! (ORT_DYLIB_PATH or .cache/ort/lib, from scripts/fetch-ort.sh): the tests fail, not skip,
//! without it.

mod common;

use std::time::{Duration, Instant};

use common::{NAME, SIDE, engine_options, http, model, ort_lib, photo, repo, settings, start, wait_ready};
use labeljob_worker::model::{Engine, RawDetection};
use labeljob_worker::oip::client::{ClientOptions, OipClient, OipError};
use labeljob_worker::serve::Server;
use serde_json::{Value, json};
use tokio::sync::oneshot;

fn binary_request(images: &[&[u8]], shape: Value, datatype: &str) -> (Vec<u8>, usize) {
    let size: usize = images.iter().map(|i| i.len()).sum();
    let header = json!({
        "inputs": [{"name": "images", "shape": shape, "datatype": datatype,
                    "parameters": {"binary_data_size": size}}],
        "outputs": [{"name": "boxes", "parameters": {"binary_data": true}}, {"name": "classes"},
                    {"name": "scores"}, {"name": "counts"}]
    });
    let mut body = serde_json::to_vec(&header).expect("json");
    let len = body.len();
    for i in images {
        body.extend_from_slice(i);
    }
    (body, len)
}

async fn post(c: &reqwest::Client, url: &str, body: Vec<u8>, header_len: Option<usize>) -> reqwest::Response {
    let mut req = c.post(url).body(body);
    if let Some(n) = header_len {
        req = req.header("Inference-Header-Content-Length", n);
    }
    req.send().await.expect("request completes")
}

async fn error_of(resp: reqwest::Response, status: u16) -> String {
    assert_eq!(resp.status().as_u16(), status);
    let v: Value = resp.json().await.expect("JSON error body");
    v["error"].as_str().expect("error field").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_readiness_and_inference_equal_in_process() {
    let server = start(settings(64, 32 << 20)).await;
    let c = http();
    assert_eq!(c.get(server.url("/v2/health/live")).send().await.expect("live").status(), 200);
    wait_ready(&c, &server).await;
    assert_eq!(
        c.get(server.url(&format!("/v2/models/{NAME}/ready"))).send().await.expect("ready").status(),
        200
    );
    let meta: Value = c
        .get(server.url(&format!("/v2/models/{NAME}")))
        .send()
        .await
        .expect("meta")
        .json()
        .await
        .expect("json");
    assert_eq!(meta["platform"], "onnxruntime_onnx");
    assert_eq!(meta["inputs"][0], json!({"name": "images", "datatype": "UINT8", "shape": [-1, 300, 300, 3]}));
    assert_eq!(meta["outputs"][3]["name"], "counts");

    let photos = [photo("dog.jpg"), photo("horses.jpg"), photo("astronaut.png")];
    let engine = Engine::start(model(), engine_options(64)).expect("in-process engine");
    let mut expected: Vec<Vec<RawDetection>> = Vec::new();
    for p in &photos {
        expected.push(engine.detect(p.clone()).await.expect("in-process"));
    }
    assert!(expected.iter().all(|d| !d.is_empty()), "each photo has detections");

    // Binary extension through the client, one image at a time and as one batch.
    let client = OipClient::connect(&server.url(""), NAME, SIDE, SIDE, ClientOptions::default())
        .await
        .expect("connect");
    for (p, want) in photos.iter().zip(&expected) {
        assert_eq!(&client.detect_many(&[p]).await.expect("detect")[0], want);
    }
    let refs: Vec<&[u8]> = photos.iter().map(Vec::as_slice).collect();
    assert_eq!(client.detect_many(&refs).await.expect("batch"), expected);

    // JSON tensors in and out.
    let data: Vec<u8> = photos[0].clone();
    let req = json!({"id": "j1", "inputs": [{"name": "images", "shape": [1, 300, 300, 3], "datatype": "UINT8", "data": data}]});
    let resp =
        c.post(server.url(&format!("/v2/models/{NAME}/infer"))).json(&req).send().await.expect("json infer");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("inference-header-content-length").is_none());
    let body = resp.bytes().await.expect("body");
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["id"], "j1");
    let got = labeljob_worker::oip::tensors::parse_response(&body, None).expect("parse");
    assert_eq!(got[0], expected[0]);

    // Mixed: binary boxes, JSON for the rest, through the versioned route.
    let (body, n) = binary_request(&[&photos[1]], json!([1, 300, 300, 3]), "UINT8");
    let resp = post(&c, &server.url(&format!("/v2/models/{NAME}/versions/1/infer")), body, Some(n)).await;
    assert_eq!(resp.status(), 200);
    let header =
        resp.headers().get("inference-header-content-length").and_then(|h| h.to_str().ok()).map(String::from);
    let body = resp.bytes().await.expect("body");
    let got = labeljob_worker::oip::tensors::parse_response(&body, header.as_deref()).expect("parse");
    assert_eq!(got[0], expected[1]);

    let metrics = c.get(server.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    for name in [
        "labeljob_server_requests_total{code=\"200\"}",
        "labeljob_server_queue_depth",
        "labeljob_server_batch_size_bucket",
        "labeljob_server_queue_wait_seconds_bucket",
        "labeljob_server_inference_duration_seconds_bucket",
        "labeljob_server_images_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics:\n{metrics}");
    }
    server.stop().await.expect("clean stop");
}

/// `Engine::prepare_and_detect` (the in-process path of `labeljob run`): the image is prepared
/// on an inference thread, and its detections equal those of the same pixels sent ready. An
/// image that cannot be prepared, prepares to the wrong size, or whose preparation panics,
/// fails alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_prepares_images_on_its_inference_threads() {
    let engine = Engine::start(model(), engine_options(8)).expect("in-process engine");
    let dog = photo("dog.jpg");
    let want = engine.detect(dog.clone()).await.expect("ready pixels");
    assert!(!want.is_empty());
    let (tx, rx) = std::sync::mpsc::channel();
    let pixels = dog.clone();
    let prepare = Box::new(move || {
        let _ = tx.send(std::thread::current().name().map(String::from));
        Some(pixels)
    });
    assert_eq!(engine.prepare_and_detect(prepare).await.expect("prepared"), want);
    let thread = rx.recv().expect("prepare ran").unwrap_or_default();
    assert!(thread.starts_with("inference-"), "prepared on thread {thread:?}");

    let none = engine.prepare_and_detect(Box::new(|| None)).await;
    assert!(matches!(none, Err(labeljob_worker::model::InferError::Unprepared)), "{none:?}");
    let short = engine.prepare_and_detect(Box::new(|| Some(vec![0; 12]))).await;
    assert!(
        matches!(
            short,
            Err(labeljob_worker::model::InferError::BadInput { got: 12, width: SIDE, height: SIDE, .. })
        ),
        "{short:?}"
    );
    let panics = engine.prepare_and_detect(Box::new(|| panic!("a decoder bug"))).await;
    assert!(matches!(panics, Err(labeljob_worker::model::InferError::Unprepared)), "{panics:?}");
    // The engine (its one inference thread included) goes on after them.
    assert_eq!(engine.detect(dog).await.expect("after"), want);
}

/// `Engine::start` loads its sessions side by side: with three sessions, three images are
/// prepared at the same moment on three inference threads and each answers as a one-session
/// engine does; a model that cannot load is one error from `start`, whichever loading thread
/// met it, not a hang or a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_load_side_by_side_and_a_bad_model_is_one_error() {
    use std::sync::{Arc, Condvar, Mutex};
    let dog = photo("dog.jpg");
    let one = Engine::start(model(), engine_options(8)).expect("one session");
    let want = one.detect(dog.clone()).await.expect("one session detects");
    assert!(!want.is_empty());
    let opts = labeljob_worker::model::EngineOptions {
        sessions: 3,
        threads_per_session: 1,
        max_batch: 1,
        ..engine_options(16)
    };
    let three = Engine::start(model(), opts.clone()).expect("three sessions");
    // Each preparation waits (10 s at most) until three are running at once: only three
    // live inference threads can get there.
    let met: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let (engine, pixels, met) = (three.clone(), dog.clone(), met.clone());
            let prepare = Box::new(move || {
                let (names, cv) = &*met;
                let mut names = names.lock().expect("names");
                names.push(std::thread::current().name().unwrap_or_default().to_string());
                cv.notify_all();
                let (names, _) =
                    cv.wait_timeout_while(names, Duration::from_secs(10), |n| n.len() < 3).expect("wait");
                (names.len() >= 3).then_some(pixels)
            });
            tokio::spawn(async move { engine.prepare_and_detect(prepare).await })
        })
        .collect();
    for run in runs {
        assert_eq!(run.await.expect("join").expect("three sessions at once"), want);
    }
    let mut names = met.0.lock().expect("names").clone();
    names.sort();
    assert_eq!(names, ["inference-0", "inference-1", "inference-2"]);

    let dir = tempfile::tempdir().expect("tempdir");
    let mut bad = model();
    bad.path = dir.path().join("not-a-model.onnx");
    std::fs::write(&bad.path, b"this is not an ONNX graph").expect("write");
    let err = Engine::start(bad, opts).expect_err("a bad model does not load");
    assert!(matches!(err, labeljob_worker::model::session::SessionError::Ort(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_map_to_statuses_and_the_server_stays_ready() {
    let server = start(settings(8, 2 << 20)).await;
    let c = http();
    wait_ready(&c, &server).await;
    let infer = server.url(&format!("/v2/models/{NAME}/infer"));
    let img = vec![7u8; 300 * 300 * 3];

    let e = error_of(post(&c, &server.url("/v2/models/yolo/infer"), b"{}".to_vec(), None).await, 404).await;
    assert!(e.contains("yolo"), "{e}");
    assert_eq!(c.get(server.url("/v2/models/yolo")).send().await.expect("meta").status(), 404);
    let e = error_of(post(&c, &infer, b"{\"inputs\": [".to_vec(), None).await, 400).await;
    assert!(e.contains("JSON"), "{e}");
    let (body, n) = binary_request(&[&img[..200 * 300 * 3]], json!([1, 200, 300, 3]), "UINT8");
    let e = error_of(post(&c, &infer, body, Some(n)).await, 400).await;
    assert!(e.contains("inputs[0].shape"), "{e}");
    let (body, n) = binary_request(&[&img], json!([1, 300, 300, 3]), "FP32");
    let e = error_of(post(&c, &infer, body, Some(n)).await, 400).await;
    assert!(e.contains("inputs[0].datatype"), "{e}");
    let (body, n) = binary_request(&[&img[..1000]], json!([1, 300, 300, 3]), "UINT8");
    let e = error_of(post(&c, &infer, body, Some(n)).await, 400).await;
    assert!(e.contains("binary_data_size"), "{e}");
    let e = error_of(post(&c, &infer, b"{\"inputs\": []}".to_vec(), None).await, 400).await;
    assert!(e.contains("inputs"), "{e}");
    let many: Vec<&[u8]> = (0..9).map(|_| img.as_slice()).collect();
    let (body, n) = binary_request(&many, json!([9, 300, 300, 3]), "UINT8");
    let e = error_of(post(&c, &infer, body, Some(n)).await, 413).await;
    assert!(e.contains("--max-body-bytes"), "{e}");

    // Overfull queue: eight requests of four images on a queue of eight.
    let (body, n) = binary_request(&many[..4], json!([4, 300, 300, 3]), "UINT8");
    let mut sent = Vec::new();
    for _ in 0..8 {
        let (c, url, body) = (c.clone(), infer.clone(), body.clone());
        sent.push(tokio::spawn(async move {
            let r = post(&c, &url, body, Some(n)).await;
            let retry = r.headers().get("retry-after").and_then(|h| h.to_str().ok()).map(String::from);
            (r.status().as_u16(), retry, r.bytes().await.expect("body"))
        }));
    }
    let (mut ok, mut busy) = (0, 0);
    for t in sent {
        let (status, retry, body) = t.await.expect("join");
        match status {
            200 => ok += 1,
            429 => {
                busy += 1;
                assert_eq!(retry.as_deref(), Some("1"));
                let v: Value = serde_json::from_slice(&body).expect("json");
                assert!(v["error"].as_str().is_some_and(|e| e.contains("queue is full")), "{v}");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(ok >= 1 && busy >= 1, "{ok} answered, {busy} refused");

    assert_eq!(c.get(server.url("/v2/health/ready")).send().await.expect("ready").status(), 200);
    let (body, n) = binary_request(&[&img], json!([1, 300, 300, 3]), "UINT8");
    assert_eq!(post(&c, &infer, body, Some(n)).await.status(), 200);
    let metrics = c.get(server.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    for code in [400, 404, 413, 429] {
        assert!(metrics.contains(&format!("labeljob_server_requests_total{{code=\"{code}\"}}")), "{code}");
    }
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_requests_in_flight() {
    let server = start(settings(64, 32 << 20)).await;
    let c = http();
    wait_ready(&c, &server).await;
    let img = vec![9u8; 300 * 300 * 3];
    let many: Vec<&[u8]> = (0..24).map(|_| img.as_slice()).collect();
    let (body, n) = binary_request(&many, json!([24, 300, 300, 3]), "UINT8");
    let url = server.url(&format!("/v2/models/{NAME}/infer"));
    let in_flight = tokio::spawn({
        let c = c.clone();
        async move { post(&c, &url, body, Some(n)).await.status().as_u16() }
    });
    // Stop only once the server holds the request (24 images queued or running).
    let metrics = server.url("/metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = c.get(&metrics).send().await.expect("metrics").text().await.expect("text");
        let depth = text
            .lines()
            .find_map(|l| l.strip_prefix("labeljob_server_queue_depth "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        if depth.is_some_and(|d| d > 0.0) {
            break;
        }
        assert!(Instant::now() < deadline, "the request never reached the queue");
        tokio::task::yield_now().await;
    }
    let addr = server.addr;
    let started = Instant::now();
    server.stop().await.expect("clean stop");
    assert_eq!(in_flight.await.expect("join"), 200, "the request in flight was answered");
    assert!(started.elapsed() > Duration::from_millis(20), "the server waited for it");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer listening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_checks_the_model_and_retries_within_its_budget() {
    // First a listener that hangs up on every connection: the client retries; once it has
    // come back twice, the real server takes the port.
    let gate = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = gate.local_addr().expect("addr").port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let connecting = tokio::spawn({
        let endpoint = endpoint.clone();
        async move { OipClient::connect(&endpoint, NAME, SIDE, SIDE, ClientOptions::default()).await }
    });
    for _ in 0..2 {
        let (conn, _) = tokio::time::timeout(Duration::from_secs(60), gate.accept())
            .await
            .expect("the client tries again")
            .expect("accept");
        drop(conn);
    }
    drop(gate);
    assert!(!connecting.is_finished(), "the client is still retrying");
    let server = Server::bind(&format!("127.0.0.1:{port}"), settings(64, 32 << 20)).await.expect("bind");
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    let client = connecting.await.expect("join").expect("connected after retries");
    assert_eq!(client.detect_many(&[&vec![0u8; 300 * 300 * 3]]).await.expect("detect").len(), 1);

    let err =
        OipClient::connect(&endpoint, NAME, 320, 320, ClientOptions::default()).await.expect_err("fails");
    assert!(matches!(err, OipError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("[-1, 300, 300, 3]"), "{err}");
    let started = Instant::now();
    let err =
        OipClient::connect(&endpoint, "nope", SIDE, SIDE, ClientOptions::default()).await.expect_err("fails");
    assert!(matches!(err, OipError::Status { status: 404, .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "a 404 is not retried");
    let _ = tx.send(());
    task.await.expect("join").expect("clean stop");

    let opts = ClientOptions { retry_budget: Duration::from_millis(800), ..ClientOptions::default() };
    let started = Instant::now();
    let err = OipClient::connect(&endpoint, NAME, SIDE, SIDE, opts).await.expect_err("fails");
    assert!(matches!(err, OipError::GaveUp { attempts, .. } if attempts > 1), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "the retry budget bounds the wait");
}

#[test]
fn device_cuda_fails_clearly_and_exits_non_zero() {
    let lib = ort_lib();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_labeljob"))
        .args(["serve", "--host", "127.0.0.1", "--port", "0", "--device", "cuda"])
        .env("ORT_DYLIB_PATH", &lib)
        .env("LABELJOB_MODELS_DIR", repo().join("models"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn labeljob serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("labeljob serve --device cuda kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("read");
    assert!(!status.success(), "exit status {status}");
    assert!(stderr.contains("cuda"), "stderr: {stderr}");
}
