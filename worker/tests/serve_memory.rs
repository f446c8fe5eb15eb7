//! What `labeljob serve` costs in memory, measured on this process (`/proc/self/status`), so
//! these tests have their own binary and run one at a time. A thousand connections on
//! 127.0.0.1 (a third silent, a third with half-sent headers, a third with a body that never
//! comes), more than `--max-connections`, leave `/v2/health/ready` answering in under 100 ms
//! on a fresh connection, the open connections at the cap and RSS growth under a stated bound;
//! the flood is a bounded number of sockets and ends by itself. The same flood against the
//! `labeljob serve` binary under `ulimit -n 512` (fewer descriptors than connections, the
//! default --max-connections above the limit) leaves health as fast. A JSON tensor request
//! raises the peak RSS by about twice its text, not by the ~25x a `serde_json::Value` tree took.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{NAME, http, ort_lib, repo, start, wait_ready, with_limits};
use labeljob_worker::serve::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("send");
    s
}

/// `/v2/health/ready` on a fresh connection: the status code and the time to answer.
async fn ready_on_new_connection(addr: SocketAddr) -> (u16, Duration) {
    let started = Instant::now();
    let mut s =
        send_raw(addr, b"GET /v2/health/ready HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await;
    let mut text = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut text)).await;
    assert!(matches!(read, Ok(Ok(_))), "health answered and closed within 5 s");
    let code = String::from_utf8_lossy(&text).get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, started.elapsed())
}

/// One memory-measuring test at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// A `kB` field of /proc/self/status (VmRSS: now, VmHWM: peak).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

fn vm_rss_kib() -> u64 {
    status_kib("VmRSS")
}

/// Open `n` slow connections: a third silent, a third with half-sent headers, a third with a
/// 300 kB infer body of which 10 bytes are sent.
async fn flood(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let slow_body = format!(
        "POST /v2/models/{NAME}/infer HTTP/1.1\r\nHost: t\r\nContent-Length: 300000\r\n\r\n{{\"inputs\":"
    );
    let mut open = Vec::with_capacity(n);
    for i in 0..n {
        let bytes: &[u8] = match i % 3 {
            0 => b"",
            1 => b"POST /v2/models/x/infer HTTP/1.1\r\nHost: t\r\nX-Slow",
            _ => slow_body.as_bytes(),
        };
        open.push(send_raw(addr, bytes).await);
    }
    open
}

/// The worst of 20 `/v2/health/ready` answers on fresh connections (each must be 200).
async fn worst_ready(addr: SocketAddr) -> Duration {
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let (code, took) = ready_on_new_connection(addr).await;
        assert_eq!(code, 200, "health answered");
        worst = worst.max(took);
    }
    worst
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_connections_than_file_descriptors_leave_health_fast() {
    let _serial = SERIAL.lock().await;
    let lib = ort_lib();
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut child = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 512 && exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_labeljob")])
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string(), "--header-timeout-seconds", "30"])
        .env("ORT_DYLIB_PATH", &lib)
        .env("LABELJOB_MODELS_DIR", repo().join("models"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn labeljob serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    while ready_status(addr).await != Some(200) {
        assert!(Instant::now() < deadline, "labeljob serve not ready within 60 s");
        assert!(child.try_wait().expect("wait").is_none(), "labeljob serve exited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("status");
        status.lines().find_map(|l| l.strip_prefix("VmRSS:")).map(|v| v.trim().to_string())
    };
    let before = rss();
    let open = flood(addr, 1000).await;
    let worst = worst_ready(addr).await;
    let after = rss();
    println!(
        "labeljob serve under ulimit -n 512, 1000 slow connections: health worst of 20 {worst:?}; RSS {before:?} -> {after:?}"
    );
    drop(open);
    let _ = child.kill();
    let _ = child.wait();
    assert!(worst < Duration::from_millis(100), "health took {worst:?}");
}

/// `/v2/health/ready` once, if the server answers at all.
async fn ready_status(addr: SocketAddr) -> Option<u16> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /v2/health/ready HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.ok()?;
    let mut text = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut text)).await.ok()?.ok()?;
    String::from_utf8_lossy(&text).get(9..12)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_tensor_costs_about_twice_its_text() {
    let _serial = SERIAL.lock().await;
    let server = start(with_limits(8, Limits::default())).await;
    let c = http();
    wait_ready(&c, &server).await;
    // Eight images as JSON numbers "7,": 4.3 MB of text, built without a Value tree.
    let elements = 8 * 300 * 300 * 3;
    let body = format!(
        "{{\"inputs\": [{{\"name\": \"images\", \"shape\": [8, 300, 300, 3], \"datatype\": \"UINT8\", \"data\": [{}7]}}]}}",
        "7,".repeat(elements - 1)
    );
    let text_kib = (body.len() / 1024) as u64;
    // Reset the peak (VmHWM) to the current RSS, then send it.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    let base = status_kib("VmHWM");
    let url = server.url(&format!("/v2/models/{NAME}/infer"));
    let resp = c.post(&url).header("content-type", "application/json").body(body).send().await;
    assert_eq!(resp.expect("answered").status(), 200);
    let peak = status_kib("VmHWM").saturating_sub(base);
    println!(
        "JSON request of {} KiB: peak RSS +{peak} KiB ({:.2}x the text)",
        text_kib,
        peak as f64 / text_kib as f64
    );
    assert!(peak < 4 * text_kib, "peak RSS grew {peak} KiB for {text_kib} KiB of JSON");
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_slow_connections_leave_health_fast_and_memory_bounded() {
    let _serial = SERIAL.lock().await;
    const CONNECTIONS: usize = 1000;
    const MAX_CONNECTIONS: usize = 512;
    /// Growth of this process's RSS allowed while the connections are open.
    const RSS_GROWTH_BOUND_KIB: u64 = 48 << 10;
    /// RSS of the whole test process (model, server, both ends of every socket) allowed.
    const RSS_BOUND_KIB: u64 = 256 << 10;
    let limits = Limits {
        header_timeout: Duration::from_secs(20),
        body_timeout: Duration::from_secs(20),
        max_connections: MAX_CONNECTIONS,
        ..Limits::default()
    };
    let server = start(with_limits(8, limits)).await;
    wait_ready(&http(), &server).await;
    let (code, _) = ready_on_new_connection(server.addr).await;
    assert_eq!(code, 200);
    let rss_before = vm_rss_kib();
    let started = Instant::now();
    let open = flood(server.addr, CONNECTIONS).await;
    let opened = started.elapsed();
    let worst = worst_ready(server.addr).await;
    let rss_after = vm_rss_kib();
    let metrics =
        http().get(server.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let line = |name: &str| metrics.lines().find(|l| l.starts_with(name)).unwrap_or("").to_string();
    println!(
        "{CONNECTIONS} slow connections opened in {opened:?}; /v2/health/ready worst of 20: {worst:?}; \
         RSS {} -> {} MiB; {}; {}",
        rss_before >> 10,
        rss_after >> 10,
        line("labeljob_server_open_connections"),
        line("labeljob_server_evicted_connections_total"),
    );
    assert!(worst < Duration::from_millis(100), "health took {worst:?}");
    assert!(
        rss_after.saturating_sub(rss_before) < RSS_GROWTH_BOUND_KIB,
        "RSS grew {} KiB",
        rss_after - rss_before
    );
    assert!(rss_after < RSS_BOUND_KIB, "RSS {rss_after} KiB");
    let open_now: usize = line("labeljob_server_open_connections")
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("open connections gauge");
    assert!(open_now <= MAX_CONNECTIONS, "{open_now} open");
    drop(open);
    server.stop().await.expect("clean stop");
}
