"""Reruns on the same output (issue: hardening, cases 2 and 3): whatever the output's history,
every image is labelled exactly once. A shard file is reused only for exactly the range it
covers; `overwrite: Replace` lists the input again; `Resume` keeps the frozen listing and says
so loudly when the input now lists differently."""

import json
import shutil
from pathlib import Path

from pycocotools.coco import COCO

from conftest import PHOTOS, run_labeljob


def photos_copy(dst: Path) -> Path:
    shutil.copytree(PHOTOS, dst, ignore=shutil.ignore_patterns("*.md", "*.txt"))
    return dst


def write_job_fixed(path: Path, src: Path, out: Path, shards: int, overwrite: str) -> Path:
    path.write_text(
        f"""apiVersion: labeljob.dev/v1alpha1
kind: LabelJob
metadata:
  name: rerun
spec:
  input:
    uri: "file://{src}"
  model:
    builtin: ssd-mobilenet-v2-coco
  workers:
    shards: {shards}
  output:
    uri: "file://{out}"
    overwrite: {overwrite}
"""
    )
    return path


def labelled(out: Path) -> list[str]:
    coco = COCO(str(out / "annotations.json"))
    ids = [i["id"] for i in coco.dataset["images"]]
    assert len(ids) == len(set(ids)), "image ids are unique"
    return sorted(Path(i["file_name"]).name for i in coco.dataset["images"])


def test_changing_the_shard_count_labels_every_image_once(tmp_path, labeljob_bin, run_env):
    src = photos_copy(tmp_path / "in")
    names = sorted(p.name for p in src.iterdir())
    out = tmp_path / "out"
    for shards in (2, 3, 1, 5, 2):
        f = write_job_fixed(tmp_path / f"job{shards}.yaml", src, out, shards, "Resume")
        proc = run_labeljob(labeljob_bin, run_env, "run", f, "--no-progress")
        assert f"labelled {len(names)} of {len(names)} images" in proc.stdout, (shards, proc.stdout)
        assert labelled(out) == names, f"after a run with {shards} shards"
        report = json.loads((out / "report.json").read_text())
        assert report["images"]["labelled"] + report["images"]["failed"] == len(names), report["images"]
    # The same shard count again reuses every shard.
    proc = run_labeljob(labeljob_bin, run_env, "run", f, "--no-progress")
    assert "shards: 0 run, 2 reused" in proc.stdout, proc.stdout


def test_replace_lists_the_input_again(tmp_path, labeljob_bin, run_env):
    src = photos_copy(tmp_path / "in")
    out = tmp_path / "out"
    run_labeljob(labeljob_bin, run_env, "run", write_job_fixed(tmp_path / "a.yaml", src, out, 2, "Resume"), "--no-progress")
    shutil.copy(src / "dog.jpg", src / "zz-added.jpg")
    proc = run_labeljob(labeljob_bin, run_env, "run", write_job_fixed(tmp_path / "b.yaml", src, out, 2, "Replace"), "--no-progress")
    assert "zz-added.jpg" in labelled(out), proc.stdout
    assert "labelled 14 of 14 images" in proc.stdout, proc.stdout


def test_resume_says_when_the_listing_differs(tmp_path, labeljob_bin, run_env):
    src = photos_copy(tmp_path / "in")
    out = tmp_path / "out"
    f = write_job_fixed(tmp_path / "a.yaml", src, out, 2, "Resume")
    first = run_labeljob(labeljob_bin, run_env, "run", f, "--no-progress")
    assert "differently" not in first.stderr
    shutil.copy(src / "dog.jpg", src / "zz-added.jpg")
    (src / "giraffe.jpg").unlink()
    proc = run_labeljob(labeljob_bin, run_env, "run", f, "--no-progress")
    assert "the input lists differently from the frozen manifest (1 added, 1 removed, 0 changed)" in proc.stderr, proc.stderr
    assert "overwrite: Replace" in proc.stderr
    assert "zz-added.jpg" not in labelled(out), "Resume keeps the frozen listing"


def test_two_runs_never_share_an_output(tmp_path, labeljob_bin, run_env):
    """A run holds OUTPUT/run.lock: a second run on the output is refused naming the holder;
    a lock left by a killed run (its process is gone) is taken over; the lock is removed at the end."""
    import os
    import socket
    import subprocess
    import sys

    out = tmp_path / "out"
    job = write_job_fixed(tmp_path / "job.yaml", PHOTOS, out, 1, "Resume")
    out.mkdir()
    host = open("/proc/sys/kernel/hostname").read().strip() or socket.gethostname()
    lock = out / "run.lock"
    lock.write_text(json.dumps({"host": host, "pid": os.getpid(), "started": "2026-01-01T00:00:00Z"}))
    proc = run_labeljob(labeljob_bin, run_env, "run", job, check=False)
    assert proc.returncode == 1, proc.stderr
    assert f"run.lock is in use by another `labeljob run` (pid {os.getpid()} on {host}" in proc.stderr, proc.stderr
    assert not (out / "annotations.json").exists(), "the refused run wrote nothing"

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(json.dumps({"host": host, "pid": int(gone.stdout), "started": "2026-01-01T00:00:00Z"}))
    proc = run_labeljob(labeljob_bin, run_env, "run", job)
    assert "labelled 13 of 13 images" in proc.stdout
    assert not lock.exists(), "released at the end"


def test_a_killed_merge_leaves_nothing_behind(tmp_path, labeljob_bin, run_env):
    """Issue 9 case 12: what a merge killed mid-way left (its staging directory inside the
    output, with half-written files) is removed by the next merge, and nothing else stays."""
    src = photos_copy(tmp_path / "in")
    out = tmp_path / "out"
    job = write_job_fixed(tmp_path / "a.yaml", src, out, 2, "Resume")
    run_labeljob(labeljob_bin, run_env, "run", job, "--no-progress")
    left = out / ".merge-staging-killed"
    (left / "yolo" / "labels").mkdir(parents=True)
    (left / "annotations.json").write_text('{"images": [')
    (left / "yolo" / "labels" / "dog.txt").write_text("0 0.5")
    proc = run_labeljob(labeljob_bin, run_env, "run", job, "--no-progress")
    assert "labelled 13 of 13 images" in proc.stdout, proc.stdout
    assert not left.exists(), "the killed merge's staging directory is removed"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".merge-staging-")]
    COCO(str(out / "annotations.json"))


def test_changing_the_archive_keeps_one_copy_of_each_format(tmp_path, labeljob_bin, run_env):
    """`output.archive` switched between runs: the output holds the new packaging only
    (`yolo/` of an `archive: none` run is replaced by `yolo.zip`, and back)."""
    src = photos_copy(tmp_path / "in")
    out = tmp_path / "out"
    job = write_job_fixed(tmp_path / "a.yaml", src, out, 2, "Resume")
    base = job.read_text()
    for archive, want, gone in [("none", "yolo", "yolo.zip"), ("zip", "yolo.zip", "yolo"),
                                ("none", "yolo", "yolo.zip")]:
        job.write_text(base + f"    formats: [coco, yolo, voc]\n    archive: {archive}\n")
        proc = run_labeljob(labeljob_bin, run_env, "run", job, "--no-progress")
        assert "labelled 13 of 13 images" in proc.stdout, proc.stdout
        assert (out / want).exists() and not (out / gone).exists(), (archive, sorted(p.name for p in out.iterdir()))
        assert (out / "voc.zip").exists() == (archive == "zip") != (out / "voc").is_dir()
