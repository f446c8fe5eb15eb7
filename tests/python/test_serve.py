"""`labeljob serve` from the outside: Triton's own Python client (tritonclient.http, binary
tensors) against the server on 127.0.0.1, detections equal to a Python onnxruntime run of the
same model on the same pixels; `labeljob run --endpoint` equal to in-process inference; and a
job that survives its server being killed (-9) and restarted, every image labelled once."""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as httpclient
from PIL import Image

from conftest import MODEL, PHOTOS, free_port, run_labeljob, write_job

NAME = "ssd-mobilenet-v2-coco"
FLOOR = 0.05  # the server's default --score-threshold
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def photos():
    return sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in IMAGE_EXT)


def start_server(labeljob_bin, env, port):
    proc = subprocess.Popen(
        [str(labeljob_bin), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"labeljob serve exited {proc.returncode}: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        time.sleep(0.05)
    stop(proc)
    raise AssertionError("labeljob serve did not become ready in 60 s")


def wait_for(condition, seconds, what):
    """Poll `condition` until it holds (True) or `seconds` pass (AssertionError naming `what`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds} s waiting until {what}")


def inferences(port):
    """Images the server at `port` has answered (labeljob_server_images_total), 0 if down."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
            text = r.read().decode()
    except OSError:
        return 0
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("labeljob_server_images_total"))


def stop(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def server(labeljob_bin, run_env):
    port = free_port()
    proc = start_server(labeljob_bin, run_env, port)
    try:
        yield port
    finally:
        stop(proc)
    assert proc.returncode == 0, "SIGTERM stops the server cleanly"


def reference(pixels, session):
    """The model in Python onnxruntime, decoded as the server does (clamp, x1y1x2y2 pixels,
    score floor, best first)."""
    boxes, classes, scores, count = session.run(None, {session.get_inputs()[0].name: pixels[None]})
    out = []
    for i in range(int(count[0])):
        if scores[0, i] < FLOOR:
            continue
        ymin, xmin, ymax, xmax = np.clip(boxes[0, i], 0, 1) * 300
        out.append((int(classes[0, i]), float(scores[0, i]), [xmin, ymin, xmax, ymax]))
    return sorted(out, key=lambda d: -d[1])


def test_triton_client_inference_equals_onnxruntime(server):
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{server}")
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(NAME)
    meta = client.get_model_metadata(NAME)
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "images", "datatype": "UINT8", "shape": [-1, 300, 300, 3]}]
    assert [o["name"] for o in meta["outputs"]] == ["boxes", "classes", "scores", "counts"]

    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    total = 0
    for path in photos():
        pixels = np.asarray(Image.open(path).convert("RGB").resize((300, 300), Image.BILINEAR), dtype=np.uint8)
        inp = httpclient.InferInput("images", [1, 300, 300, 3], "UINT8")
        inp.set_data_from_numpy(pixels[None], binary_data=True)
        outs = [httpclient.InferRequestedOutput(n, binary_data=True) for n in ("boxes", "classes", "scores", "counts")]
        res = client.infer(NAME, [inp], outputs=outs)
        n = int(res.as_numpy("counts")[0])
        boxes, classes, scores = res.as_numpy("boxes")[0], res.as_numpy("classes")[0], res.as_numpy("scores")[0]
        assert res.as_numpy("boxes").dtype == np.float32 and classes.dtype == np.int32
        want = reference(pixels, session)
        assert n == len(want), path.name
        for j, (cls, score, box) in enumerate(want):
            assert classes[j] == cls, path.name
            assert abs(scores[j] - score) <= 1e-4, path.name
            assert np.abs(boxes[j] - np.asarray(box)).max() <= 1.0, path.name
        total += n
    assert total > len(photos()), "the photos contain objects"
    client.close()


def test_errors_over_the_wire(server):
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{server}")
    inp = httpclient.InferInput("images", [1, 200, 300, 3], "UINT8")
    inp.set_data_from_numpy(np.zeros((1, 200, 300, 3), np.uint8), binary_data=True)
    with pytest.raises(Exception, match=r"inputs\[0\]\.shape"):
        client.infer(NAME, [inp])
    with pytest.raises(Exception, match="unknown model"):
        client.get_model_metadata("yolo")
    assert client.is_server_ready()


def coco_without_date(path: Path):
    doc = json.loads(path.read_text())
    doc["info"].pop("date_created", None)
    return doc


def test_run_with_endpoint_equals_in_process(server, tmp_path, labeljob_bin, run_env):
    extra = "  postprocess:\n    scoreThreshold: 0.3\n  workers:\n    shards: 2\n"
    local = write_job(tmp_path / "local.yaml", "serve-eq", f"file://{PHOTOS}", f"file://{tmp_path}/local", extra)
    remote = write_job(tmp_path / "remote.yaml", "serve-eq", f"file://{PHOTOS}", f"file://{tmp_path}/remote", extra)
    run_labeljob(labeljob_bin, run_env, "run", local, "--no-progress")
    proc = run_labeljob(labeljob_bin, run_env, "run", remote, "--no-progress", "--endpoint", f"http://127.0.0.1:{server}")
    assert "labelled 13 of 13 images" in proc.stdout, proc.stdout
    a = coco_without_date(tmp_path / "local" / "annotations.json")
    b = coco_without_date(tmp_path / "remote" / "annotations.json")
    assert a["annotations"], "the photos contain objects"
    assert a == b


def test_job_survives_a_killed_server(tmp_path, labeljob_bin, run_env):
    images = tmp_path / "images"
    images.mkdir()
    sources = photos()
    for i in range(16):
        for p in sources:
            shutil.copy(p, images / f"{i:02d}-{p.name}")
    count = 16 * len(sources)
    assert count >= 200
    port = free_port()
    job = write_job(tmp_path / "job.yaml", "killed", f"file://{images}", f"file://{tmp_path}/out",
                    "  workers:\n    shards: 4\n    concurrency: 8\n")
    # The copies are the load: every one of them must reach the (killed) server.
    job.write_text(job.read_text().replace(f'    uri: "file://{images}"\n', f'    uri: "file://{images}"\n    dedup: {{mode: none}}\n'))
    server = start_server(labeljob_bin, run_env, port)
    # The client's retries are logged at debug level: the test waits for one, not for a time.
    log = tmp_path / "run.log"
    env = dict(run_env, RUST_LOG="info,labeljob_worker::oip::client=debug")
    with open(log, "w") as log_file:
        run = subprocess.Popen(
            [str(labeljob_bin), "run", str(job), "--no-progress", "--endpoint", f"http://127.0.0.1:{port}"],
            env=env, stdout=subprocess.PIPE, stderr=log_file, text=True,
        )
    restarted = None
    try:
        served = wait_for(lambda: inferences(port) >= 16, 120, "the server answered 16 images")
        assert served and run.poll() is None, "the job is still running when the server dies"
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        assert wait_for(lambda: ": retrying" in log.read_text() or run.poll() is not None, 120,
                        "the client retried against the dead server")
        assert run.poll() is None, f"the run ended while the server was down: {log.read_text()[-2000:]}"
        restarted = start_server(labeljob_bin, run_env, port)
        out, _ = run.communicate(timeout=300)
        assert run.returncode == 0, f"{out}\n{log.read_text()[-4000:]}"
    finally:
        if run.poll() is None:
            os.kill(run.pid, signal.SIGKILL)
            run.wait()
        stop(server)
        if restarted is not None:
            stop(restarted)
    assert f"labelled {count} of {count} images" in out, out
    doc = json.loads((tmp_path / "out" / "annotations.json").read_text())
    names = [img["file_name"] for img in doc["images"]]
    assert len(names) == count and len(set(names)) == count, "every image exactly once"
    assert len({img["id"] for img in doc["images"]}) == count
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["images"] == {"total": count, "labelled": count, "failed": 0, "main": count,
                                "review": 0, "duplicates": 0, "modelRuns": count}
