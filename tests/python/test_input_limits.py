"""Limits on the input (issue: hardening, cases 5 and 12): an image file or URL body over the
256 MiB limit is refused from its size (file size, object size, Content-Length) before it is
read, so that it costs no memory; a URL that never answers fails within `input.timeouts`. Each
is one errors.jsonl entry naming the file and the limit, and the photos beside it are
labelled."""

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler

from conftest import LocalHTTPServer, PHOTOS, run_measured, write_job

LIMIT = 256 << 20


def test_oversized_files_are_refused_unread(tmp_path, labeljob_bin, run_env):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(PHOTOS / "dog.jpg", src / "dog.jpg")
    for name in ["huge-a.jpg", "huge-b.jpg"]:
        with open(src / name, "wb") as f:
            f.truncate(2 << 30)  # sparse: 2 GiB of zeros, no disk used
    job = write_job(tmp_path / "job.yaml", "huge", f"file://{src}", f"file://{tmp_path}/out",
                    "  workers:\n    concurrency: 2\n")
    code, out, err, rss_kib = run_measured(labeljob_bin, run_env, "run", job, "--no-progress")
    assert code == 0, (out, err)
    assert "labelled 1 of 3 images (2 failed" in out, out
    errors = [json.loads(line) for line in (tmp_path / "out/errors.jsonl").read_text().splitlines()]
    assert len(errors) == 2, errors
    for e, name in zip(sorted(errors, key=lambda e: e["uri"]), ["huge-a.jpg", "huge-b.jpg"]):
        assert (e["stage"], e["kind"]) == ("download", "too-large"), e
        assert e["uri"] == f"file://{src}/{name}", e
        assert f"{name}: {2 << 30} bytes exceeds the limit of {LIMIT} bytes" in e["reason"], e
    # Reading both whole first once cost over 4 GB of RSS.
    print(f"\ntwo 2 GiB files beside a photo: peak RSS {rss_kib // 1024} MiB")
    assert rss_kib < 300 * 1024, f"peak RSS {rss_kib} KiB"
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert report["errorsByKind"] == {"too-large": 2}, report


class HangingServer(LocalHTTPServer):
    """127.0.0.1:0 serving a URL list of two photos and one URL that is accepted and never
    answered (its handler waits until the server is stopped)."""

    def __init__(self):
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/hang.jpg":
                    outer.release.wait()
                    return
                if self.path == "/list.txt":
                    body = "\n".join(f"{outer.base}/{n}" for n in ["dog.jpg", "hang.jpg", "eagle.jpg"]).encode()
                else:
                    body = (PHOTOS / self.path.lstrip("/")).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)

    def stopping(self):
        self.release.set()


def test_a_url_that_never_answers_fails_alone_within_its_deadline(tmp_path, labeljob_bin, run_env):
    # Case 12: a hanging URL cost 4 x 120 s. input.timeouts bounds each attempt (readSeconds)
    # and the image (deadlineSeconds, retries included); the other images are labelled.
    with HangingServer() as server:
        job = write_job(tmp_path / "job.yaml", "hang", f"{server.base}/list.txt", f"file://{tmp_path}/out")
        job.write_text(job.read_text().replace(
            "  model:\n",
            "    allowPrivateNetworks: true\n    timeouts:\n      readSeconds: 1\n      deadlineSeconds: 3\n  model:\n", 1))
        code, out, err, _ = run_measured(labeljob_bin, run_env, "run", job, "--no-progress")
    assert code == 0, (out, err)
    assert "labelled 2 of 3 images (1 failed" in out, out
    [e] = [json.loads(line) for line in (tmp_path / "out/errors.jsonl").read_text().splitlines()]
    assert (e["uri"], e["stage"], e["kind"]) == (f"{server.base}/hang.jpg", "download", "timeout"), e
    assert "not downloaded within the deadline of 3 s (input.timeouts.deadlineSeconds)" in e["reason"], e
