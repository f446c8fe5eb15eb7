"""Hostile input end to end (issue 9, items 9 and 10): `labeljob` against a real HTTP server on
127.0.0.1 (Python's http.server in a thread, started and stopped by each test).

- A URL list on a loopback address is refused unless the job sets
  `input.allowPrivateNetworks: true`; the server sees no request.
- Credentials in image URLs (presigned query strings, `user:password@`) are used for the
  downloads but appear in no output file (annotations.json, results.json, errors.jsonl,
  report.json, manifest.jsonl, shard files) and in no log line, also when plan, shards and
  merge run as separate processes (the shard re-reads the list for the real URLs).
- A non-image's content is never echoed into errors.jsonl.
- A `file://` symlink leading outside the input directory is one failed image, not read."""

import base64
import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import LocalHTTPServer, PHOTOS, run_labeljob, write_job

SECRETS = ["sigSECRET1", "AKIASECRET2", "tokSECRET3", "pwSECRET4", "sasSECRET5"]
INTERNAL = "INTERNAL-ONLY-ami-id-i-0abc"
PHOTO_NAMES = ["dog.jpg", "eagle.jpg", "chelsea.png"]


class Server(LocalHTTPServer):
    """A ThreadingHTTPServer on 127.0.0.1:0 serving the photos behind credentials."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        self.flaky_hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.handle(self)

        super().__init__(Handler)

    def list_text(self):
        host = self.base.removeprefix("http://")
        return "\n".join([
            f"http://{host}/img/dog.jpg?X-Amz-Credential=AKIASECRET2&X-Amz-Signature=sigSECRET1",
            f"http://alice:pwSECRET4@{host}/img/eagle.jpg",
            f"http://{host}/img/chelsea.png?token=tokSECRET3",
            f"http://{host}/img/internal.jpg?sv=2022&sig=sasSECRET5",
        ]) + "\n"

    def handle(self, req):
        url = urlsplit(req.path)
        query = parse_qs(url.query)
        with self.lock:
            self.requests.append(req.path)
        auth = req.headers.get("Authorization", "")
        body, status, ctype = b"", 404, "application/octet-stream"
        if url.path == "/list.txt":
            body, status, ctype = self.list_text().encode(), 200, "text/plain"
        elif url.path == "/img/dog.jpg":
            ok = query.get("X-Amz-Signature") == ["sigSECRET1"]
            status, body = (200, (PHOTOS / "dog.jpg").read_bytes()) if ok else (403, b"")
        elif url.path == "/img/eagle.jpg":
            ok = auth == "Basic " + base64.b64encode(b"alice:pwSECRET4").decode()
            status, body = (200, (PHOTOS / "eagle.jpg").read_bytes()) if ok else (403, b"")
        elif url.path == "/img/chelsea.png":
            with self.lock:
                self.flaky_hits += 1
                first = self.flaky_hits == 1
            if first:
                status = 503  # one transient failure: the retry is logged
            elif query.get("token") == ["tokSECRET3"]:
                status, body = 200, (PHOTOS / "chelsea.png").read_bytes()
            else:
                status = 403
        elif url.path == "/img/internal.jpg":
            # what an internal service answers: must never be echoed into errors.jsonl
            status, body, ctype = 200, f"{INTERNAL}\nsecret=hunter2\n".encode(), "text/plain"
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)


def all_output_text(out: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(out.rglob("*")) if p.is_file())


def assert_no_secret(what, text):
    for secret in SECRETS:
        assert secret not in text, f"{what} leaks {secret}"


def test_loopback_url_list_is_refused_without_opt_in(tmp_path, labeljob_bin, run_env):
    with Server() as server:
        job = write_job(tmp_path / "job.yaml", "ssrf", f"{server.base}/list.txt", f"file://{tmp_path}/out")
        proc = run_labeljob(labeljob_bin, run_env, "run", job, "--no-progress", check=False)
        assert proc.returncode != 0, proc.stdout + proc.stderr
        assert "allowPrivateNetworks" in proc.stderr, proc.stderr
        assert server.requests == [], "nothing may be requested from a private address"


def test_credentials_are_used_but_never_written_or_logged(tmp_path, labeljob_bin, run_env):
    env = dict(run_env, RUST_LOG="info,ort=warn")
    with Server() as server:
        extra = "  workers:\n    shards: 2\n"
        job = write_job(tmp_path / "job.yaml", "secrets", f"{server.base}/list.txt", f"file://{tmp_path}/out", extra)
        job.write_text(job.read_text().replace('  model:\n', '    allowPrivateNetworks: true\n  model:\n', 1))
        logs = []
        # plan, each shard and merge in their own processes, as in a cluster
        logs.append(run_labeljob(labeljob_bin, env, "plan", "--job", job))
        for index in range(2):
            logs.append(run_labeljob(labeljob_bin, env, "shard", "--job", job, "--index", index))
        logs.append(run_labeljob(labeljob_bin, env, "merge", "--job", job, check=False))
    out = tmp_path / "out"
    assert_no_secret("the output files", all_output_text(out))
    for proc in logs:
        assert_no_secret("the logs", proc.stdout + proc.stderr)
    assert any("retrying" in p.stderr for p in logs), "the 503 was retried and logged"

    coco = json.loads((out / "annotations.json").read_text())
    names = sorted(img["file_name"] for img in coco["images"])
    host = server.base.removeprefix("http://")
    assert names == sorted([
        f"http://{host}/img/chelsea.png?token=REDACTED",
        f"http://{host}/img/dog.jpg?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED",
        f"http://REDACTED:REDACTED@{host}/img/eagle.jpg",
    ]), "the three photos were fetched with their real credentials"
    assert all(img["width"] > 0 for img in coco["images"])

    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [(e["uri"], e["kind"]) for e in errors] == [
        (f"http://{host}/img/internal.jpg?sv=2022&sig=REDACTED", "unknown-format")]
    assert INTERNAL not in errors[0]["reason"] and "hunter2" not in errors[0]["reason"], errors[0]
    assert INTERNAL not in all_output_text(out)


def test_file_symlink_outside_the_input_is_one_failed_image(tmp_path, labeljob_bin, run_env):
    inputs, outside = tmp_path / "in", tmp_path / "outside"
    inputs.mkdir()
    outside.mkdir()
    for name in PHOTO_NAMES[:2]:
        shutil.copy(PHOTOS / name, inputs / name)
    (outside / "secret.jpg").write_bytes((PHOTOS / "giraffe.jpg").read_bytes())
    os.symlink(outside / "secret.jpg", inputs / "evil.jpg")
    os.symlink(inputs / "dog.jpg", inputs / "alias.jpg")  # inside the prefix: followed
    job = write_job(tmp_path / "job.yaml", "links", f"file://{inputs}", f"file://{tmp_path}/out")
    run_labeljob(labeljob_bin, run_env, "run", job, "--no-progress")
    out = tmp_path / "out"
    coco = json.loads((out / "annotations.json").read_text())
    assert sorted(Path(i["file_name"]).name for i in coco["images"]) == ["alias.jpg", "dog.jpg", "eagle.jpg"]
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [(Path(e["uri"]).name, e["stage"]) for e in errors] == [("evil.jpg", "download")], errors
    assert "outside the input directory" in errors[0]["reason"], errors[0]
