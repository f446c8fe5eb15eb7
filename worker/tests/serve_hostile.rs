//! `labeljob serve` against hostile clients on 127.0.0.1, with the real SSD model: a huge
//! declared shape is a 400 (not an abort), a huge `Content-Length` a 413 before any body byte,
//! a body that never finishes a 408, requests beyond the memory budget a 429, stalled headers
//! and idle connections are closed, and a thousand slow connections leave `/v2/health/ready`
//! answering in under 100 ms with RSS bounded. Every wait polls with a deadline.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{NAME, http, start, wait_ready, with_limits};
use labeljob_worker::serve::Limits;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Open a connection and send `bytes` (a request, or the start of one).
async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("send");
    s
}

/// What the server sends before closing or within `limit`: the bytes read, whether it
/// closed, and when (since `since`).
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

fn infer_head(content_length: usize) -> String {
    format!(
        "POST /v2/models/{NAME}/infer HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n"
    )
}

/// One image as a binary-extension request.
fn one_image() -> (Vec<u8>, usize) {
    let header = json!({"inputs": [{"name": "images", "shape": [1, 300, 300, 3], "datatype": "UINT8",
                                     "parameters": {"binary_data_size": 270_000}}]});
    let mut body = serde_json::to_vec(&header).expect("json");
    let n = body.len();
    body.resize(n + 270_000, 7);
    (body, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_shapes_are_400_and_the_server_lives_on() {
    let server = start(with_limits(8, Limits::default())).await;
    let c = http();
    wait_ready(&c, &server).await;
    let infer = server.url(&format!("/v2/models/{NAME}/infer"));
    // The request: used to abort with "memory allocation of 270000000000 bytes failed".
    for (shape, want) in [
        (json!([1_000_000, 300, 300, 3]), "1000000 images in one request"),
        (json!([i64::MAX, 300, 300, 3]), "images in one request"),
        (json!([8, 300, 300, 3]), "inputs[0].data: 1 values for a shape of 2160000"),
    ] {
        let req = json!({"inputs": [{"name": "images", "shape": shape, "datatype": "UINT8", "data": [0]}]});
        let resp = c.post(&infer).json(&req).send().await.expect("answered");
        assert_eq!(resp.status(), 400, "{shape}");
        let v: Value = resp.json().await.expect("json");
        let e = v["error"].as_str().expect("error");
        assert!(e.contains(want), "{shape}: {e}");
    }
    let (mut body, n) = one_image();
    body.truncate(n);
    let json = String::from_utf8(body).expect("utf8").replace("270000", "18446744073709551615");
    let resp = c.post(&infer).header("Inference-Header-Content-Length", json.len()).body(json).send().await;
    assert_eq!(resp.expect("answered").status(), 400);
    let (body, n) = one_image();
    let resp = c.post(&infer).header("Inference-Header-Content-Length", n).body(body).send().await;
    assert_eq!(resp.expect("answered").status(), 200, "still serving");
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_over_the_limit_is_413_before_the_body() {
    let server = start(with_limits(8, Limits::default())).await;
    wait_ready(&http(), &server).await;
    let started = Instant::now();
    let mut s = send_raw(server.addr, infer_head(2_000_000_000).as_bytes()).await;
    let (text, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    println!("2 GB Content-Length, no body: answered in {:?}", started.elapsed());
    assert!(text.starts_with("HTTP/1.1 413"), "{text:?}");
    assert!(text.contains("--max-body-bytes"), "{text:?}");
    assert!(closed, "the connection is closed, the body never read");
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_its_body_reads_the_413() {
    // 16 MiB over a 1 MiB limit, written to the end after the server has answered from the
    // headers: without a lingering close the writes fail (broken pipe / reset) and the answer
    // is lost, as a client like tritonclient sees it.
    let server = start(with_limits(8, Limits { max_body_bytes: 1 << 20, ..Limits::default() })).await;
    wait_ready(&http(), &server).await;
    let body = vec![7u8; 16 << 20];
    let mut s = send_raw(server.addr, infer_head(body.len()).as_bytes()).await;
    for chunk in body.chunks(64 << 10) {
        s.write_all(chunk).await.expect("the server keeps reading what it refused");
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            other => panic!("no answer: {other:?} after {:?}", String::from_utf8_lossy(&got)),
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 413"), "{text:?}");
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_time_out_and_the_budget_answers_429() {
    let limits = Limits {
        max_body_bytes: 1 << 20,
        max_buffered_bytes: 2 << 20,
        // Long enough that the 429 below is seen while the slow body still holds the budget,
        // also when other tests load the machine.
        body_timeout: Duration::from_millis(6000),
        ..Limits::default()
    };
    let server = start(with_limits(8, limits)).await;
    let c = http();
    wait_ready(&c, &server).await;
    let infer = server.url(&format!("/v2/models/{NAME}/infer"));
    // A 1 MiB body that trickles in: it reserves the whole 2 MiB budget. Other tests of this
    // binary hold many sockets, so wait until the server has accepted it (not for a time).
    let metrics = server.url("/metrics");
    let open = || async {
        let text = c.get(&metrics).send().await.expect("metrics").text().await.expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix("labeljob_server_open_connections "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let before = open().await;
    let started = Instant::now();
    let mut slow = send_raw(server.addr, format!("{}{{\"inp", infer_head(1 << 20)).as_bytes()).await;
    let accepted = Instant::now() + Duration::from_secs(60);
    while open().await <= before {
        assert!(Instant::now() < accepted, "the slow connection was never accepted");
        tokio::task::yield_now().await;
    }
    let (body, n) = one_image();
    let deadline = Instant::now() + Duration::from_secs(6);
    let busy = loop {
        let r = c.post(&infer).header("Inference-Header-Content-Length", n).body(body.clone()).send().await;
        let r = r.expect("answered");
        if r.status() == 429 {
            break r;
        }
        assert!(Instant::now() < deadline, "never refused: {}", r.status());
    };
    assert_eq!(busy.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let e = busy.text().await.expect("body");
    assert!(e.contains("--max-buffered-bytes"), "{e}");
    let (text, closed) = read_until_closed(&mut slow, Duration::from_secs(30)).await;
    let took = started.elapsed();
    println!("slow body answered {:?} after {took:?}", text.lines().next());
    assert!(text.starts_with("HTTP/1.1 408") && closed, "{text:?}");
    // At least the body timeout; the upper bound only catches a timeout that never fires.
    assert!(took >= Duration::from_millis(5900) && took < Duration::from_secs(30), "{took:?}");
    let r = c.post(&infer).header("Inference-Header-Content-Length", n).body(body).send().await;
    assert_eq!(r.expect("answered").status(), 200, "the budget is free again");
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_headers_and_idle_connections_are_closed() {
    let limits = Limits { header_timeout: Duration::from_millis(500), ..Limits::default() };
    let server = start(with_limits(8, limits)).await;
    wait_ready(&http(), &server).await;
    let started = Instant::now();
    let mut idle = send_raw(server.addr, b"").await;
    let mut stalled = send_raw(server.addr, b"GET /v2/health/ready HTTP/1.1\r\nHost:").await;
    // A keep-alive connection after its answer counts as idle too.
    let mut kept = send_raw(server.addr, b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n").await;
    for (name, s) in [("idle", &mut idle), ("stalled", &mut stalled), ("kept-alive", &mut kept)] {
        let (_, closed) = read_until_closed(s, Duration::from_secs(5)).await;
        let took = started.elapsed();
        println!("{name} connection closed after {took:?}");
        assert!(closed, "{name} still open after 5 s");
        assert!(took >= Duration::from_millis(450), "{name} closed too early: {took:?}");
    }
    server.stop().await.expect("clean stop");
}

/// A fake OIP server whose infer answer is chosen by the model name.
async fn hostile_server() -> SocketAddr {
    use axum::extract::Path;
    use axum::routing::{get, post};
    let answer = |name: &str| -> Vec<u8> {
        let out = |n: &str, t: &str, shape: Value, data: Value| json!({"name": n, "datatype": t, "shape": shape, "data": data});
        let outputs = match name {
            // 1.2e12 elements declared, one sent: used to abort allocating 9.6 TB.
            "huge" => vec![out("boxes", "FP32", json!([1_000_000, 300_000, 4]), json!([0.0]))],
            "negative" | "beyond" => vec![
                out("boxes", "FP32", json!([1, 1, 4]), json!([0.1, 0.1, 0.5, 0.5])),
                out("classes", "INT32", json!([1, 1]), json!([if name == "negative" { -1 } else { 0 }])),
                out("scores", "FP32", json!([1, 1]), json!([0.9])),
                out("counts", "INT32", json!([1]), json!([if name == "beyond" { 5 } else { 1 }])),
            ],
            _ => return vec![b' '; 2 << 20],
        };
        serde_json::to_vec(&json!({"model_name": name, "outputs": outputs})).expect("json")
    };
    let app = axum::Router::new()
        .route(
            "/v2/models/{name}",
            get(|Path(name): Path<String>| async move {
                axum::Json(labeljob_worker::oip::protocol::model_metadata(&name, 300, 300))
            }),
        )
        .route("/v2/models/{name}/infer", post(move |Path(name): Path<String>| async move { answer(&name) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_refuses_hostile_answers() {
    use labeljob_worker::oip::client::{ClientOptions, OipClient, OipError};
    let addr = hostile_server().await;
    let opts = ClientOptions { max_response_bytes: 1 << 20, ..ClientOptions::default() };
    let img = vec![0u8; 300 * 300 * 3];
    for (model, want) in [
        ("huge", "outputs[0].data: 1 values for a shape of 1200000000000"),
        ("negative", "outputs.classes[0][0]: -1 is negative"),
        ("beyond", "outputs.counts[0]: 5 is not a count within K = 1"),
        ("big", "the answer is larger than 1048576 bytes"),
    ] {
        let client = OipClient::connect(&format!("http://{addr}"), model, 300, 300, opts.clone())
            .await
            .expect("connect");
        let started = Instant::now();
        let err = client.detect_many(&[&img]).await.expect_err(model);
        let chain = match &err {
            OipError::Protocol { source, .. } => format!("{err}: {source}"),
            other => other.to_string(),
        };
        println!("{model}: {chain}");
        assert!(matches!(err, OipError::Protocol { .. } | OipError::TooLarge { .. }), "{model}: {err}");
        assert!(chain.contains(want), "{model}: {chain}");
        assert!(started.elapsed() < Duration::from_secs(2), "{model}: not retried");
    }
}
