"""`make images-test`: the built images, run as the cluster runs them (non-root, read-only root,
no network for batch work), with the same engine that built them (scripts/images.sh engine).

- operator: `--help` works, `crd` prints exactly crds/labeljob.yaml;
- worker: `labeljob --version` is the workspace version; `labeljob run` of
  config/samples/labeljob-local.yaml with the photos mounted read-only and the output on a mounted
  volume (`--read-only`, `--user 65532`, `--network none`) gives annotations that pycocotools
  loads and that equal the host binary's run of the same file (dates aside);
- worker `labeljob serve` answers /v2/health/ready and one inference from Triton's own client.

Env: OPERATOR_IMAGE, WORKER_IMAGE, IMAGE_TAG (as scripts/images.sh), LABELJOB_BIN (host binary).
"""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
from PIL import Image
from pycocotools.coco import COCO

REPO = Path(__file__).resolve().parents[2]
TAG = os.environ.get("IMAGE_TAG", "0.1.0")
OPERATOR = f"{os.environ.get('OPERATOR_IMAGE', 'ghcr.io/labeljob/labeljob-operator')}:{TAG}"
WORKER = f"{os.environ.get('WORKER_IMAGE', 'ghcr.io/labeljob/labeljob-worker')}:{TAG}"
SAMPLE = Path("config/samples/labeljob-local.yaml")
PHOTOS = Path("tests/fixtures/photos")
MODEL = "ssd-mobilenet-v2-coco"
UID = "65532"


@pytest.fixture(scope="session")
def engine() -> str:
    out = subprocess.run([str(REPO / "scripts/images.sh"), "engine"], capture_output=True, text=True, check=True)
    eng = out.stdout.strip()
    if eng == "podman":
        # The same containers.conf the build used (runc, host netns by default, ulimits).
        conf = REPO / ".cache/images/containers.conf"
        assert conf.is_file(), "run `make images` first (it writes .cache/images/containers.conf)"
        os.environ.setdefault("CONTAINERS_CONF", str(conf))
    return eng


def run(engine, *args, timeout=600, check=True):
    proc = subprocess.run([engine, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{engine} {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


# Run a container the way the operator's pods run: non-root, read-only root, /tmp writable.
LOCKED = ["run", "--rm", "--read-only", "--tmpfs", "/tmp:rw,size=256m", "--user", f"{UID}:{UID}"]


def workspace_version() -> str:
    m = re.search(r'^\[workspace\.package\][^\[]*?^version = "([^"]+)"', (REPO / "Cargo.toml").read_text(), re.M | re.S)
    assert m, "workspace version in Cargo.toml"
    return m.group(1)


def test_operator_help_and_crd(engine):
    out = run(engine, *LOCKED, "--network", "none", OPERATOR, "--help").stdout
    assert "Usage:" in out and "crd" in out, out
    crd = run(engine, *LOCKED, "--network", "none", OPERATOR, "crd").stdout
    assert crd == (REPO / "crds/labeljob.yaml").read_text(), "the image's CRD equals crds/labeljob.yaml"


def test_worker_version(engine):
    out = run(engine, *LOCKED, "--network", "none", WORKER, "--version").stdout
    assert out.strip() == f"labeljob {workspace_version()}", out


def job_tree(root: Path) -> Path:
    """The sample job file with the photos at the same relative place; an empty out/."""
    (root / SAMPLE.parent).mkdir(parents=True)
    shutil.copy(REPO / SAMPLE, root / SAMPLE)
    shutil.copytree(REPO / PHOTOS, root / PHOTOS)
    (root / "out").mkdir()
    return root


def without_date(annotations: Path) -> dict:
    doc = json.loads(annotations.read_text())
    doc["info"].pop("date_created", None)
    return doc


def test_worker_run_equals_host(engine, tmp_path):
    # One tree, at the same absolute path for both runs, so that every URI (file_name, the
    # manifest digest) is the same: first the host binary, then the image.
    root = job_tree(tmp_path / "job")
    env = dict(os.environ, RUST_LOG="warn")
    env.setdefault("ORT_DYLIB_PATH", str(REPO / ".cache/ort/lib/libonnxruntime.so"))
    env.setdefault("LABELJOB_MODELS_DIR", str(REPO / "models"))
    bin_ = os.environ.get("LABELJOB_BIN", str(REPO / "target/release/labeljob"))
    subprocess.run([bin_, "run", str(root / SAMPLE), "--no-progress"], env=env, check=True, capture_output=True, timeout=600)
    want = tmp_path / "host-out"
    shutil.move(root / "out/demo", want)

    (root / "out").chmod(0o777)  # the container runs as 65532
    proc = run(
        engine, *LOCKED, "--network", "none",
        "-v", f"{root / SAMPLE.parent}:{root / SAMPLE.parent}:ro",
        "-v", f"{root / PHOTOS}:{root / PHOTOS}:ro",
        "-v", f"{root / 'out'}:{root / 'out'}",
        WORKER, "run", str(root / SAMPLE), "--no-progress",
    )
    assert "labelled 13 of 13 images (0 failed" in proc.stdout, proc.stdout + proc.stderr

    got = root / "out/demo"
    for f in ("annotations.json", "results.json", "report.json", "errors.jsonl"):
        assert (got / f).is_file(), f
    coco = COCO(str(got / "annotations.json"))
    assert len(coco.getImgIds()) == 13 and len(coco.getAnnIds()) > 13
    coco.loadRes(str(got / "results.json"))
    assert without_date(got / "annotations.json") == without_date(want / "annotations.json")
    assert json.loads((got / "results.json").read_text()) == json.loads((want / "results.json").read_text())
    print(f"\nimage run: {len(coco.getImgIds())} images, {len(coco.getAnnIds())} annotations, equal to the host run")


def test_worker_serve_answers_triton_client(engine):
    port = free_port()
    name = f"labeljob-images-test-serve-{os.getpid()}"
    run(
        engine, "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp:rw,size=64m",
        "--user", f"{UID}:{UID}", "--network", "host",
        WORKER, "serve", "--host", "127.0.0.1", "--port", str(port),
    )
    try:
        wait_ready(engine, name, port)
        client = httpclient.InferenceServerClient(url=f"127.0.0.1:{port}")
        assert client.is_model_ready(MODEL)
        photo = REPO / PHOTOS / "astronaut.png"
        pixels = np.asarray(Image.open(photo).convert("RGB").resize((300, 300), Image.BILINEAR), dtype=np.uint8)
        inp = httpclient.InferInput("images", [1, 300, 300, 3], "UINT8")
        inp.set_data_from_numpy(pixels[None], binary_data=True)
        res = client.infer(MODEL, [inp])
        n = int(res.as_numpy("counts")[0])
        classes, scores = res.as_numpy("classes")[0][:n], res.as_numpy("scores")[0][:n]
        assert n > 0 and classes[0] == 0 and scores[0] > 0.5, (n, classes, scores)  # a person
        print(f"serve in the image: {n} detections on {photo.name}, best: class {classes[0]} score {scores[0]:.2f}")
        client.close()
    finally:
        run(engine, "rm", "-f", "-t", "5", name, check=False)


def wait_ready(engine, name, port, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        state = run(engine, "inspect", "--format", "{{.State.Running}}", name, check=False).stdout.strip()
        if state == "false":
            logs = run(engine, "logs", name, check=False)
            raise AssertionError(f"labeljob serve exited in the image:\n{logs.stdout}{logs.stderr}")
        time.sleep(0.1)
    raise AssertionError(f"labeljob serve in the image not ready on 127.0.0.1:{port} after {seconds} s")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
