"""A minimal in-memory Kubernetes apiserver on 127.0.0.1 that records what a client creates.

helm-sdkpy exposes `Install` but no `template`/dry-run entry point, so the chart is rendered by
installing it against this server: Helm discovers the API, renders the templates with the given
values, and POSTs every object here, where it is kept (and logged) for the tests to inspect.
It implements just enough of the API for `helm install --wait=false`: /version, legacy
discovery (/api, /apis), namespaced and cluster-scoped collections (GET list with a label
selector, POST), and items (GET, PUT, PATCH as replace-by-merge, DELETE). No auth, plain HTTP,
bound to 127.0.0.1 only; `stop()` shuts it down.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# (group, version, plural, kind, namespaced) of every resource the server knows.
RESOURCES = [
    ("", "v1", "namespaces", "Namespace", False),
    ("", "v1", "secrets", "Secret", True),
    ("", "v1", "configmaps", "ConfigMap", True),
    ("", "v1", "services", "Service", True),
    ("", "v1", "serviceaccounts", "ServiceAccount", True),
    ("", "v1", "pods", "Pod", True),
    ("apps", "v1", "deployments", "Deployment", True),
    ("batch", "v1", "jobs", "Job", True),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    ("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False),
    ("coordination.k8s.io", "v1", "leases", "Lease", True),
    ("events.k8s.io", "v1", "events", "Event", True),
    ("monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor", True),
    ("monitoring.coreos.com", "v1", "podmonitors", "PodMonitor", True),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True),
]
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
KUBE_VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"}


def _group_versions() -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for group, version, plural, kind, namespaced in RESOURCES:
        gv = f"{group}/{version}" if group else version
        out.setdefault(gv, []).append((plural, kind, namespaced))
    return out


def _matches(labels: dict, selector: str) -> bool:
    """Equality-based label selectors (`a=b,c!=d,e`), which is all Helm's storage uses."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.rstrip("=")) != v.lstrip("="):
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _pb_fields(buf: bytes):
    """Yield (field number, value) of a protobuf message; length-delimited values as bytes."""
    i = 0

    def varint() -> int:
        nonlocal i
        shift = out = 0
        while True:
            b = buf[i]
            i += 1
            out |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return out

    while i < len(buf):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            yield field, varint()
        elif wire == 2:
            n = varint()
            yield field, buf[i:i + n]
            i += n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            yield field, buf[i:i + n]
            i += n
        else:
            raise ValueError(f"protobuf wire type {wire} not supported")


def _pb_map(entry: bytes) -> tuple[str, bytes]:
    kv = dict(_pb_fields(entry))
    return kv.get(1, b"").decode(), kv.get(2, b"")


def _secret_from_protobuf(raw: bytes) -> dict | None:
    """Decode the one protobuf body Helm sends (its release Secret, from client-go's typed
    clientset) into the JSON object: k8s envelope -> runtime.Unknown -> v1.Secret."""
    if not raw.startswith(b"k8s\x00"):
        return None
    unknown = dict(_pb_fields(raw[4:]))
    meta, data, labels, stype = {}, {}, {}, None
    for field, val in _pb_fields(unknown.get(2, b"")):
        if field == 1:
            for mf, mv in _pb_fields(val):
                if mf == 1:
                    meta["name"] = mv.decode()
                elif mf == 3:
                    meta["namespace"] = mv.decode()
                elif mf == 11:
                    k, v = _pb_map(mv)
                    labels[k] = v.decode()
        elif field == 2:
            k, v = _pb_map(val)
            data[k] = base64.b64encode(v).decode()
        elif field == 3:
            stype = val.decode()
    meta["labels"] = labels
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": data}
    if stype:
        obj["type"] = stype
    return obj


class RecordingApiServer:
    """Start with `start()`, point a kubeconfig at `url`, read `created` (objects in POST order)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}  # item path -> object
        self.created: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.gvs = _group_versions()
        # collection path prefix -> (apiVersion, kind, namespaced)
        self.kinds: dict[tuple[str, str], tuple[str, str, bool]] = {}
        for gv, items in self.gvs.items():
            for plural, kind, namespaced in items:
                self.kinds[(gv, plural)] = (gv, kind, namespaced)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def kubeconfig(self, namespace: str = "default") -> str:
        """A kubeconfig (YAML text, which helm-sdkpy tells from a file path) for this server."""
        return (
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: rec\n  cluster:\n    server: {self.url}\n"
            "users:\n- name: rec\n  user:\n    token: recording\n"
            f"contexts:\n- name: rec\n  context:\n    cluster: rec\n    user: rec\n"
            f"    namespace: {namespace}\n"
            "current-context: rec\n"
        )

    def start(self) -> "RecordingApiServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def _send(self, code: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

            def do_PUT(self) -> None:
                server._handle(self, "PUT")

            def do_PATCH(self) -> None:
                server._handle(self, "PATCH")

            def do_DELETE(self) -> None:
                server._handle(self, "DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "RecordingApiServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- request handling -------------------------------------------------------------

    @staticmethod
    def _status(code: int, reason: str, message: str) -> dict:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}

    def _discovery(self, path: str) -> dict | None:
        if path == "/version":
            return KUBE_VERSION
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/apis":
            groups = {}
            for gv in self.gvs:
                if "/" in gv:
                    g, v = gv.split("/")
                    groups.setdefault(g, []).append({"groupVersion": gv, "version": v})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": vs, "preferredVersion": vs[0]} for g, vs in groups.items()]}
        gv = path.removeprefix("/api/").removeprefix("/apis/")
        if path.startswith(("/api/", "/apis/")) and gv in self.gvs:
            return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": [
                {"name": p, "singularName": k.lower(), "namespaced": ns, "kind": k, "verbs": VERBS}
                for p, k, ns in self.gvs[gv]]}
        return None

    def _route(self, path: str):
        """Split a resource path into (gv, plural, namespace, name) or None."""
        parts = path.strip("/").split("/")
        if parts[0] == "api":
            gv, rest = parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            return None
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest or (gv, rest[0]) not in self.kinds:
            return None
        return gv, rest[0], ns, (rest[1] if len(rest) > 1 else None)

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(h.path)
        with self.lock:
            self.requests.append((method, h.path))
        disc = self._discovery(url.path) if method == "GET" else None
        if disc is not None:
            return h._send(200, disc)
        route = self._route(url.path)
        if route is None:
            return h._send(404, self._status(404, "NotFound", f"no route {url.path}"))
        gv, plural, ns, name = route
        api_version, kind, _ = self.kinds[(gv, plural)]
        coll = url.path.rstrip("/") if name is None else url.path.rsplit("/", 1)[0]
        body = None
        if method in ("POST", "PUT", "PATCH"):
            raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
            if "protobuf" in (h.headers.get("Content-Type") or ""):
                body = _secret_from_protobuf(raw) if plural == "secrets" else None
                if body is None:
                    return h._send(415, self._status(415, "UnsupportedMediaType",
                                                     f"protobuf {plural} not supported"))
            else:
                body = json.loads(raw) if raw else None
        with self.lock:
            if name is None and method == "GET":
                sel = parse_qs(url.query).get("labelSelector", [""])[0]
                items = [copy.deepcopy(o) for p, o in self.objects.items()
                         if p.rsplit("/", 1)[0] == coll
                         and _matches(o.get("metadata", {}).get("labels") or {}, sel)]
                return h._send(200, {"kind": f"{kind}List", "apiVersion": api_version,
                                     "metadata": {"resourceVersion": "1"}, "items": items})
            if name is None and method == "POST":
                obj_name = (body.get("metadata") or {}).get("name")
                path = f"{coll}/{obj_name}"
                if path in self.objects:
                    return h._send(409, self._status(409, "AlreadyExists", f"{path} exists"))
                obj = self._stamp(body, ns)
                self.objects[path] = obj
                self.created.append(copy.deepcopy(obj))
                return h._send(201, obj)
            path = f"{coll}/{name}"
            if method == "GET":
                if path not in self.objects:
                    return h._send(404, self._status(404, "NotFound", f"{kind} {name} not found"))
                return h._send(200, self.objects[path])
            if method == "DELETE":
                obj = self.objects.pop(path, None)
                if obj is None:
                    return h._send(404, self._status(404, "NotFound", f"{kind} {name} not found"))
                return h._send(200, obj)
            if method == "PUT":
                self.objects[path] = self._stamp(body, ns)
                return h._send(200, self.objects[path])
            # PATCH: merge the top-level sections (enough for Helm's bookkeeping).
            if path not in self.objects:
                return h._send(404, self._status(404, "NotFound", f"{kind} {name} not found"))
            merged = self.objects[path]
            for key, val in (body or {}).items():
                if isinstance(val, dict) and isinstance(merged.get(key), dict):
                    merged[key].update(val)
                else:
                    merged[key] = val
            return h._send(200, merged)

    @staticmethod
    def _stamp(obj: dict, ns: str | None) -> dict:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if ns:
            meta.setdefault("namespace", ns)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta["resourceVersion"] = str(time.monotonic_ns())
        meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        return obj
