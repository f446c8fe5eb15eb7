"""tests/formats/check_formats.py, the importer check of the export formats, checked on a sample
written by tests/formats/make_sample.py: it must pass on the sample and fail on broken copies.

The checker runs in .venv-formats (datumaro needs pillow~=12, .venv pins pillow 13), which
scripts/setup-venv.sh creates beside .venv; LABELJOB_FORMATS_PY overrides its python."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKER = REPO / "tests" / "formats" / "check_formats.py"
MAKE_SAMPLE = REPO / "tests" / "formats" / "make_sample.py"
FORMATS = ["coco", "yolo", "voc", "cvat", "labelstudio"]
N_IMAGES = 7


@pytest.fixture(scope="session")
def formats_py() -> Path:
    py = Path(os.environ.get("LABELJOB_FORMATS_PY", REPO / ".venv-formats" / "bin" / "python"))
    if not py.exists():
        pytest.fail(f"{py} is missing: run scripts/setup-venv.sh (make test-deps does)")
    return py


@pytest.fixture(scope="session")
def sample_src(formats_py, tmp_path_factory) -> tuple:
    root = tmp_path_factory.mktemp("formats-sample")
    subprocess.run([str(formats_py), str(MAKE_SAMPLE), str(root / "out"), "--images-dir", str(root / "src")],
                   check=True, capture_output=True, text=True, timeout=120)
    return root / "out", root / "src"


@pytest.fixture
def sample(sample_src, tmp_path) -> tuple:
    """A private copy of the sample output (the source images are shared, read-only)."""
    out, src = sample_src
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    return copy, src


def check(formats_py, out, *args):
    proc = subprocess.run([str(formats_py), str(CHECKER), str(out), *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checker printed no JSON (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.returncode, report, proc.stderr


def test_sample_passes_every_importer(formats_py, sample):
    out, src = sample
    rc, report, stderr = check(formats_py, out, "--images-dir", src)
    assert rc == 0, stderr
    assert report["checks"]["ok"] and report["checks"]["errors"] == []
    assert report["checks"]["formats"] == FORMATS
    stems = [json.loads(line)["stem"] for line in (out / "stems.jsonl").read_text().splitlines()]
    assert stems == ["cat", "cat_2", "cat_1", "a&b", "empty", "my photo", "rotated"]
    coco = report["coco"]
    assert coco["per_class"] == {"person": 4, "bicycle": 0, "car": 2, "traffic light": 2, "dog": 2}
    for fmt in FORMATS:
        assert report[fmt]["images"] == N_IMAGES, fmt
        assert report[fmt]["per_class"] == coco["per_class"], fmt
        assert sorted(report[fmt]["boxes"]) == sorted(stems), fmt
        assert report[fmt]["boxes"]["empty"] == [], fmt
    # Lossless formats give COCO's numbers back; VOC is integer pixels.
    assert report["cvat"]["boxes"] == coco["boxes"]
    assert report["yolo"]["boxes"]["rotated"] == coco["boxes"]["rotated"] == [["person", 5.0, 60.0, 70.0, 55.5]]
    assert report["voc"]["boxes"]["a&b"] == [["traffic light", 150.0, 100.0, 150.0, 100.0]]
    assert report["labelstudio"]["validation"]["errors"] == []
    assert report["labelstudio"]["validation"]["regions"] == 10
    assert report["checks"]["max_diff_px"]["voc"] <= 0.5
    assert report["checks"]["max_diff_px"]["yolo"] < 0.01


def test_review_subset(formats_py, sample):
    out, _ = sample
    rc, report, stderr = check(formats_py, out, "--subdir", "review")
    assert rc == 0, stderr
    assert report["checks"]["formats"] == ["coco", "labelstudio"]
    assert report["coco"]["images"] == report["labelstudio"]["images"] == 2
    assert sorted(report["coco"]["boxes"]) == ["cat_1", "my photo"]


def errors_of(report):
    return "\n".join(report["checks"]["errors"])


def test_fails_on_voc_box_moved_5px(formats_py, sample):
    out, src = sample
    xml = out / "voc" / "Annotations" / "cat.xml"
    text = xml.read_text()
    assert "<xmin>200</xmin>" in text
    xml.write_text(text.replace("<xmin>200</xmin>", "<xmin>205</xmin>").replace("<xmax>350</xmax>", "<xmax>355</xmax>"))
    rc, report, stderr = check(formats_py, out, "--images-dir", src)
    assert rc == 1
    assert ("voc: 'cat': 'car' box [205.00, 300.00, 150.00, 180.00] differs from COCO "
            "[200.12, 300.00, 150.00, 180.00] by 4.880 px") in errors_of(report)
    assert not any(e.startswith(("yolo", "cvat", "coco", "labelstudio")) for e in report["checks"]["errors"])
    assert "FAILED" in stderr


def test_fails_on_missing_yolo_label_file(formats_py, sample):
    out, src = sample
    (out / "yolo" / "labels" / "cat_2.txt").unlink()
    rc, report, _ = check(formats_py, out, "--images-dir", src)
    assert rc == 1
    assert "yolo: 6 images imported, stems.jsonl lists 7; missing ['cat_2']" in errors_of(report)


def test_fails_on_yolo_line_datumaro_skips(formats_py, sample):
    out, src = sample
    (out / "yolo" / "labels" / "empty.txt").write_text("0 5e-01 0.500000 0.100000 0.100000\n")
    rc, report, _ = check(formats_py, out, "--images-dir", src)
    assert rc == 1
    assert "yolo: labels/empty.txt exists but datumaro skipped it" in errors_of(report)


def test_fails_on_wrong_labelstudio_prediction_type(formats_py, sample):
    out, src = sample
    tasks_path = out / "labelstudio" / "tasks.json"
    tasks = json.loads(tasks_path.read_text())
    tasks[0]["predictions"][0]["result"][1]["type"] = "rectangle"
    tasks_path.write_text(json.dumps(tasks))
    rc, report, _ = check(formats_py, out, "--images-dir", src)
    assert rc == 1
    assert "labelstudio: task 1: Region 1: Type 'rectangle' does not match expected type 'rectanglelabels'" \
        in errors_of(report)
    assert report["labelstudio"]["validation"]["errors"]


def test_fails_on_unknown_labelstudio_label(formats_py, sample):
    out, src = sample
    tasks_path = out / "labelstudio" / "tasks.json"
    tasks = json.loads(tasks_path.read_text())
    tasks[3]["predictions"][0]["result"][0]["value"]["rectanglelabels"] = ["traffic_light"]
    tasks_path.write_text(json.dumps(tasks))
    rc, report, _ = check(formats_py, out, "--formats", "labelstudio")
    assert rc == 1
    assert "labelstudio: task 4: Region 0: Invalid value for control 'label'" in errors_of(report)


def test_fails_on_cvat_label_not_declared(formats_py, sample):
    out, src = sample
    xml = out / "cvat" / "annotations.xml"
    xml.write_text(xml.read_text().replace('<box label="dog"', '<box label="cat"', 1))
    rc, report, _ = check(formats_py, out, "--images-dir", src, "--formats", "cvat")
    assert rc == 1
    assert "cvat: 'cat_2': box with unknown label None" in errors_of(report)


def test_importer_failure_exits_2(formats_py, sample):
    out, src = sample
    xml = out / "cvat" / "annotations.xml"
    xml.write_text(xml.read_text()[:-40])  # truncated XML
    rc, report, stderr = check(formats_py, out, "--images-dir", src)
    assert rc == 2
    assert "cvat: datumaro import (cvat) of" in errors_of(report)
    assert "failed" in stderr


def test_images_needed_for_yolo(formats_py, sample, tmp_path):
    out, src = sample
    # file_name URIs point at the real images, so hide them: URIs now name paths that do not exist.
    coco = json.loads((out / "annotations.json").read_text())
    moved = tmp_path / "elsewhere"
    for im in coco["images"]:
        im["file_name"] = im["file_name"].replace(str(src), str(moved))
    (out / "annotations.json").write_text(json.dumps(coco))
    lines = [json.loads(line) for line in (out / "stems.jsonl").read_text().splitlines()]
    for e in lines:
        e["file_name"] = e["file_name"].replace(str(src), str(moved))
    (out / "stems.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    rc, report, _ = check(formats_py, out, "--formats", "yolo")
    assert rc == 2
    assert "yolo: datumaro's importer needs the image files; 7 not found (no --images-dir given)" in errors_of(report)
    # --images-dir finds them by the tail of the URI path (street/cat.jpg and park/cat.jpg stay apart).
    rc, report, _ = check(formats_py, out, "--formats", "yolo,cvat", "--images-dir", src)
    assert rc == 0, errors_of(report)


def test_fails_when_stems_and_coco_disagree(formats_py, sample):
    out, src = sample
    stems = out / "stems.jsonl"
    stems.write_text("".join(stems.read_text().splitlines(keepends=True)[:-1]))
    rc, report, _ = check(formats_py, out, "--images-dir", src)
    assert rc == 2
    assert "stems.jsonl lists 6 images" in errors_of(report)


def zip_tree(out: Path, name: str) -> Path:
    """Replace `out/<name>/` by `out/<name>.zip` holding the same tree (what `archive: zip` writes)."""
    import zipfile

    archive = out / f"{name}.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as z:
        for path in sorted((out / name).rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(out / name).as_posix())
    shutil.rmtree(out / name)
    return archive


def test_archives_are_tested_and_unzipped(formats_py, sample):
    out, src = sample
    for name in ("yolo", "voc"):
        zip_tree(out, name)
    rc, report, stderr = check(formats_py, out, "--images-dir", src)
    assert rc == 0, stderr
    assert report["yolo"]["images"] == report["voc"]["images"] == N_IMAGES
    assert report["checks"]["formats"] == FORMATS


def test_fails_on_a_corrupt_archive(formats_py, sample):
    out, src = sample
    archive = zip_tree(out, "voc")
    data = bytearray(archive.read_bytes())
    at = data.index(b"<annotation>")  # inside the first stored entry
    data[at + 1] ^= 0x20
    archive.write_bytes(bytes(data))
    rc, report, _ = check(formats_py, out, "--images-dir", src, "--formats", "voc")
    assert rc == 2
    assert any("voc: voc.zip: entry" in e and "CRC" in e for e in report["checks"]["errors"]), report["checks"]
