//! Apiserver requests by verb and status code: a tower layer on the kube client's HTTP service
//! (what client-go counts as `rest_client_requests_total`). `method` is the HTTP method and
//! `verb` the Kubernetes verb the request stands for (`get`, `list`, `watch`, `create`,
//! `update`, `patch`, `delete`, `deletecollection`); `code` is the HTTP status, or `<error>`
//! when no response came (client-go's spelling).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tower::{Layer, Service};

/// Labels of `rest_client_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP status code, or `<error>`.
    pub code: String,
    /// HTTP method.
    pub method: String,
    /// Kubernetes verb.
    pub verb: String,
}

/// The request counter.
#[derive(Clone, Debug, Default)]
pub struct RestMetrics {
    requests: Family<RequestLabels, Counter>,
}

impl RestMetrics {
    /// Register `rest_client_requests_total` in `registry` (the root).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "rest_client_requests",
            "Number of HTTP requests, partitioned by status code, method and verb",
            self.requests.clone(),
        );
    }

    fn count(&self, code: String, method: &str, verb: &'static str) {
        let labels = RequestLabels { code, method: method.to_string(), verb: verb.to_string() };
        self.requests.get_or_create(&labels).inc();
    }

    /// Requests counted with `verb` and `code` so far.
    pub fn get(&self, verb: &str, code: &str) -> u64 {
        let mut n = 0;
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let labels = RequestLabels { code: code.into(), method: method.into(), verb: verb.into() };
            if let Some(c) = self.requests.get(&labels) {
                n += c.get();
            }
        }
        n
    }
}

/// The Kubernetes verb of an apiserver request (pure): an object path is `get`, `update`,
/// `patch` or `delete`; a collection path is `list` (`watch` with `watch=true`), `create` or
/// `deletecollection`.
pub fn verb(method: &str, path: &str, query: Option<&str>) -> &'static str {
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match seg.first() {
        Some(&"api") => seg.get(2..),
        Some(&"apis") => seg.get(3..),
        _ => None,
    }
    .unwrap_or(&[]);
    // `namespaces/NS/...` scopes the rest; `namespaces/NS` alone is the Namespace object.
    let rest = match rest {
        ["namespaces", _, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let object = rest.len() >= 2;
    let watching = query.is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    match (method, object) {
        ("GET", true) => "get",
        ("GET", false) if watching => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "other",
    }
}

/// Wraps a client's HTTP service to count its requests.
#[derive(Clone, Debug)]
pub struct RestMetricsLayer {
    metrics: RestMetrics,
}

impl RestMetricsLayer {
    /// A layer counting into `metrics`.
    pub fn new(metrics: RestMetrics) -> Self {
        RestMetricsLayer { metrics }
    }
}

impl<S> Layer<S> for RestMetricsLayer {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Counted { inner, metrics: self.metrics.clone() }
    }
}

/// A service whose requests are counted.
#[derive(Clone, Debug)]
pub struct Counted<S> {
    inner: S,
    metrics: RestMetrics,
}

impl<S, B, RB> Service<Request<B>> for Counted<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let method = req.method().to_string();
        let verb = verb(&method, req.uri().path(), req.uri().query());
        let metrics = self.metrics.clone();
        let response = self.inner.call(req);
        Box::pin(async move {
            let result = response.await;
            let code = match &result {
                Ok(r) => r.status().as_u16().to_string(),
                Err(_) => "<error>".to_string(),
            };
            metrics.count(code, &method, verb);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_of_apiserver_paths() {
        let ns = "/apis/batch/v1/namespaces/ns/jobs";
        assert_eq!(verb("GET", &format!("{ns}/a-plan"), None), "get");
        assert_eq!(verb("GET", ns, Some("labelSelector=x")), "list");
        assert_eq!(verb("GET", ns, Some("watch=true&resourceVersion=3")), "watch");
        assert_eq!(
            verb("PATCH", "/apis/labeljob.dev/v1alpha1/namespaces/ns/labeljobs/a/status", None),
            "patch"
        );
        assert_eq!(verb("POST", "/apis/events.k8s.io/v1/namespaces/ns/events", None), "create");
        assert_eq!(verb("DELETE", "/api/v1/namespaces/ns/services/a-inference", None), "delete");
        assert_eq!(verb("DELETE", "/api/v1/namespaces/ns/pods", None), "deletecollection");
        assert_eq!(verb("GET", "/api/v1/namespaces/ns", None), "get", "the Namespace itself");
        assert_eq!(verb("GET", "/api/v1/namespaces", None), "list");
        assert_eq!(verb("GET", "/apis/labeljob.dev/v1alpha1/labeljobs", Some("watch=1")), "watch");
        assert_eq!(verb("PUT", "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l", None), "update");
    }
}
