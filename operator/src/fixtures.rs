//! Test fixtures: a stateful fake Kubernetes apiserver behind `tower-test`'s mock service, and
//! LabelJob builders. The fake stores objects by path and answers GET, LIST, POST, PUT, PATCH
//! (server-side apply, JSON patch, merge patch) and DELETE (finalizers honoured) the way the
//! apiserver does for the calls the operator makes; every request is recorded so tests can
//! assert what was sent, and that `rbac::RULES` allow it. It is the only mock in this crate.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use labeljob_api::LabelJob;
use serde_json::{Value, json};

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

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    requests: Vec<Recorded>,
    failures: Vec<(String, String, u16)>,
    rv: u64,
    uid: u64,
}

/// A parsed apiserver path.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiPath {
    /// API group (`""` for core).
    pub group: String,
    /// Namespace, if namespaced.
    pub namespace: Option<String>,
    /// Plural resource.
    pub resource: String,
    /// Object name.
    pub name: Option<String>,
    /// Subresource (`status`).
    pub sub: Option<String>,
    /// Path of the object (without subresource) or of the collection.
    pub key: String,
}

/// Parse `/api/v1/...` or `/apis/GROUP/VERSION/...`.
pub fn parse_path(path: &str) -> Option<ApiPath> {
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match *seg.first()? {
        "api" => ("", seg.get(2..)?),
        "apis" => (*seg.get(1)?, seg.get(3..)?),
        _ => return None,
    };
    let prefix_len = seg.len() - rest.len();
    let (namespace, rest, ns_len) = if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        (Some(rest[1].to_string()), &rest[2..], 2)
    } else {
        (None, rest, 0)
    };
    let resource = rest.first()?.to_string();
    let name = rest.get(1).map(|s| s.to_string());
    let sub = rest.get(2).map(|s| s.to_string());
    let key_len = prefix_len + ns_len + rest.len().min(2);
    let key = format!("/{}", seg[..key_len].join("/"));
    Some(ApiPath { group: group.to_string(), namespace, resource, name, sub, key })
}

fn status(code: u16, reason: &str, message: String) -> (u16, Value) {
    let failure = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (code, failure)
}

fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    for op in ops.as_array().ok_or("not an array")? {
        let path = op["path"].as_str().ok_or("no path")?;
        let (parent, last) = path.rsplit_once('/').ok_or("bad path")?;
        match op["op"].as_str() {
            Some("test") => {
                let found = target.pointer(path).cloned().unwrap_or(Value::Null);
                if found != op["value"] {
                    return Err(format!("test failed at {path}"));
                }
            }
            Some("add") | Some("replace") => {
                let p = target.pointer_mut(parent).ok_or("no parent")?;
                match p {
                    Value::Array(a) if last == "-" => a.push(op["value"].clone()),
                    Value::Array(a) => a.insert(last.parse().map_err(|_| "index")?, op["value"].clone()),
                    Value::Object(o) => {
                        o.insert(last.to_string(), op["value"].clone());
                    }
                    _ => return Err("parent not a container".into()),
                }
            }
            Some("remove") => match target.pointer_mut(parent).ok_or("no parent")? {
                Value::Array(a) => {
                    a.remove(last.parse().map_err(|_| "index")?);
                }
                Value::Object(o) => {
                    o.remove(last);
                }
                _ => return Err("parent not a container".into()),
            },
            other => return Err(format!("unsupported op {other:?}")),
        }
    }
    Ok(())
}

impl State {
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

    fn handle(&mut self, method: &str, p: &ApiPath, ctype: &str, body: &Value) -> (u16, Value) {
        let key = p.key.clone();
        if let Some((_, _, code)) = self.failures.iter().find(|(m, k, _)| m == method && *k == key) {
            return status(*code, "InternalError", format!("injected failure for {method} {key}"));
        }
        let not_found = || status(404, "NotFound", format!("{key} not found"));
        match (method, &p.name) {
            ("GET", Some(_)) => self.objects.get(&key).map(|o| (200, o.clone())).unwrap_or_else(not_found),
            ("GET", None) => {
                let items: Vec<Value> = self
                    .objects
                    .iter()
                    .filter(|(k, _)| {
                        parse_path(k).is_some_and(|o| {
                            o.group == p.group
                                && o.resource == p.resource
                                && (p.namespace.is_none() || o.namespace == p.namespace)
                        })
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
                let okey = format!("{key}/{name}");
                if self.objects.contains_key(&okey) {
                    return status(409, "AlreadyExists", format!("{okey} already exists"));
                }
                let mut obj = body.clone();
                let op = ApiPath { name: Some(name), key: okey.clone(), ..p.clone() };
                self.stamp(&mut obj, &op, true);
                self.objects.insert(okey, obj.clone());
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
                self.objects.insert(key, obj.clone());
                (200, obj)
            }
            ("PATCH", Some(_)) => {
                let existing = self.objects.get(&key).cloned();
                let mut obj = match (ctype, existing, p.sub.as_deref()) {
                    (_, None, Some(_)) => return not_found(),
                    (c, None, None) if c.starts_with("application/apply-patch") => {
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
                self.stamp(&mut obj, p, false);
                let finalizers_empty = obj["metadata"]["finalizers"].as_array().is_none_or(Vec::is_empty);
                if !obj["metadata"]["deletionTimestamp"].is_null() && finalizers_empty {
                    self.objects.remove(&key);
                } else {
                    self.objects.insert(key, obj.clone());
                }
                (200, obj)
            }
            ("DELETE", Some(_)) => {
                let Some(mut obj) = self.objects.get(&key).cloned() else { return not_found() };
                if obj["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty()) {
                    obj["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
                    self.stamp(&mut obj, p, false);
                    self.objects.insert(key, obj.clone());
                    (200, obj)
                } else {
                    self.objects.remove(&key);
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
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
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
                let (code, answer) = match parse_path(&path) {
                    Some(p) => {
                        let mut s = st.lock().expect("fake state");
                        s.requests.push(Recorded {
                            method: method.clone(),
                            path: path.clone(),
                            query: parts.uri.query().unwrap_or_default().to_string(),
                            content_type: ctype.clone(),
                            body: body.clone(),
                        });
                        s.handle(&method, &p, &ctype, &body)
                    }
                    None => status(404, "NotFound", format!("no route {path}")),
                };
                let response = Response::builder()
                    .status(StatusCode::from_u16(code).expect("status code"))
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).expect("json")))
                    .expect("response");
                send.send_response(response);
            }
        });
        (FakeApiServer { state, task }, client)
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
        s.objects.insert(path.to_string(), obj);
    }

    /// Replace the `status` of the object at `path` (what a Kubernetes controller would do).
    pub fn set_status(&self, path: &str, status: Value) {
        let mut obj = self.object(path);
        obj["status"] = status;
        self.lock().objects.insert(path.to_string(), obj);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths() {
        let p = parse_path("/apis/batch/v1/namespaces/ns/jobs/a-plan").expect("parses");
        assert_eq!(
            (p.group.as_str(), p.resource.as_str(), p.name.as_deref()),
            ("batch", "jobs", Some("a-plan"))
        );
        assert_eq!(p.key, "/apis/batch/v1/namespaces/ns/jobs/a-plan");
        let p = parse_path("/apis/labeljob.dev/v1alpha1/namespaces/ns/labeljobs/a/status").expect("parses");
        assert_eq!(
            (p.sub.as_deref(), p.key.as_str()),
            (Some("status"), "/apis/labeljob.dev/v1alpha1/namespaces/ns/labeljobs/a")
        );
        let p = parse_path("/api/v1/namespaces/ns/configmaps").expect("parses");
        assert_eq!((p.group.as_str(), p.name, p.namespace.as_deref()), ("", None, Some("ns")));
        let p = parse_path("/apis/labeljob.dev/v1alpha1/labeljobs").expect("parses");
        assert_eq!((p.namespace, p.resource.as_str()), (None, "labeljobs"));
    }

    #[test]
    fn json_patch_finalizer_ops() {
        let mut obj = json!({"metadata": {}});
        json_patch(
            &mut obj,
            &json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}]),
        )
        .expect("applies");
        assert_eq!(obj["metadata"]["finalizers"], json!(["f"]));
        assert!(
            json_patch(&mut obj, &json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "g"}]))
                .is_err()
        );
        json_patch(&mut obj, &json!([{"op": "remove", "path": "/metadata/finalizers/0"}])).expect("applies");
        assert_eq!(obj["metadata"]["finalizers"], json!([]));
    }
}
