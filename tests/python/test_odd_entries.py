"""Odd directory entries in a `file://` input (issue: hardening, case 6): a file name with a TAB,
a newline, a control character or a byte that is not UTF-8, a symbolic link loop (on a file or
back to an ancestor directory), a dangling link and a FIFO each become exactly one
errors.jsonl entry (stage `list`, a kind, a reason naming the cause) and count as one failed
image; every other image is labelled. Names with `#`, `?`, `%` and spaces are ordinary images,
and their COCO `file_name` is a URI whose parsed path is the file (case 12). The names are
made with os-level bytes."""

import json
import os
import shutil
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

from pycocotools.coco import COCO

from conftest import PHOTOS, run_measured, write_job

# raw name -> (kind, words the reason must hold)
ODD = {
    b"tab\there.jpg": ("bad-name", "control character TAB (U+0009)"),
    b"new\nline.jpg": ("bad-name", "control character newline (U+000A)"),
    b"bell\x07.png": ("bad-name", "control character U+0007"),
    b"latin1-\xe9t\xe9.jpg": ("bad-name", "not UTF-8 (byte 0xe9 at 7)"),
    b"self-loop.jpg": ("symlink-loop", "symbolic link loop"),
    b"gone.jpg": ("dangling-symlink", "its target nowhere.jpg does not exist"),
    b"sub/up": ("symlink-loop", "leads back to the input directory"),
    b"fifo.jpg": ("not-a-file", "not a regular file"),
}
# ordinary images whose names a URI must escape
SPECIAL = ["a b.jpg", "hash#1.jpg", "what?x=1.jpg", "pct%41.png"]


def make_input(src: Path):
    d = os.fsencode(src)
    os.makedirs(d + b"/sub")
    for name in ["dog.jpg", "eagle.jpg"]:
        shutil.copy(PHOTOS / name, src / name)
    for name, photo in zip(SPECIAL, ["horses.jpg", "giraffe.jpg", "dog.jpg", "chelsea.png"]):
        shutil.copy(PHOTOS / photo, src / name)
    dog = (PHOTOS / "dog.jpg").read_bytes()
    for raw in [b"tab\there.jpg", b"new\nline.jpg", b"bell\x07.png", b"latin1-\xe9t\xe9.jpg"]:
        with open(d + b"/" + raw, "wb") as f:
            f.write(dog)
    with open(d + b"/notes\t.txt", "wb") as f:  # odd, but not an image: not counted
        f.write(b"x")
    os.symlink(b"self-loop.jpg", d + b"/self-loop.jpg")
    os.symlink(b"nowhere.jpg", d + b"/gone.jpg")
    os.symlink(b"..", d + b"/sub/up")
    os.mkfifo(d + b"/fifo.jpg")


def test_each_odd_entry_is_one_failed_image(tmp_path, labeljob_bin, run_env):
    src = tmp_path / "in dir"
    make_input(src)
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.yaml", "odd", f"file://{src}", f"file://{out}", "  workers:\n    shards: 3\n")
    code, stdout, err, _ = run_measured(labeljob_bin, run_env, "run", job, "--no-progress")
    good = 2 + len(SPECIAL)
    total = good + len(ODD)
    assert code == 0, (stdout, err)
    assert f"labelled {good} of {total} images ({len(ODD)} failed" in stdout, stdout

    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert len(errors) == len(ODD), errors
    by_raw = {}
    for e in errors:
        parts = urlsplit(e["uri"])
        assert parts.scheme == "file" and not parts.query and not parts.fragment, e
        raw = unquote_to_bytes(parts.path)
        assert raw.startswith(os.fsencode(src) + b"/"), e
        by_raw[raw[len(os.fsencode(src)) + 1:]] = e
    assert sorted(by_raw) == sorted(ODD), sorted(by_raw)
    for raw, (kind, words) in ODD.items():
        e = by_raw[raw]
        assert (e["stage"], e["kind"]) == ("list", kind), e
        assert words in e["reason"], e

    report = json.loads((out / "report.json").read_text())
    images = report["images"]
    assert (images["total"], images["labelled"], images["failed"]) == (total, good, len(ODD)), images
    assert sum(report["errorsByKind"].values()) == len(ODD), report["errorsByKind"]

    coco = COCO(str(out / "annotations.json"))
    for img in coco.imgs.values():
        parts = urlsplit(img["file_name"])
        assert not parts.query and not parts.fragment, img["file_name"]
        path = Path(os.fsdecode(unquote_to_bytes(parts.path)))
        assert path.is_file(), img["file_name"]
    names = sorted(Path(os.fsdecode(unquote_to_bytes(urlsplit(i["file_name"]).path))).name for i in coco.imgs.values())
    assert names == sorted(["dog.jpg", "eagle.jpg", *SPECIAL]), names
