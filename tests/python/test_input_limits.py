"""Size limits on the input (issue: hardening, case 5): an image file or URL body over the 256 MiB
limit is refused from its size (file size, object size, Content-Length) before it is read, so
that it costs no memory; it is one errors.jsonl entry naming the file and the limit, and the
photos beside it are labelled."""

import json
import os
import shutil

from conftest import PHOTOS, run_measured, write_job

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
