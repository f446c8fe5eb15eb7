//! Test fixtures: a stateful fake Kubernetes apiserver behind `tower-test`'s mock service, and
//! LabelJob builders. The fake stores objects by path and answers GET, LIST, POST, PUT, PATCH
//! (server-side apply, JSON patch, merge patch) and DELETE (finalizers honoured) the way the
//! apiserver does for the calls the operator makes; every request is recorded so tests can
//! assert what was sent, and that `rbac::RULES` allow it, and counted ([`FakeApiServer::count`]).
//! Collections can be watched (`?watch=true`: the events after the given resourceVersion,
//! then every change as it happens, label selectors honoured), so the kube-runtime
//! `Controller` itself runs against the fake. Pod logs (`pods/NAME/log`) answer the text set
//! with [`FakeApiServer::set_log`]. It is the only mock in this crate; other crates' tests (the
//! kubectl plugin's) use it through the `fixtures` feature.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use std::convert::Infallible;

use bytes::Bytes;
use futures::StreamExt;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use kube::Client;
use kube::client::Body;
use labeljob_api::LabelJob;
use serde_json::{Value, json};

mod patch;
pub use patch::{ApiPath, matches_selector, parse_path};
use patch::{json_patch, merge_patch};

/// One request the fake answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// URI path.
    pub path: String,
    /// Query string.
    pub query: String,
    /// Content type of the body.
    pub content_type: String,
    /// JSON body (Null when empty).
    pub body: Value,
}

/// A watch stream's filter and sender.
struct Watcher {
    path: ApiPath,
    selector: String,
    tx: futures::channel::mpsc::UnboundedSender<Bytes>,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    requests: Vec<Recorded>,
    failures: Vec<(String, String, u16)>,
    rv: u64,
    uid: u64,
    /// Every change: (resourceVersion, event type, object path, object).
    history: Vec<(u64, &'static str, String, Value)>,
    watchers: Vec<Watcher>,
    changed: Option<tokio::sync::watch::Sender<u64>>,
    /// Pod logs by pod path.
    logs: BTreeMap<String, String>,
}

/// The response body of the fake: one JSON document, or a watch stream.
pub type FakeBody = UnsyncBoxBody<Bytes, Infallible>;

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.replace("%2F", "/").replace("%3D", "=").replace("%2C", ",").replace("%21", "!"))
    })
}

fn watched_by(w_path: &ApiPath, selector: &str, key: &str, obj: &Value) -> bool {
    parse_path(key).is_some_and(|o| {
        o.group == w_path.group
            && o.resource == w_path.resource
            && (w_path.namespace.is_none() || o.namespace == w_path.namespace)
    }) && matches_selector(&obj["metadata"]["labels"], selector)
}

fn watch_line(type_: &str, obj: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": type_, "object": obj})).expect("json");
    line.push(b'\n');
    Bytes::from(line)
}

fn status(code: u16, reason: &str, message: String) -> (u16, Value) {
    let failure = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (code, failure)
}

fn invalid_name(name: &str) -> (u16, Value) {
    status(
        422,
        "Invalid",
        format!(
            "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain of at most 253 characters"
        ),
    )
}

impl State {
    /// Store `obj` at `key` and tell the watchers.
    fn put(&mut self, key: String, obj: Value) {
        let type_ = if self.objects.contains_key(&key) { "MODIFIED" } else { "ADDED" };
        self.objects.insert(key.clone(), obj.clone());
        self.notify(type_, key, obj);
    }

    /// Remove the object at `key` and tell the watchers.
    fn remove(&mut self, key: &str) {
        if let Some(mut obj) = self.objects.remove(key) {
            self.rv += 1;
            obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
            self.notify("DELETED", key.to_string(), obj);
        }
    }

    fn notify(&mut self, type_: &'static str, key: String, obj: Value) {
        self.watchers.retain(|w| {
            !watched_by(&w.path, &w.selector, &key, &obj)
                || w.tx.unbounded_send(watch_line(type_, &obj)).is_ok()
        });
        self.history.push((self.rv, type_, key, obj));
        if let Some(changed) = &self.changed {
            changed.send_replace(self.rv);
        }
    }

    /// Open a watch on the collection `p`: the changes after `since`, then every new one.
    fn watch(&mut self, p: &ApiPath, query: &str) -> futures::channel::mpsc::UnboundedReceiver<Bytes> {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let selector = query_param(query, "labelSelector").unwrap_or_default();
        let since: u64 = query_param(query, "resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
        for (rv, type_, key, obj) in &self.history {
            if *rv > since && watched_by(p, &selector, key, obj) {
                let _ = tx.unbounded_send(watch_line(type_, obj));
            }
        }
        self.watchers.push(Watcher { path: p.clone(), selector, tx });
        rx
    }

    fn stamp(&mut self, obj: &mut Value, p: &ApiPath, fresh: bool) {
        self.rv += 1;
        let meta = &mut obj["metadata"];
        if fresh {
            self.uid += 1;
            meta["uid"] = json!(format!("uid-{}", self.uid));
            meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        if let Some(ns) = &p.namespace {
            meta["namespace"] = json!(ns);
        }
        meta["resourceVersion"] = json!(self.rv.to_string());
    }

    fn handle(&mut self, method: &str, p: &ApiPath, query: &str, ctype: &str, body: &Value) -> (u16, Value) {
        let key = p.key.clone();
        if let Some((_, _, code)) = self.failures.iter().find(|(m, k, _)| m == method && *k == key) {
            return status(*code, "InternalError", format!("injected failure for {method} {key}"));
        }
        let not_found = || status(404, "NotFound", format!("{key} not found"));
        match (method, &p.name) {
            ("GET", Some(_)) if p.sub.as_deref() == Some("log") => match self.logs.get(&key) {
                Some(text) => (200, Value::String(text.clone())),
                None => not_found(),
            },
            ("GET", Some(_)) => self.objects.get(&key).map(|o| (200, o.clone())).unwrap_or_else(not_found),
            ("GET", None) => {
                let items: Vec<Value> = self
                    .objects
                    .iter()
                    .filter(|(k, v)| {
                        let selector = query_param(query, "labelSelector").unwrap_or_default();
                        watched_by(p, &selector, k, v)
                    })
                    .map(|(_, v)| v.clone())
                    .collect();
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": self.rv.to_string()}, "items": items}),
                )
            }
            ("POST", None) => {
                let name = body["metadata"]["name"].as_str().unwrap_or_default().to_string();
                if !crate::controller::validate::is_dns_subdomain(&name) {
                    return invalid_name(&name);
                }
                let okey = format!("{key}/{name}");
                if self.objects.contains_key(&okey) {
                    return status(409, "AlreadyExists", format!("{okey} already exists"));
                }
                let mut obj = body.clone();
                let op = ApiPath { name: Some(name), key: okey.clone(), ..p.clone() };
                self.stamp(&mut obj, &op, true);
                self.put(okey, obj.clone());
                (201, obj)
            }
            ("PUT", Some(_)) => {
                let Some(old) = self.objects.get(&key).cloned() else { return not_found() };
                let sent_rv = &body["metadata"]["resourceVersion"];
                if !sent_rv.is_null() && *sent_rv != old["metadata"]["resourceVersion"] {
                    return status(409, "Conflict", format!("{key} was modified"));
                }
                let mut obj = body.clone();
                obj["metadata"]["uid"] = old["metadata"]["uid"].clone();
                obj["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
                self.stamp(&mut obj, p, false);
                self.put(key, obj.clone());
                (200, obj)
            }
            ("PATCH", Some(_)) => {
                let existing = self.objects.get(&key).cloned();
                let before = existing.clone();
                let mut obj = match (ctype, existing, p.sub.as_deref()) {
                    (_, None, Some(_)) => return not_found(),
                    (c, None, None) if c.starts_with("application/apply-patch") => {
                        if let Some(name) =
                            p.name.as_deref().filter(|n| !crate::controller::validate::is_dns_subdomain(n))
                        {
                            return invalid_name(name);
                        }
                        let mut obj = body.clone();
                        self.stamp(&mut obj, p, true);
                        obj
                    }
                    (_, None, None) => return not_found(),
                    (c, Some(mut old), Some("status")) if c.starts_with("application/apply-patch") => {
                        old["status"] = body["status"].clone();
                        old
                    }
                    (c, Some(old), None) if c.starts_with("application/apply-patch") => {
                        let mut obj = body.clone();
                        let mut meta = old["metadata"].clone();
                        merge_patch(&mut meta, &body["metadata"]);
                        obj["metadata"] = meta;
                        if !old["status"].is_null() {
                            obj["status"] = old["status"].clone();
                        }
                        obj
                    }
                    (c, Some(mut old), _) if c.starts_with("application/json-patch") => {
                        if let Err(e) = json_patch(&mut old, body) {
                            return status(422, "Invalid", e);
                        }
                        old
                    }
                    (_, Some(mut old), _) => {
                        merge_patch(&mut old, body);
                        old
                    }
                };
                if before.as_ref() == Some(&obj) {
                    // A no-op (e.g. applying what is there): no new resourceVersion, no event.
                    return (200, obj);
                }
                self.stamp(&mut obj, p, false);
                let finalizers_empty = obj["metadata"]["finalizers"].as_array().is_none_or(Vec::is_empty);
                if !obj["metadata"]["deletionTimestamp"].is_null() && finalizers_empty {
                    self.remove(&key);
                } else {
                    self.put(key, obj.clone());
                }
                (200, obj)
            }
            ("DELETE", Some(_)) => {
                let Some(mut obj) = self.objects.get(&key).cloned() else { return not_found() };
                if obj["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty()) {
                    obj["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
                    self.stamp(&mut obj, p, false);
                    self.put(key, obj.clone());
                    (200, obj)
                } else {
                    self.remove(&key);
                    (200, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}))
                }
            }
            _ => status(405, "MethodNotAllowed", format!("{method} {key}")),
        }
    }
}

/// The fake apiserver; dropping it stops its task.
pub struct FakeApiServer {
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeApiServer {
    /// Start the fake and return it with a `kube::Client` talking to it.
    pub fn start() -> (Self, Client) {
        Self::start_counted(crate::metrics::RestMetrics::default())
    }

    /// [`FakeApiServer::start`], with the client's requests counted in `rest` (the layer the
    /// operator's own client has).
    pub fn start_counted(rest: crate::metrics::RestMetrics) -> (Self, Client) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<FakeBody>>();
        let service = tower::Layer::layer(&crate::metrics::RestMetricsLayer::new(rest), service);
        let client = Client::new(service, "default");
        let state: Arc<Mutex<State>> = Arc::default();
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.expect("request body");
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let ctype = parts
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let method = parts.method.to_string();
                let path = parts.uri.path().to_string();
                let query = parts.uri.query().unwrap_or_default().to_string();
                let watch =
                    method == "GET" && query_param(&query, "watch").is_some_and(|w| w == "true" || w == "1");
                let answer = match parse_path(&path) {
                    Some(p) => {
                        let mut s = st.lock().expect("fake state");
                        s.requests.push(Recorded {
                            method: method.clone(),
                            path: path.clone(),
                            query: query.clone(),
                            content_type: ctype.clone(),
                            body: body.clone(),
                        });
                        if watch && p.name.is_none() {
                            let events =
                                s.watch(&p, &query).map(|line| Ok::<_, Infallible>(Frame::data(line)));
                            Err(StreamBody::new(events).boxed_unsync())
                        } else {
                            Ok(s.handle(&method, &p, &query, &ctype, &body))
                        }
                    }
                    None => Ok(status(404, "NotFound", format!("no route {path}"))),
                };
                let (code, body) = match answer {
                    // A log is text, not JSON.
                    Ok((code, Value::String(text))) => (code, Full::new(Bytes::from(text)).boxed_unsync()),
                    Ok((code, value)) => {
                        let bytes = Bytes::from(serde_json::to_vec(&value).expect("json"));
                        (code, Full::new(bytes).boxed_unsync())
                    }
                    Err(stream) => (200, stream),
                };
                let response = Response::builder()
                    .status(StatusCode::from_u16(code).expect("status code"))
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .expect("response");
                send.send_response(response);
            }
        });
        (FakeApiServer { state, task }, client)
    }

    /// A receiver of the fake's resourceVersion: it changes whenever an object does.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        let mut s = self.lock();
        let rv = s.rv;
        s.changed.get_or_insert_with(|| tokio::sync::watch::channel(rv).0).subscribe()
    }

    /// Requests so far, counted by `METHOD kind` (e.g. `PATCH jobs`, `GET secrets`); watches
    /// count as `WATCH kind`, lists as `LIST kind`, status writes as `PATCH kind/status`.
    pub fn count(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in self.lock().requests.iter() {
            let Some(p) = parse_path(&r.path) else { continue };
            let method = match (r.method.as_str(), &p.name) {
                ("GET", None) if r.query.contains("watch=true") => "WATCH",
                ("GET", None) => "LIST",
                (m, _) => m,
            };
            let kind = match &p.sub {
                Some(sub) => format!("{}/{sub}", p.resource),
                None => p.resource.clone(),
            };
            *counts.entry(format!("{method} {kind}")).or_insert(0) += 1;
        }
        counts
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake state")
    }

    /// The stored object at `path`, if any.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.lock().objects.get(path).cloned()
    }

    /// The stored object at `path`; panics when absent.
    pub fn object(&self, path: &str) -> Value {
        self.get(path).unwrap_or_else(|| panic!("{path} does not exist"))
    }

    /// Store `obj` at `path` as if it had been created.
    pub fn insert(&self, path: &str, mut obj: Value) {
        let mut s = self.lock();
        let p = parse_path(path).expect("api path");
        let fresh = obj["metadata"]["uid"].is_null();
        s.stamp(&mut obj, &p, fresh);
        s.put(path.to_string(), obj);
    }

    /// Replace the `status` of the object at `path` (what a Kubernetes controller would do).
    pub fn set_status(&self, path: &str, status: Value) {
        let mut obj = self.object(path);
        obj["status"] = status;
        let mut s = self.lock();
        s.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(s.rv.to_string());
        s.put(path.to_string(), obj);
    }

    /// Paths of stored objects starting with `prefix`.
    pub fn paths(&self, prefix: &str) -> Vec<String> {
        self.lock().objects.keys().filter(|k| k.starts_with(prefix)).cloned().collect()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// The log `GET <pod path>/log` answers.
    pub fn set_log(&self, pod_path: &str, text: &str) {
        self.lock().logs.insert(pod_path.to_string(), text.to_string());
    }

    /// Answer `method` on the object or collection at `path` with `code` from now on.
    pub fn fail(&self, method: &str, path: &str, code: u16) {
        self.lock().failures.push((method.to_string(), path.to_string(), code));
    }

    /// Reasons of the Events published so far (created, or patched as a repeat), in order.
    pub fn event_reasons(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| (r.method == "POST" || r.method == "PATCH") && r.path.contains("/events"))
            .filter_map(|r| r.body["reason"].as_str().map(String::from))
            .collect()
    }

    /// The Events stored in namespace `ns` (what `kubectl events` would list).
    pub fn events(&self, ns: &str) -> Vec<Value> {
        let prefix = format!("/apis/events.k8s.io/v1/namespaces/{ns}/events/");
        self.lock().objects.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(_, v)| v.clone()).collect()
    }

    /// Every recorded request is permitted by `rbac::RULES`.
    pub fn assert_requests_allowed_by_rbac(&self) {
        for r in self.requests() {
            let p = parse_path(&r.path).expect("api path");
            let verb = match (r.method.as_str(), &p.name) {
                ("GET", Some(_)) => "get",
                ("GET", None) if r.query.contains("watch=true") => "watch",
                ("GET", None) => "list",
                ("POST", _) => "create",
                ("PUT", _) => "update",
                ("PATCH", _) => "patch",
                ("DELETE", _) => "delete",
                (m, _) => panic!("unexpected method {m}"),
            };
            let resource = match &p.sub {
                Some(sub) => format!("{}/{sub}", p.resource),
                None => p.resource.clone(),
            };
            assert!(
                crate::rbac::allows(&p.group, &resource, verb),
                "RULES do not allow {verb} {resource} in group {:?} ({} {})",
                p.group,
                r.method,
                r.path
            );
        }
    }
}

/// Path of LabelJob `name` in namespace `ns`.
pub fn labeljob_path(ns: &str, name: &str) -> String {
    format!("/apis/labeljob.dev/v1alpha1/namespaces/{ns}/labeljobs/{name}")
}

/// Read a sample from `config/samples/` as a LabelJob in namespace `ns`.
pub fn sample(file: &str) -> LabelJob {
    let path = format!("{}/../config/samples/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    labeljob_api::parse_labeljob(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A LabelJob as the apiserver would hand it to the controller: namespace, uid, generation.
pub fn stored(mut lj: LabelJob, ns: &str) -> LabelJob {
    lj.metadata.namespace = Some(ns.into());
    lj.metadata.uid = Some(format!("uid-lj-{}", lj.metadata.name.as_deref().unwrap_or_default()));
    lj.metadata.generation = Some(1);
    lj
}
