"""`labeljob run` on `az://` (Azurite) and `gs://` (fake-gcs-server), each started on 127.0.0.1
by its script in scripts/ and stopped by PID: the same job as on `file://` — input listed with
include/exclude globs, 3 shards, merge — gives the same annotations; a run killed mid-way and run
again labels every image exactly once, reusing the finished shards, with outputs equal to an
uninterrupted `file://` run; a wrong Azure key fails naming the URI and the credential, never
showing the key. Credentials are passed the documented way, as environment variables
(`AZURE_STORAGE_ACCOUNT_NAME` / `_KEY` / `_ENDPOINT`; `GOOGLE_APPLICATION_CREDENTIALS` +
`GOOGLE_BASE_URL`). fake-gcs-server does not accept object_store's XML uploads (see
store/tests/gcs.rs), so `gs://` is the input and the output is `file://`."""

import json
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import PHOTOS, REPO, run_labeljob

JPEGS = sorted(p for p in PHOTOS.iterdir() if p.suffix == ".jpg")
PNGS = sorted(p for p in PHOTOS.iterdir() if p.suffix == ".png")
# listed by the globs below: every .jpg at the top, the .png files under png/; not the rest
INCLUDE = '["*.jpg", "png/**/*.png"]'
EXCLUDE = '["**/skip-*"]'


def start_server(script: str, d: Path) -> dict:
    proc = subprocess.run([str(REPO / "scripts" / script), "start", str(d)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        subprocess.run([str(REPO / "scripts" / script), "stop", str(d)], check=False, timeout=60)
        pytest.fail(f"{script} start failed: {proc.stderr}")
    env = {}
    for line in (d / "env").read_text().splitlines():
        k, v = line.removeprefix("export ").split("=", 1)
        env[k] = v.strip("'")
    return env


@pytest.fixture(scope="module")
def az_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("az") / "server"
    try:
        yield start_server("az-server.sh", d)
    finally:
        subprocess.run([str(REPO / "scripts" / "az-server.sh"), "stop", str(d)], check=False, timeout=60)


@pytest.fixture(scope="module")
def gcs_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("gcs") / "server"
    try:
        yield start_server("gcs-server.sh", d)
    finally:
        subprocess.run([str(REPO / "scripts" / "gcs-server.sh"), "stop", str(d)], check=False, timeout=60)


@pytest.fixture(scope="module")
def container(az_server):
    from azure.storage.blob import BlobServiceClient

    # the SDK's default API version is newer than Azurite 3.35 knows (it answers 400)
    service = BlobServiceClient(account_url=az_server["AZURE_STORAGE_ENDPOINT"], api_version="2025-11-05", credential={
        "account_name": az_server["AZURE_STORAGE_ACCOUNT_NAME"], "account_key": az_server["AZURE_STORAGE_ACCOUNT_KEY"]})
    return service.get_container_client(az_server["AZURE_CONTAINER"])


def gcs_upload(server: dict, name: str, data: bytes):
    """Seed through the JSON API's media upload (an independent client: plain HTTP)."""
    url = (f"{server['GOOGLE_BASE_URL']}/upload/storage/v1/b/{server['GCS_BUCKET']}/o"
           f"?uploadType=media&name={urllib.parse.quote(name, safe='')}")
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=30) as resp:
        assert resp.status == 200, resp.status


def layout(photos_dir: Path) -> dict[str, Path]:
    """Relative key → source file: what the globs select plus what they must leave out."""
    keys = {p.name: p for p in JPEGS}
    keys.update({f"png/{p.name}": p for p in PNGS})
    keys["skip-dog.jpg"] = JPEGS[0]          # excluded
    keys["nested/deep.jpg"] = JPEGS[1]       # "*.jpg" stays in one segment
    keys["top.png"] = PNGS[0]                # .png only under png/
    keys["notes.txt"] = PHOTOS / "SOURCES.md"
    for key, src in keys.items():
        (photos_dir / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, photos_dir / key)
    return keys


def job(path: Path, name: str, input_uri: str, output_uri: str, shards: int, parallelism: int = 1) -> Path:
    path.write_text(f"""apiVersion: labeljob.dev/v1alpha1
kind: LabelJob
metadata:
  name: {name}
spec:
  input:
    uri: "{input_uri}"
    include: {INCLUDE}
    exclude: {EXCLUDE}
  model:
    builtin: ssd-mobilenet-v2-coco
  workers:
    shards: {shards}
    parallelism: {parallelism}
  output:
    uri: "{output_uri}"
""")
    return path


def canon(d: dict):
    names = {i["id"]: i["file_name"].split("/photos/", 1)[-1].split("/many/", 1)[-1] for i in d["images"]}
    imgs = sorted((names[i["id"]], i["width"], i["height"]) for i in d["images"])
    anns = sorted((names[a["image_id"]], a["category_id"], tuple(a["bbox"]), a["score"]) for a in d["annotations"])
    return imgs, anns, d["categories"]


@pytest.fixture(scope="module")
def file_reference(tmp_path_factory, labeljob_bin, run_env):
    tmp = tmp_path_factory.mktemp("file-ref")
    keys = layout(tmp / "photos")
    run_labeljob(labeljob_bin, run_env, "run", job(tmp / "job.yaml", "ref", f"file://{tmp}/photos", f"file://{tmp}/out", 3), "--no-progress")
    got = json.loads((tmp / "out" / "annotations.json").read_text())
    selected = {k for k in keys if k in {p.name for p in JPEGS} or k.startswith("png/")}
    assert sorted(i["file_name"].split("/photos/", 1)[1] for i in got["images"]) == sorted(selected)
    return keys, got


def az_env(run_env, az_server, **override):
    env = dict(run_env, **{k: v for k, v in az_server.items() if k.startswith("AZURE_STORAGE_")})
    env.update(override)
    return env


def test_az_job_gives_the_same_annotations_as_file(file_reference, az_server, container, tmp_path, labeljob_bin, run_env):
    keys, want = file_reference
    for key, src in keys.items():
        container.upload_blob(f"photos/{key}", src.read_bytes(), overwrite=True)
    f = job(tmp_path / "job.yaml", "az", "az://labeljob/photos/", "az://labeljob/out", 3)
    proc = run_labeljob(labeljob_bin, az_env(run_env, az_server), "run", f, "--no-progress")
    assert f"labelled {len(want['images'])} of {len(want['images'])} images" in proc.stdout, proc.stdout
    got = json.loads(container.download_blob("out/annotations.json").readall())
    assert canon(got) == canon(want)
    assert all(i["file_name"].startswith("az://labeljob/photos/") for i in got["images"])
    names = {b.name for b in container.list_blobs(name_starts_with="out/")}
    assert {"out/results.json", "out/errors.jsonl", "out/report.json", "out/manifest.jsonl",
            "out/shards/shard-00000.json", "out/shards/shard-00002.json"} <= names, names


def test_gs_input_gives_the_same_annotations_as_file(file_reference, gcs_server, tmp_path, labeljob_bin, run_env):
    keys, want = file_reference
    for key, src in keys.items():
        gcs_upload(gcs_server, f"photos/{key}", src.read_bytes())
    f = job(tmp_path / "job.yaml", "gs", "gs://labeljob/photos/", f"file://{tmp_path}/out", 3)
    env = dict(run_env, **{k: v for k, v in gcs_server.items() if k.startswith("GOOGLE_")})
    run_labeljob(labeljob_bin, env, "run", f, "--no-progress")
    got = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert canon(got) == canon(want)
    assert all(i["file_name"].startswith("gs://labeljob/photos/") for i in got["images"])


def kill_after_shards(labeljob_bin, env, f: Path, shards_done, at_least: int):
    """Start `labeljob run F`, SIGKILL it once `shards_done()` (a poll of the output store)
    reaches `at_least`; returns what was done then."""
    proc = subprocess.Popen([str(labeljob_bin), "run", str(f), "--no-progress"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        done = shards_done()
        while time.time() < deadline and len(done) < at_least and proc.poll() is None:
            time.sleep(0.05)
            done = shards_done()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    return shards_done()


def many(n: int):
    return [(f"img{i:04d}.jpg", JPEGS[i % len(JPEGS)]) for i in range(n)]


def test_az_kill_and_rerun_labels_every_image_once(container, az_server, tmp_path, labeljob_bin, run_env):
    images = many(240)
    (tmp_path / "many").mkdir()
    for name, src in images:
        container.upload_blob(f"many/{name}", src.read_bytes(), overwrite=True)
        shutil.copyfile(src, tmp_path / "many" / name)
    env = az_env(run_env, az_server)
    f = job(tmp_path / "job.yaml", "resume", "az://labeljob/many", "az://labeljob/resume", 12, 2)

    def shards_done():
        return {b.name: b.etag for b in container.list_blobs(name_starts_with="resume/shards/")}

    before = kill_after_shards(labeljob_bin, env, f, shards_done, 3)
    assert 3 <= len(before) < 12, f"kill came too late or too early: {sorted(before)}"
    assert not container.get_blob_client("resume/annotations.json").exists()

    proc = run_labeljob(labeljob_bin, env, "run", f, "--no-progress")
    assert f"shards: {12 - len(before)} run, {len(before)} reused" in proc.stdout, proc.stdout
    after = shards_done()
    assert all(after[name] == etag for name, etag in before.items()), "a finished shard was redone"
    got = json.loads(container.download_blob("resume/annotations.json").readall())
    assert sorted(i["file_name"].rsplit("/", 1)[1] for i in got["images"]) == sorted(n for n, _ in images), "every image exactly once"

    ref = job(tmp_path / "ref.yaml", "ref", f"file://{tmp_path}/many", f"file://{tmp_path}/ref", 12, 2)
    run_labeljob(labeljob_bin, run_env, "run", ref, "--no-progress")
    assert canon(got) == canon(json.loads((tmp_path / "ref" / "annotations.json").read_text()))


def test_gs_kill_and_rerun_labels_every_image_once(gcs_server, tmp_path, labeljob_bin, run_env):
    images = many(240)
    for name, src in images:
        gcs_upload(gcs_server, f"many/{name}", src.read_bytes())
    env = dict(run_env, **{k: v for k, v in gcs_server.items() if k.startswith("GOOGLE_")})
    out = tmp_path / "out"
    f = job(tmp_path / "job.yaml", "resume", "gs://labeljob/many", f"file://{out}", 12, 2)

    def shards_done():
        return {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("shard-*.json")}

    before = kill_after_shards(labeljob_bin, env, f, shards_done, 3)
    assert 3 <= len(before) < 12, f"kill came too late or too early: {sorted(before)}"
    proc = run_labeljob(labeljob_bin, env, "run", f, "--no-progress")
    assert f"shards: {12 - len(before)} run, {len(before)} reused" in proc.stdout, proc.stdout
    assert all(shards_done()[n] == t for n, t in before.items()), "a finished shard was redone"
    got = json.loads((out / "annotations.json").read_text())
    assert sorted(i["file_name"].rsplit("/", 1)[1] for i in got["images"]) == sorted(n for n, _ in images)


def test_wrong_azure_key_is_named_not_shown(az_server, tmp_path, labeljob_bin, run_env):
    wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3I="
    f = job(tmp_path / "job.yaml", "denied", "az://labeljob/photos/", f"file://{tmp_path}/out", 1)
    env = az_env(run_env, az_server, AZURE_STORAGE_ACCOUNT_KEY=wrong)
    proc = run_labeljob(labeljob_bin, env, "run", f, "--no-progress", check=False)
    assert proc.returncode != 0
    err = proc.stderr
    assert "az://labeljob/photos" in err, err
    assert "the store refused the credentials (account key AZURE_STORAGE_ACCOUNT_KEY (account labeljob), from the environment)" in err, err
    assert wrong not in err and az_server["AZURE_STORAGE_ACCOUNT_KEY"] not in err and wrong not in proc.stdout
