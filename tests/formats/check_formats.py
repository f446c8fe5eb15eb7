"""Import `labeljob merge` output with real third-party importers and compare every format's
boxes with the COCO file of record.

    .venv-formats/bin/python tests/formats/check_formats.py OUTPUT_DIR [--images-dir DIR]
        [--subdir review] [--formats coco,yolo,voc,cvat,labelstudio] [--keep-temp]

Formats are read from OUTPUT_DIR (never modified) in this layout:

    annotations.json              COCO (file of record; file_name = source URI)
    stems.jsonl                   {"id", "file_name", "stem", "ext"} per image, in id order
    yolo.zip or yolo/: data.yaml, labels/<stem>.txt
    voc.zip or voc/: Annotations/<stem>.xml, ImageSets/Main/default.txt, labelmap.txt
    cvat/annotations.xml          CVAT for images 1.1
    labelstudio/config.xml, labelstudio/tasks.json
    review/annotations.json, review/labelstudio/tasks.json   (--subdir review: COCO + LS only)

COCO, YOLO (Ultralytics), Pascal VOC and CVAT are imported with datumaro; Label Studio tasks are
validated against the labeling config with label-studio-sdk's LabelInterface, then turned back
into pixels. Importers that need more than OUTPUT_DIR holds get it in a temporary folder of
symlinks, as a user would lay it out:
  coco:  <tmp>/coco/annotations/instances_default.json + an (empty) <tmp>/coco/images/
  yolo:  <tmp>/yolo/{data.yaml,labels/*.txt} + images/<stem><ext> (image files are required:
         datumaro reads each image's size from the file, EXIF orientation applied)
  cvat:  <tmp>/cvat/annotations.xml + images/<stem><ext> (the files must exist, sizes come from
         the XML)
  voc:   imported in place (sizes come from the XML; no JPEGImages needed)
An archive (`output.archive: zip`, the default) is tested (every CRC) and extracted with Python's
zipfile into the temporary folder first, as a user unpacks what CVAT or Ultralytics is given.
Source images are looked up from each stems.jsonl file_name: under --images-dir by the longest
tail of the URI path that exists there (so `a/cat.jpg` and `b/cat.jpg` stay apart), then as
<stem><ext> there, then the file:// path itself.

Prints ONE JSON object on stdout:
  {"<format>": {"images": N, "per_class": {name: count}, "boxes": {stem: [[label, x, y, w, h]]},
                ...}, ...,
   "labelstudio": {..., "validation": {...}},
   "checks": {"ok": bool, "errors": [...], "tolerance_px": {...}, "max_diff_px": {...}, ...}}
boxes are absolute pixels, x/y the top-left corner, keyed by stem (comparable across formats).
Exit status: 0 all formats agree with annotations.json; 1 a check failed (wrong box, label,
image count or size, LS validation error); 2 an importer failed or the input is unusable.
Messages go to stderr.
"""

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import unquote, urlparse

ALL_FORMATS = ("coco", "yolo", "voc", "cvat", "labelstudio")
# Largest |importer - COCO| per coordinate, in pixels: a constant part plus a part relative to
# the image side (for formats that store fractions of the image size).
#   coco: same numbers; cvat: 2-decimal corners of 2-decimal COCO boxes;
#   yolo: 6-decimal centre/size fractions; labelstudio: percentages (>= 4 decimals);
#   voc: integer corners (x, y off by <= 0.5, w, h by <= 1).
TOLERANCE = {
    "coco": (0.001, 0.0, 0.001, 0.0),
    "cvat": (0.011, 0.0, 0.011, 0.0),
    "yolo": (0.011, 1.5e-6, 0.011, 1.5e-6),
    "labelstudio": (0.011, 1.5e-6, 0.011, 1.5e-6),
    "voc": (0.511, 0.0, 1.011, 0.0),
}  # (xy constant, xy relative, wh constant, wh relative)


class InputError(Exception):
    """The output directory or an importer could not be read at all (exit 2)."""


class Collected(logging.Handler):
    """Keeps importer log warnings (datumaro logs per annotation) for the JSON, off stderr."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.counts = Counter()

    def emit(self, record):
        self.counts[record.getMessage()] += 1


def log(msg):
    print(f"check_formats: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# Reference: annotations.json + stems.jsonl


def uri_path(uri):
    """The path part of a source URI (file:///a/b.jpg -> /a/b.jpg, s3://bucket/k/b.jpg -> k/b.jpg)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return parsed.path if parsed.scheme else uri
    return parsed.path.lstrip("/")


def load_reference(base: Path, top: Path, errors):
    coco_path = base / "annotations.json"
    if not coco_path.is_file():
        raise InputError(f"{coco_path} is missing")
    coco = json.loads(coco_path.read_text())
    images = sorted(coco["images"], key=lambda im: im["id"])
    cats = sorted(coco["categories"], key=lambda c: c["id"])
    cat_name = {c["id"]: c["name"] for c in cats}

    stems_path = base / "stems.jsonl"
    if not stems_path.is_file():
        stems_path = top / "stems.jsonl"  # a review subset uses the full job's stems
    if not stems_path.is_file():
        raise InputError(f"{stems_path} is missing")
    entries = [json.loads(line) for line in stems_path.read_text().splitlines() if line.strip()]
    if [e["id"] for e in entries] != sorted(e["id"] for e in entries):
        errors.append(f"{stems_path.name}: lines are not in image id order")
    by_id = {e["id"]: e for e in entries}
    if len(by_id) != len(entries):
        errors.append(f"{stems_path.name}: duplicate image ids")
    if stems_path.parent == base:
        if [e["id"] for e in entries] != [im["id"] for im in images]:
            raise InputError(f"{stems_path} lists {len(entries)} images, {coco_path} has {len(images)} "
                             "(or other ids)")
    missing = [im["id"] for im in images if im["id"] not in by_id]
    if missing:
        raise InputError(f"{stems_path} has no line for image ids {missing[:10]} of {coco_path}")

    stems = {}
    seen = {}
    for im in images:
        e = by_id[im["id"]]
        if e["file_name"] != im["file_name"]:
            errors.append(f"{stems_path.name}: id {im['id']}: file_name {e['file_name']!r} != COCO's "
                          f"{im['file_name']!r}")
        base_name = os.path.basename(uri_path(im["file_name"]))
        root, ext = os.path.splitext(base_name)
        stem = e["stem"]
        if e["ext"] != ext:
            errors.append(f"{stems_path.name}: id {im['id']}: ext {e['ext']!r}, file name has {ext!r}")
        suffix = stem[len(root):]
        if not stem.startswith(root) or not (suffix == "" or (suffix[:1] == "_" and suffix[1:].isdigit())):
            errors.append(f"{stems_path.name}: id {im['id']}: stem {stem!r} is not {root!r} or {root!r}_N")
        if stem in seen:
            errors.append(f"{stems_path.name}: stem {stem!r} used by ids {seen[stem]} and {im['id']}")
        seen[stem] = im["id"]
        stems[im["id"]] = e

    boxes = defaultdict(list)
    for a in coco["annotations"]:
        if a["image_id"] not in stems:
            errors.append(f"annotations.json: annotation {a.get('id')} has unknown image_id {a['image_id']}")
            continue
        x, y, w, h = a["bbox"]
        boxes[stems[a["image_id"]]["stem"]].append((cat_name[a["category_id"]], x, y, w, h))
    sizes = {stems[im["id"]]["stem"]: (im["width"], im["height"]) for im in images}
    return {
        "coco": coco,
        "images": images,
        "category_names": [c["name"] for c in cats],
        "stems": stems,  # coco id -> stems.jsonl entry
        "boxes": {stems[im["id"]]["stem"]: boxes.get(stems[im["id"]]["stem"], []) for im in images},
        "sizes": sizes,  # stem -> (width, height)
        "coco_path": coco_path,
    }


# --------------------------------------------------------------------------------------------
# Temporary layouts for importers that need them


def find_image(entry, images_dir):
    path = uri_path(entry["file_name"])
    candidates = []
    if images_dir is not None:
        parts = [p for p in path.split("/") if p]
        for i in range(len(parts)):
            candidates.append(images_dir.joinpath(*parts[i:]))
            unq = [unquote(p) for p in parts[i:]]
            if unq != parts[i:]:
                candidates.append(images_dir.joinpath(*unq))
        candidates.append(images_dir / (entry["stem"] + entry["ext"]))
    if urlparse(entry["file_name"]).scheme == "file":
        candidates += [Path(path), Path(unquote(path))]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    return None


def link_images(dest: Path, ref, images_dir, fmt):
    dest.mkdir(parents=True, exist_ok=True)
    missing = []
    for e in ref["stems"].values():
        src = find_image(e, images_dir)
        if src is None:
            missing.append(e["file_name"])
            continue
        os.symlink(src, dest / (e["stem"] + e["ext"]))
    if missing:
        where = f"under --images-dir {images_dir}" if images_dir else "(no --images-dir given)"
        raise InputError(f"{fmt}: datumaro's importer needs the image files; {len(missing)} not found {where}, "
                         f"e.g. {missing[:3]}")


def link_tree(src: Path, dest: Path):
    """Mirror src's files into dest as symlinks (real directories, so every walker sees them)."""
    for root, _, files in os.walk(src):
        out = dest / os.path.relpath(root, src)
        out.mkdir(parents=True, exist_ok=True)
        for f in files:
            os.symlink(Path(root, f).resolve(), out / f)


# --------------------------------------------------------------------------------------------
# datumaro


def dm_import(path: Path, fmt: str, label: str):
    from datumaro.components.annotation import AnnotationType
    from datumaro.components.dataset import Dataset

    try:
        ds = Dataset.import_from(str(path), fmt)
        items = list(ds)
        labels = ds.categories()[AnnotationType.label]
    except Exception as e:  # datumaro raises many kinds; the cause chain says what was wrong
        chain, cur = [], e
        while cur is not None and len(chain) < 4:
            chain.append(f"{type(cur).__name__}: {cur}")
            cur = cur.__cause__ or cur.__context__
        raise InputError(f"{label}: datumaro import ({fmt}) of {path} failed: " + " <- ".join(chain)) from e
    return items, [lab.name for lab in labels]


def dm_summary(items, label_names, key_of, fmt, errors, bbox_only=True):
    from datumaro.components.annotation import AnnotationType

    boxes, sizes = {}, {}
    for item in items:
        key = key_of(item)
        if key in boxes:
            errors.append(f"{fmt}: two items for image {key!r}")
        out = []
        for ann in item.annotations:
            if ann.type != AnnotationType.bbox:
                errors.append(f"{fmt}: {key!r}: unexpected {ann.type.name} annotation")
                continue
            if ann.label is None or not 0 <= ann.label < len(label_names):
                errors.append(f"{fmt}: {key!r}: box with unknown label {ann.label!r}")
                continue
            x, y, w, h = ann.get_bbox()
            out.append((label_names[ann.label], x, y, w, h))
        boxes[key] = out
        media = item.media
        size = media.size if media is not None else None  # (H, W), read lazily
        sizes[key] = (size[1], size[0]) if size else None
    return boxes, sizes


def check_coco(base, ref, tmp, errors):
    root = tmp / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "images").mkdir()  # datumaro refuses a COCO root without images/
    os.symlink(ref["coco_path"].resolve(), root / "annotations" / "instances_default.json")
    items, names = dm_import(root, "coco_instances", "coco")
    by_id = ref["stems"]

    def key(item):
        cid = item.attributes.get("id")
        if cid not in by_id:
            raise InputError(f"coco: datumaro item {item.id!r} has unknown image id {cid!r}")
        return by_id[cid]["stem"]

    return names, *dm_summary(items, names, key, "coco", errors)


def format_dir(base, tmp, name):
    """Where format `name`'s tree is: `base/<name>.zip` tested and extracted under tmp, else
    the directory `base/<name>`."""
    archive = base / f"{name}.zip"
    if not archive.is_file():
        return base / name
    import zipfile

    dest = tmp / "unzipped" / name
    try:
        with zipfile.ZipFile(archive) as z:
            bad = z.testzip()
            if bad is not None:
                raise InputError(f"{name}: {archive.name}: entry {bad!r} fails its CRC check")
            unsafe = [n for n in z.namelist() if n.startswith("/") or ".." in n.split("/")]
            if unsafe:
                raise InputError(f"{name}: {archive.name}: entries outside the archive root: {unsafe[:5]}")
            z.extractall(dest)
    except zipfile.BadZipFile as e:
        raise InputError(f"{name}: {archive.name} is not a zip archive: {e}") from e
    return dest


def check_yolo(base, ref, tmp, images_dir, errors):
    import yaml

    src = format_dir(base, tmp, "yolo")
    data = yaml.safe_load((src / "data.yaml").read_text())
    names = data.get("names")
    if isinstance(names, dict):
        # datumaro takes the values in file order and ignores the keys; Ultralytics uses the keys.
        if list(names.keys()) != list(range(len(names))):
            errors.append(f"yolo: data.yaml names keys are {list(names.keys())[:10]}..., not 0..{len(names) - 1} "
                          "in order (datumaro ignores the keys)")
        names = list(names.values())
    bad = [n for n in names or [] if not isinstance(n, str)]
    if bad:
        errors.append(f"yolo: data.yaml names that YAML does not read as strings: {bad} (quote them)")
    for k, want in (("train", "images"), ("val", "images")):
        if data.get(k) != want:
            errors.append(f"yolo: data.yaml {k}: {data.get(k)!r}, expected {want!r}")
    root = tmp / "yolo"
    link_tree(src, root)
    link_images(root / "images", ref, images_dir, "yolo")
    items, names = dm_import(root, "yolo", "yolo")
    label_files = {p.stem for p in (src / "labels").glob("*.txt")}
    got = {item.id for item in items}
    for stem in sorted(label_files - got):
        errors.append(f"yolo: labels/{stem}.txt exists but datumaro skipped it (its first line must be 5 "
                      "space-separated non-negative decimals: no sign, no exponent)")
    return names, *dm_summary(items, names, lambda item: item.id, "yolo", errors)


def check_voc(base, ref, tmp, errors):
    src = format_dir(base, tmp, "voc")
    items, names = dm_import(src, "voc", "voc")
    for item in items:
        if not (src / "Annotations" / f"{item.id}.xml").is_file():
            errors.append(f"voc: ImageSets/Main/default.txt lists {item.id!r} but Annotations/{item.id}.xml "
                          "is missing (datumaro then yields an empty item)")
    return names, *dm_summary(items, names, lambda item: item.id, "voc", errors)


def check_cvat(base, ref, tmp, images_dir, errors):
    root = tmp / "cvat"
    root.mkdir()
    os.symlink((base / "cvat" / "annotations.xml").resolve(), root / "annotations.xml")
    link_images(root / "images", ref, images_dir, "cvat")
    items, names = dm_import(root, "cvat", "cvat")
    exts = {e["stem"]: e["ext"] for e in ref["stems"].values()}
    for item in items:
        name = os.path.basename(item.media.path) if item.media is not None else None
        if item.id in exts and name != item.id + exts[item.id]:
            errors.append(f"cvat: image {item.id!r} is named {name!r}, expected {item.id + exts[item.id]!r}")
    return names, *dm_summary(items, names, lambda item: item.id, "cvat", errors)


# --------------------------------------------------------------------------------------------
# Label Studio


def check_labelstudio(base, top, ref, errors):
    from label_studio_sdk.label_interface import LabelInterface
    from label_studio_sdk.label_interface.control_tags import RectangleLabelsTag

    config_path = base / "labelstudio" / "config.xml"
    if not config_path.is_file():
        config_path = top / "labelstudio" / "config.xml"  # a review subset shares the job's config
    tasks_path = base / "labelstudio" / "tasks.json"
    validation = {"config": str(config_path.relative_to(top)), "config_errors": [], "tasks": 0,
                  "predictions": 0, "regions": 0, "errors": []}
    verrs = validation["errors"]
    try:
        li = LabelInterface(config_path.read_text())
        li.validate()
    except Exception as e:
        validation["config_errors"].append(f"{type(e).__name__}: {e}")
        errors.append(f"labelstudio: {config_path.name} is not a valid labeling config: {e}")
        return None, {}, {}, validation
    controls = [c for c in li.controls if isinstance(c, RectangleLabelsTag)]
    names = list(controls[0].labels) if len(controls) == 1 else []
    if len(controls) != 1:
        errors.append(f"labelstudio: expected one RectangleLabels control, found {len(controls)}")

    tasks = json.loads(tasks_path.read_text())
    if not isinstance(tasks, list):
        raise InputError(f"labelstudio: {tasks_path} is not a JSON array of tasks")
    by_id = ref["stems"]
    boxes, sizes = {}, {}
    for t_index, task in enumerate(tasks):
        validation["tasks"] += 1
        tid = task.get("id")
        where = f"task {tid!r}"
        if tid not in by_id:
            verrs.append(f"{where}: id is not a COCO image id")
            continue
        entry = by_id[tid]
        stem = entry["stem"]
        if stem in boxes:
            verrs.append(f"{where}: second task for image {stem!r}")
        image = (task.get("data") or {}).get("image")
        if image != entry["file_name"]:
            verrs.append(f"{where}: data.image {image!r} != COCO file_name {entry['file_name']!r}")
        loaded = li.load_task(task.get("data") or {})
        if any(obj.value_is_variable and not obj.value for obj in loaded.objects):
            verrs.append(f"{where}: data lacks a value for an object tag of the config")
        preds = task.get("predictions")
        if not isinstance(preds, list) or len(preds) != 1:
            verrs.append(f"{where}: expected one prediction, got {preds!r:.80}")
            continue
        out, size = [], None
        W, H = ref["sizes"][stem]
        for pred in preds:
            validation["predictions"] += 1
            for msg in li.validate_prediction(pred, return_errors=True):
                verrs.append(f"{where}: {msg}")
            if not isinstance(pred.get("model_version"), str) or not pred.get("model_version"):
                verrs.append(f"{where}: model_version must be a non-empty string")
            ids = [r.get("id") for r in pred.get("result", [])]
            if len(set(ids)) != len(ids):
                verrs.append(f"{where}: region ids are not unique: {ids}")
            for r_index, region in enumerate(pred.get("result", [])):
                validation["regions"] += 1
                rw, rh = region.get("original_width"), region.get("original_height")
                size = (rw, rh)
                if (rw, rh) != (W, H):
                    verrs.append(f"{where}: region {r_index}: original size {rw}x{rh}, COCO has {W}x{H}")
                if region.get("image_rotation", 0) != 0:
                    verrs.append(f"{where}: region {r_index}: image_rotation {region.get('image_rotation')}")
                v = region.get("value") or {}
                try:
                    x, y, w, h = (float(v[k]) for k in ("x", "y", "width", "height"))
                except (KeyError, TypeError, ValueError):
                    verrs.append(f"{where}: region {r_index}: value lacks numeric x/y/width/height")
                    continue
                eps = 1e-6
                if min(x, y, w, h) < -eps or x + w > 100 + eps or y + h > 100 + eps:
                    verrs.append(f"{where}: region {r_index}: box {x},{y},{w},{h} % leaves the image")
                if v.get("rotation", 0) != 0:
                    verrs.append(f"{where}: region {r_index}: rotation {v.get('rotation')}")
                labels = v.get("rectanglelabels")
                if not isinstance(labels, list) or len(labels) != 1:
                    verrs.append(f"{where}: region {r_index}: rectanglelabels {labels!r} is not one label")
                    continue
                if not isinstance(region.get("score"), (int, float)) or not 0 <= region["score"] <= 1:
                    verrs.append(f"{where}: region {r_index}: score {region.get('score')!r} not in [0, 1]")
                out.append((labels[0], x / 100 * W, y / 100 * H, w / 100 * W, h / 100 * H))
        boxes[stem] = out
        sizes[stem] = size if out else (W, H)
    for e in verrs[:50]:
        errors.append(f"labelstudio: {e}")
    if len(verrs) > 50:
        errors.append(f"labelstudio: ... {len(verrs) - 50} more validation errors")
    return names, boxes, sizes, validation


# --------------------------------------------------------------------------------------------
# Comparison


def compare(fmt, names, boxes, sizes, ref, errors):
    """Check one format against annotations.json; returns the largest coordinate difference."""
    if names is not None and list(names) != ref["category_names"]:
        errors.append(f"{fmt}: labels {list(names)} differ from COCO categories {ref['category_names']} (id order)")
    want = set(ref["boxes"])
    got = set(boxes)
    if len(got) != len(want) or got != want:
        errors.append(f"{fmt}: {len(got)} images imported, stems.jsonl lists {len(want)}"
                      + (f"; missing {sorted(want - got)[:10]}" if want - got else "")
                      + (f"; unexpected {sorted(got - want)[:10]}" if got - want else ""))
    c_xy, r_xy, c_wh, r_wh = TOLERANCE[fmt]
    worst = 0.0
    for stem in sorted(want & got):
        W, H = ref["sizes"][stem]
        if sizes.get(stem) is not None and tuple(sizes[stem]) != (W, H):
            errors.append(f"{fmt}: {stem!r}: image size {sizes[stem][0]}x{sizes[stem][1]}, COCO has {W}x{H}")
        elif sizes.get(stem) is None and boxes[stem]:
            errors.append(f"{fmt}: {stem!r}: importer found no image size")
        expected = list(ref["boxes"][stem])
        if fmt == "voc":  # VOC corners are clamped to the image
            expected = [clamp(b, W, H) for b in expected]
        side = max(W, H)
        tol = (c_xy + r_xy * side, c_xy + r_xy * side, c_wh + r_wh * side, c_wh + r_wh * side)
        unmatched = list(boxes[stem])
        for b in expected:
            cands = [(max(abs(u - v) for u, v in zip(b[1:], c[1:])), i)
                     for i, c in enumerate(unmatched) if c[0] == b[0]]
            if not cands:
                errors.append(f"{fmt}: {stem!r}: no {b[0]!r} box for COCO {fmt_box(b)}")
                continue
            diff, i = min(cands)
            c = unmatched.pop(i)
            worst = max(worst, diff)
            if any(abs(u - v) > t for u, v, t in zip(b[1:], c[1:], tol)):
                errors.append(f"{fmt}: {stem!r}: {b[0]!r} box {fmt_box(c)} differs from COCO {fmt_box(b)} "
                              f"by {diff:.3f} px")
        for c in unmatched:
            errors.append(f"{fmt}: {stem!r}: extra {c[0]!r} box {fmt_box(c)} not in COCO")
    return worst


def clamp(b, W, H):
    label, x, y, w, h = b
    x0, y0 = min(max(x, 0), W), min(max(y, 0), H)
    x1, y1 = min(max(x + w, 0), W), min(max(y + h, 0), H)
    return (label, x0, y0, x1 - x0, y1 - y0)


def fmt_box(b):
    return "[" + ", ".join(f"{v:.2f}" for v in b[1:]) + "]"


def summary(names, boxes):
    per_class = Counter({n: 0 for n in (names or [])})
    for bs in boxes.values():
        per_class.update(b[0] for b in bs)
    return {
        "images": len(boxes),
        "per_class": dict(per_class),
        "boxes": {k: sorted([b[0], *(round(v, 4) for v in b[1:])] for b in bs) for k, bs in sorted(boxes.items())},
    }


# --------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output_dir", type=Path)
    ap.add_argument("--images-dir", type=Path, help="where the source images are (needed for yolo, cvat)")
    ap.add_argument("--subdir", help="check OUTPUT_DIR/SUBDIR (e.g. review): COCO + Label Studio only")
    ap.add_argument("--formats", default=",".join(ALL_FORMATS),
                    help="comma-separated subset of %(default)s; a listed format that is absent is an error "
                         "only when named explicitly")
    ap.add_argument("--keep-temp", action="store_true", help="keep the temporary importer layouts (path on stderr)")
    args = ap.parse_args(argv)

    top = args.output_dir.resolve()
    base = top / args.subdir if args.subdir else top
    explicit = any(a.split("=")[0] == "--formats" for a in (sys.argv[1:] if argv is None else argv))
    wanted = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = set(wanted) - set(ALL_FORMATS)
    if unknown:
        ap.error(f"unknown formats {sorted(unknown)}")
    if args.subdir:
        wanted = [f for f in wanted if f in ("coco", "labelstudio")]

    present = {
        "coco": (base / "annotations.json").is_file(),
        "yolo": (base / "yolo.zip").is_file() or (base / "yolo" / "data.yaml").is_file(),
        "voc": (base / "voc.zip").is_file() or (base / "voc" / "ImageSets" / "Main").is_dir(),
        "cvat": (base / "cvat" / "annotations.xml").is_file(),
        "labelstudio": (base / "labelstudio" / "tasks.json").is_file(),
    }
    errors, result = [], {}
    handler = Collected()
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.WARNING)
    warnings.simplefilter("ignore")
    tmp_obj = tempfile.TemporaryDirectory(prefix="check-formats-")
    tmp = Path(tmp_obj.name)
    status = 0
    checked, worst = [], {}
    try:
        ref = load_reference(base, top, errors)
        for fmt in wanted:
            if not present[fmt]:
                if explicit:
                    errors.append(f"{fmt}: not found under {base}")
                continue
            if fmt == "coco":
                names, boxes, sizes = check_coco(base, ref, tmp, errors)
            elif fmt == "yolo":
                names, boxes, sizes = check_yolo(base, ref, tmp, args.images_dir, errors)
            elif fmt == "voc":
                names, boxes, sizes = check_voc(base, ref, tmp, errors)
            elif fmt == "cvat":
                names, boxes, sizes = check_cvat(base, ref, tmp, args.images_dir, errors)
            else:
                names, boxes, sizes, validation = check_labelstudio(base, top, ref, errors)
            result[fmt] = summary(names, boxes)
            if fmt == "labelstudio":
                result[fmt]["validation"] = validation
            worst[fmt] = round(compare(fmt, names, boxes, sizes, ref, errors), 4)
            checked.append(fmt)
        if not checked:
            errors.append(f"no format found under {base}")
    except InputError as e:
        errors.append(str(e))
        status = 2
    except Exception as e:  # a bug here or an importer breaking unexpectedly: still one JSON object
        import traceback

        traceback.print_exc()
        errors.append(f"unexpected {type(e).__name__}: {e}")
        status = 2
    finally:
        if args.keep_temp:
            log(f"temporary layouts kept in {tmp}")
        else:
            tmp_obj.cleanup()
    if errors and status == 0:
        status = 1
    result["checks"] = {
        "ok": not errors,
        "output_dir": str(base),
        "formats": checked,
        "errors": errors,
        "max_diff_px": worst,
        "tolerance_px": {f: {"xy": [t[0], t[1]], "wh": [t[2], t[3]]} for f, t in TOLERANCE.items() if f in checked},
        "importer_warnings": dict(handler.counts),
    }
    print(json.dumps(result, indent=1, sort_keys=False))
    for e in errors:
        log(e)
    if status:
        log(f"FAILED ({len(errors)} problem(s)) for {base}")
    return status


if __name__ == "__main__":
    sys.exit(main())
