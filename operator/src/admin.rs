//! The admin server (axum): `/healthz` (the process is up), `/readyz` (the controller runs and
//! holds the leader Lease, or election is off) and `/metrics` (Prometheus text format).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// What `/readyz` reports.
#[derive(Debug)]
pub struct Health {
    controller_running: AtomicBool,
    leader: AtomicBool,
    leader_required: bool,
}

impl Health {
    /// Health of a process that does (or does not) need to hold the leader Lease.
    pub fn new(leader_required: bool) -> Self {
        Health { controller_running: AtomicBool::new(false), leader: AtomicBool::new(false), leader_required }
    }

    /// Record whether the controller loop is running.
    pub fn set_controller_running(&self, running: bool) {
        self.controller_running.store(running, Ordering::SeqCst);
    }

    /// Record whether this replica holds the Lease.
    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::SeqCst);
    }

    /// Ready once the controller runs and the Lease is held or not required.
    pub fn ready(&self) -> bool {
        self.controller_running.load(Ordering::SeqCst)
            && (!self.leader_required || self.leader.load(Ordering::SeqCst))
    }
}

#[derive(Clone)]
struct AdminState {
    health: Arc<Health>,
    registry: Arc<Registry>,
}

/// The admin routes.
pub fn router(health: Arc<Health>, registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(AdminState { health, registry })
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    if s.health.ready() {
        (StatusCode::OK, "ready")
    } else if !s.health.controller_running.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "controller not running")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "waiting for the leader lease")
    }
}

async fn metrics(State(s): State<AdminState>) -> impl IntoResponse {
    match crate::metrics::encode(&s.registry) {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
            text,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics").into_response(),
    }
}

/// Serve the admin routes on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    health: Arc<Health>,
    registry: Arc<Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(health, registry)).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connects");
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("writes");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("reads");
        out
    }

    #[tokio::test]
    async fn readyz_follows_controller_and_lease() {
        let (registry, metrics) = crate::metrics::Metrics::new_registry();
        metrics.failed("ApplyFailed");
        let health = Arc::new(Health::new(true));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, health.clone(), Arc::new(registry), async {
            let _ = stopped.await;
        }));

        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        let r = get(addr, "/readyz").await;
        assert!(r.starts_with("HTTP/1.1 503") && r.ends_with("controller not running"), "{r}");
        health.set_controller_running(true);
        assert!(get(addr, "/readyz").await.ends_with("waiting for the leader lease"));
        health.set_leader(true);
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
        let m = get(addr, "/metrics").await;
        assert!(m.contains("labeljob_operator_reconcile_failures_total{category=\"ApplyFailed\"} 1"), "{m}");

        stop.send(()).expect("server alive");
        server.await.expect("joins").expect("serves");
    }

    #[test]
    fn ready_without_election_once_running() {
        let h = Health::new(false);
        assert!(!h.ready());
        h.set_controller_running(true);
        assert!(h.ready());
    }
}
