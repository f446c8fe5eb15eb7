"""Preemption-aware shards (issue 14, item 9), with the real binary and the real model: a shard
commits partial results while it runs; killed (-9), it loses only what it had not committed; on
SIGTERM (what the kubelet sends on eviction or spot preemption) it commits what it finished and
exits 143; the retry labels only the images not committed — counted by the inference server it
calls — and the shard file, then the merged output, holds every image exactly once."""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from conftest import run_labeljob, write_job
from test_serve import photos, server  # noqa: F401 (server: the module-scoped serve fixture)

COPIES = 20
EXIT_INTERRUPTED = 143  # labeljob_store::exit::INTERRUPTED


def inferred(port: int) -> int:
    """Images the server has run through the model so far (labeljob_server_images_total)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search(r"^labeljob_server_images_total (\d+)", text, re.M)
    assert m, text
    return int(m.group(1))


def chunks(out: Path) -> list[Path]:
    return sorted((out / "partial" / "shard-00000").glob("part-*.json"))


def committed(out: Path) -> set[int]:
    ids = []
    for c in chunks(out):
        doc = json.loads(c.read_text())
        ids += [i["id"] for i in doc["images"]] + [e["id"] for e in doc["errors"]]
    return set(ids)


def wait_for(cond, proc, what: str, timeout=120.0):
    """Wait (polling) until `cond()` holds; fail if the process ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the shard exited {proc.returncode} before {what}:\n{out}\n{err}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def shard(labeljob_bin, env, job, port):
    return subprocess.Popen(
        [str(labeljob_bin), "shard", "--job", str(job), "--index", "0", "--endpoint",
         f"http://127.0.0.1:{port}", "--checkpoint-images", "10", "--checkpoint-seconds", "3600"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_a_retried_shard_resumes_after_its_committed_images(tmp_path, labeljob_bin, run_env, server):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(COPIES):
        for p in photos():
            shutil.copy(p, images / f"{i:02d}-{p.name}")
    count = COPIES * len(photos())
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.yaml", "resume", f"file://{images}", f"file://{out}",
                    "  workers:\n    shards: 1\n    concurrency: 2\n")
    # The copies are byte-identical: every one of them must still reach the model.
    job.write_text(job.read_text().replace(f'    uri: "file://{images}"\n',
                                           f'    uri: "file://{images}"\n    dedup: {{mode: none}}\n'))
    run_labeljob(labeljob_bin, run_env, "plan", "--job", job)
    shard_file = out / "shards" / "shard-00000.json"

    # 1. Killed (-9) after its first chunk: the chunks written survive, nothing else.
    first = shard(labeljob_bin, run_env, job, server)
    try:
        wait_for(lambda: chunks(out), first, "the first chunk")
    finally:
        first.kill()
        first.communicate()
    after_kill = committed(out)
    assert 10 <= len(after_kill) < count, len(after_kill)
    assert not shard_file.exists(), "killed mid-way"

    # 2. SIGTERM after one more chunk: it commits what it finished and exits 143.
    before = inferred(server)
    second = shard(labeljob_bin, run_env, job, server)
    n = len(chunks(out))
    try:
        wait_for(lambda: len(chunks(out)) > n, second, "a chunk of the second attempt")
        os.kill(second.pid, signal.SIGTERM)
        o, e = second.communicate(timeout=120)
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate()
    assert second.returncode == EXIT_INTERRUPTED, (second.returncode, o, e)
    assert "interrupted" in e and "committed as partial results" in e, e
    after_term = committed(out)
    assert after_kill < after_term, "the second attempt added to what the first committed"
    assert len(after_term) < count and not shard_file.exists()
    assert inferred(server) - before >= len(after_term - after_kill), "its commits came from the model"

    # 3. The retry labels only what is not committed, and finishes the shard.
    before = inferred(server)
    proc = run_labeljob(labeljob_bin, run_env, "shard", "--job", job, "--index", "0",
                        "--endpoint", f"http://127.0.0.1:{server}")
    resumed = len(after_term)
    print(f"committed {len(after_kill)} images before kill -9, {resumed} before SIGTERM, of {count}")
    assert f"labelled {count}, failed 0, resumed {resumed}" in proc.stdout, proc.stdout
    assert inferred(server) - before == count - resumed, "no committed image was inferred again"
    doc = json.loads(shard_file.read_text())
    assert sorted(i["id"] for i in doc["images"]) == list(range(count)), "every id once"
    assert not chunks(out), "the chunks are removed once the shard file is written"

    # A rerun reuses the shard file; the merge has every image exactly once.
    proc = run_labeljob(labeljob_bin, run_env, "shard", "--job", job, "--index", "0",
                        "--endpoint", f"http://127.0.0.1:{server}")
    assert "already done" in proc.stdout, proc.stdout
    run_labeljob(labeljob_bin, run_env, "merge", "--job", job)
    coco = json.loads((out / "annotations.json").read_text())
    names = [img["file_name"] for img in coco["images"]]
    assert len(names) == count and len(set(names)) == count, "every image exactly once"
    report = json.loads((out / "report.json").read_text())
    assert report["images"]["labelled"] == count and report["images"]["failed"] == 0, report["images"]
