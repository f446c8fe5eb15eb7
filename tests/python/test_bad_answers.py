"""A malformed inference answer (issue: hardening, case 12) is an error of that image, never
detections and never a failed job: `labeljob run --endpoint` against a fake Open Inference
Protocol server on 127.0.0.1 that answers some images with a count beyond its tensor, a
negative class or a box that is not finite (binary FP32 NaN). Those images are errors.jsonl
entries (stage `inference`, kind `bad-answer`, the reason naming the field); the others are
labelled with the server's one box."""

import json
import shutil
import struct
import threading
from http.server import BaseHTTPRequestHandler

from conftest import LocalHTTPServer, PHOTOS, run_measured, write_job

NAMES = ["a-dog.jpg", "b-eagle.jpg", "c-horses.jpg", "d-giraffe.jpg", "e-chelsea.png"]
# the answer for the n-th infer request (images arrive in manifest order: concurrency 1)
ANSWERS = ["good", "beyond", "negative", "nan", "good"]
WANT = {
    "beyond": "outputs.counts[0]: 5 is not a count within K = 1",
    "negative": "outputs.classes[0][0]: -1 is negative",
    "nan": "a score or box coordinate is not finite",
}


def metadata(name):
    t = lambda n, d, s: {"name": n, "datatype": d, "shape": s}  # noqa: E731
    return {"name": name, "versions": ["1"], "platform": "fake",
            "inputs": [t("images", "UINT8", [-1, 300, 300, 3])],
            "outputs": [t("boxes", "FP32", [-1, -1, 4]), t("classes", "INT32", [-1, -1]),
                        t("scores", "FP32", [-1, -1]), t("counts", "INT32", [-1])]}


def answer(kind):
    """An infer response of one image, one row: JSON tensors, or binary boxes for NaN."""
    box = [10.0, 20.0, 110.0, 220.0]
    outputs = [
        {"name": "classes", "datatype": "INT32", "shape": [1, 1], "data": [-1 if kind == "negative" else 17]},
        {"name": "scores", "datatype": "FP32", "shape": [1, 1], "data": [0.9]},
        {"name": "counts", "datatype": "INT32", "shape": [1], "data": [5 if kind == "beyond" else 1]},
    ]
    binary = b""
    if kind == "nan":
        binary = struct.pack("<4f", float("nan"), *box[1:])
        outputs.insert(0, {"name": "boxes", "datatype": "FP32", "shape": [1, 1, 4],
                           "parameters": {"binary_data_size": len(binary)}})
    else:
        outputs.insert(0, {"name": "boxes", "datatype": "FP32", "shape": [1, 1, 4], "data": box})
    head = json.dumps({"model_name": "fake", "outputs": outputs}).encode()
    return head, binary


class FakeServer(LocalHTTPServer):
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, body, headers=()):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self.reply(json.dumps(metadata(self.path.rsplit("/", 1)[-1])).encode())

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    n = outer.requests
                    outer.requests += 1
                head, binary = answer(ANSWERS[n % len(ANSWERS)])
                extra = [("Inference-Header-Content-Length", str(len(head)))] if binary else []
                self.reply(head + binary, extra)

        super().__init__(Handler)


def test_malformed_answers_fail_their_image_only(tmp_path, labeljob_bin, run_env):
    src = tmp_path / "in"
    src.mkdir()
    for name in NAMES:
        shutil.copy(PHOTOS / name.split("-", 1)[1], src / name)
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.yaml", "bad-answers", f"file://{src}", f"file://{out}",
                    "  workers:\n    concurrency: 1\n")
    with FakeServer() as server:
        code, stdout, err, _ = run_measured(labeljob_bin, run_env, "run", job, "--no-progress",
                                            "--endpoint", server.base)
    assert code == 0, (stdout, err)
    assert "labelled 2 of 5 images (3 failed" in stdout, stdout
    errors = {e["uri"].rsplit("/", 1)[1]: e for e in map(json.loads, (out / "errors.jsonl").read_text().splitlines())}
    for name, kind in zip(NAMES, ANSWERS):
        if kind == "good":
            assert name not in errors, errors[name]
            continue
        e = errors[name]
        assert (e["stage"], e["kind"]) == ("inference", "bad-answer"), e
        assert WANT[kind] in e["reason"], e
    coco = json.loads((out / "annotations.json").read_text())
    assert sorted(i["file_name"].rsplit("/", 1)[1] for i in coco["images"]) == [NAMES[0], NAMES[4]]
    assert len(coco["annotations"]) == 2, "one box each, none from a malformed answer"
