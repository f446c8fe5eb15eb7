//! The connections of `labeljob serve`: its own accept loop over hyper's HTTP/1 connections
//! (instead of `axum::serve`, which sets no header timeout and no connection limit).
//!
//! - A request's headers must be complete within `--header-timeout-seconds` of accepting the
//!   connection or of answering its previous request, or hyper closes it: connections that
//!   never send (idle keep-alive, `Slowloris`) cost a socket for that long at most.
//! - A request head is at most [`MAX_HEADER_BYTES`], so an open connection holds at most that
//!   much read buffer.
//! - At most `--max-connections` are open. A new connection beyond that closes the
//!   longest-idle one (no request being answered on it), as nginx reuses idle keep-alive
//!   connections when out of them, so a probe of `/v2/health/ready` still gets in however
//!   many idle or half-sent connections there are. Only when every connection is answering a
//!   request is the new one closed unanswered. The cap is kept [`FD_HEADROOM`] below the
//!   process's open-files limit, so `accept` does not run out of descriptors (past that
//!   limit every connection would wait in the listen backlog, health probes too); if it does
//!   anyway, an idle connection is closed the same way.
//! - On shutdown the listener closes, each connection finishes the request it is answering
//!   and closes, and `serve` returns when all are closed.
//!
//! Slow bodies are bounded per request by `limits` (budget, body timeout).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use super::limits::MAX_HEADER_BYTES;

/// Connection metrics.
#[derive(Debug, Clone, Default)]
pub struct ConnMetrics {
    open: Gauge,
    evicted: Counter,
    refused: Counter,
}

impl ConnMetrics {
    /// Register under `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register("open_connections", "Open HTTP connections", self.open.clone());
        registry.register(
            "evicted_connections",
            "Idle connections closed to admit a new one (--max-connections, or out of file descriptors)",
            self.evicted.clone(),
        );
        registry.register(
            "refused_connections",
            "Connections closed unanswered: every open connection was answering a request",
            self.refused.clone(),
        );
    }
}

/// One open connection as the accept loop sees it.
#[derive(Debug)]
struct Entry {
    /// Requests being answered on it (0: idle, may be closed to admit another).
    in_flight: Arc<AtomicUsize>,
    /// Dropping it closes the connection.
    _close: oneshot::Sender<()>,
}

/// The open connections, oldest first (ids increase with accept order).
#[derive(Debug, Default)]
struct Conns {
    next: u64,
    open: BTreeMap<u64, Entry>,
}

/// What a new connection gets: its id, its in-flight counter and its close signal.
type Admitted = (u64, Arc<AtomicUsize>, oneshot::Receiver<()>);

impl Conns {
    /// Admit a connection, closing the longest-idle one when `cap` are open; `None` when all
    /// `cap` are answering requests.
    fn admit(&mut self, cap: usize) -> Option<Admitted> {
        if self.open.len() >= cap && !self.close_longest_idle() {
            return None;
        }
        let id = self.next;
        self.next += 1;
        let in_flight = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = oneshot::channel();
        self.open.insert(id, Entry { in_flight: in_flight.clone(), _close: tx });
        Some((id, in_flight, rx))
    }

    /// Close the oldest connection that answers no request; false when there is none.
    fn close_longest_idle(&mut self) -> bool {
        let idle =
            self.open.iter().find(|(_, e)| e.in_flight.load(Ordering::Acquire) == 0).map(|(id, _)| *id);
        idle.is_some_and(|id| self.open.remove(&id).is_some())
    }
}

fn lock(conns: &Mutex<Conns>) -> MutexGuard<'_, Conns> {
    conns.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Counts a request as in flight on its connection while it is answered.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// File descriptors kept free below the open-files limit for everything but connections.
pub const FD_HEADROOM: usize = 64;

/// The soft limit on open files of this process (`/proc/self/limits`), if known and finite.
pub fn open_files_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// The connections to allow: `max_connections`, at most [`FD_HEADROOM`] below `fd_limit`.
pub fn connection_cap(max_connections: usize, fd_limit: Option<usize>) -> usize {
    let cap = fd_limit.map_or(max_connections, |l| max_connections.min(l.saturating_sub(FD_HEADROOM)));
    cap.max(1)
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ConnOptions {
    /// Time allowed for a request's headers (see the module header).
    pub header_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
}

/// Accept and serve connections with `router` until `shutdown` completes, then let each
/// connection finish the request it is answering, and return when all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    opts: ConnOptions,
    metrics: ConnMetrics,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    let cap = connection_cap(opts.max_connections, open_files_limit());
    if cap < opts.max_connections {
        tracing::warn!(
            max_connections = opts.max_connections,
            cap,
            "--max-connections is above the open-files limit (ulimit -n) less {FD_HEADROOM}: allowing {cap}"
        );
    }
    let conns = Arc::new(Mutex::new(Conns::default()));
    let (stop_tx, stop_rx) = watch::channel(());
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(&e, &conns, &metrics).await;
                    continue;
                }
            },
        };
        while tasks.try_join_next().is_some() {}
        let (admitted, evicted) = {
            let mut table = lock(&conns);
            let before = table.open.len();
            let admitted = table.admit(cap);
            (admitted, table.open.len() == before)
        };
        let Some((id, in_flight, close)) = admitted else {
            metrics.refused.inc();
            tracing::debug!("every connection is answering a request: closing a new one");
            continue;
        };
        if evicted {
            metrics.evicted.inc();
        } else {
            metrics.open.inc();
        }
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            id,
            in_flight,
            close,
            stop: stop_rx.clone(),
            conns: conns.clone(),
            metrics: metrics.clone(),
        };
        tasks.spawn(conn.run(stream, router.clone(), builder.clone()));
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(());
    while tasks.join_next().await.is_some() {}
}

/// `accept` failed: a per-connection error is ignored; anything else (mostly out of file
/// descriptors) closes the longest-idle connection and backs off briefly.
async fn accept_failed(e: &std::io::Error, conns: &Mutex<Conns>, metrics: &ConnMetrics) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted) {
        return;
    }
    if lock(conns).close_longest_idle() {
        metrics.evicted.inc();
        metrics.open.dec();
    }
    tracing::warn!(error = %e, "accepting a connection failed: closed the longest-idle one");
    tokio::time::sleep(Duration::from_millis(5)).await;
}

/// One connection's task.
struct Conn {
    id: u64,
    in_flight: Arc<AtomicUsize>,
    close: oneshot::Receiver<()>,
    stop: watch::Receiver<()>,
    conns: Arc<Mutex<Conns>>,
    metrics: ConnMetrics,
}

impl Conn {
    async fn run(self, stream: TcpStream, router: Router, builder: http1::Builder) {
        let Self { id, in_flight, mut close, mut stop, conns, metrics } = self;
        let router = TowerToHyperService::new(router);
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let busy = InFlight::enter(&in_flight);
            let answer = hyper::service::Service::call(&router, req);
            async move {
                let resp = answer.await;
                drop(busy);
                resp
            }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let mut draining = false;
        let closed_here = loop {
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(error = %e, "connection ended");
                    }
                    break true;
                }
                // The accept loop closed it (dropping the future closes the socket).
                _ = &mut close => break false,
                _ = stop.changed(), if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        };
        if closed_here && lock(&conns).open.remove(&id).is_some() {
            metrics.open.dec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_open_files_limit() {
        assert_eq!(connection_cap(1024, None), 1024);
        assert_eq!(connection_cap(1024, Some(20_000)), 1024);
        assert_eq!(connection_cap(1024, Some(512)), 448);
        assert_eq!(connection_cap(1024, Some(10)), 1);
        assert_eq!(connection_cap(0, None), 1);
        // This process has a finite limit on Linux.
        assert!(open_files_limit().is_some_and(|l| l > 0));
    }

    #[test]
    fn a_full_table_closes_the_longest_idle_connection_first() {
        let mut c = Conns::default();
        let (a, a_busy, mut a_close) = c.admit(3).expect("first");
        let (b, _, mut b_close) = c.admit(3).expect("second");
        let (_, c_busy, _c_close) = c.admit(3).expect("third");
        let answering = InFlight::enter(&a_busy);
        // Full: the oldest idle one (b, since a is answering) is closed for the newcomer.
        let (d, _, _d_close) = c.admit(3).expect("admitted by closing b");
        assert_eq!(c.open.keys().copied().collect::<Vec<_>>(), vec![a, 2, d]);
        assert!(matches!(b_close.try_recv(), Err(oneshot::error::TryRecvError::Closed)));
        assert!(matches!(a_close.try_recv(), Err(oneshot::error::TryRecvError::Empty)));
        assert_eq!(b, 1);
        // Every connection answering: the newcomer is refused.
        let _c = InFlight::enter(&c_busy);
        let d_busy = c.open.get(&d).map(|e| e.in_flight.clone()).expect("d");
        let _d = InFlight::enter(&d_busy);
        assert!(c.admit(3).is_none());
        drop(answering);
        assert!(c.admit(3).is_some(), "a is idle again");
    }
}
