"""Shared pytest fixtures: the release `labeljob` binary, the ONNX Runtime library, the model,
fixture photos, free ports and a helper to run LabelJob files. `make test` builds the binary and
sets LABELJOB_BIN; running pytest by hand needs `cargo build --release -p labeljob-worker`."""

import os
import socket
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO / "tests" / "fixtures" / "photos"
CORRUPT = REPO / "tests" / "fixtures" / "corrupt"
MODEL = REPO / "models" / "ssd-mobilenet-v2-coco.onnx"


def _ort_lib() -> Path:
    env = os.environ.get("ORT_DYLIB_PATH")
    if env:
        return Path(env)
    return REPO / ".cache" / "ort" / "lib" / "libonnxruntime.so"


@pytest.fixture(scope="session")
def labeljob_bin() -> Path:
    path = Path(os.environ.get("LABELJOB_BIN", REPO / "target" / "release" / "labeljob"))
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make build` (or set LABELJOB_BIN)")
    return path


@pytest.fixture(scope="session")
def ort_lib() -> Path:
    lib = _ort_lib()
    if not lib.exists():
        pytest.fail(f"{lib} is missing: run scripts/fetch-ort.sh (make test does)")
    return lib


@pytest.fixture(scope="session")
def run_env(ort_lib) -> dict:
    env = dict(os.environ)
    env["ORT_DYLIB_PATH"] = str(ort_lib)
    env["LABELJOB_MODELS_DIR"] = str(REPO / "models")
    env.setdefault("RUST_LOG", "warn")
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_job(path: Path, name: str, input_uri: str, output_uri: str, extra: str = "") -> Path:
    """Write a LabelJob file for the builtin model."""
    path.write_text(
        f"""apiVersion: labeljob.dev/v1alpha1
kind: LabelJob
metadata:
  name: {name}
spec:
  input:
    uri: "{input_uri}"
  model:
    builtin: ssd-mobilenet-v2-coco
  output:
    uri: "{output_uri}"
{extra}"""
    )
    return path


def run_labeljob(labeljob_bin: Path, env: dict, *args, check=True, timeout=600):
    proc = subprocess.run(
        [str(labeljob_bin), *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"labeljob {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_measured(labeljob_bin, env, *args):
    """Run labeljob in a child of a fresh Python, so its peak RSS is its own."""
    code = (
        "import resource, subprocess, sys; "
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "sys.stdout.write(p.stdout); sys.stderr.write(p.stderr); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
        "sys.exit(p.returncode)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(labeljob_bin), *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=120)
    *stderr, rss = proc.stderr.rstrip("\n").split("\n")
    return proc.returncode, proc.stdout, "\n".join(stderr), int(rss)


class LocalHTTPServer:
    """A ThreadingHTTPServer on 127.0.0.1 (a free port) serving `handler` on a thread while the
    `with` block runs; stopped and closed at its end. `base` is its http:// URL. Subclasses
    override `stopping` to release requests they hold before the server shuts down."""

    def __init__(self, handler):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def stopping(self):
        pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping()
        self.httpd.shutdown()
        self.thread.join()
        self.httpd.server_close()
