"""Write a small `labeljob merge`-style output directory in the layout of the export formats
(COCO, stems.jsonl, YOLO, Pascal VOC, CVAT for images 1.1, Label Studio), plus the source
images it describes, so that tests/formats/check_formats.py can be checked on known data.

    python tests/formats/make_sample.py OUTPUT_DIR --images-dir IMAGES_DIR

This is a Python mirror of the layout the Rust writer produces (see check_formats.py's
docstring). It needs only Pillow and the standard library, so either venv can run it.

The sample covers: two source images whose stems collide (`street/cat.jpg`, `park/cat.jpg`)
plus a real `cat_1.png` (so the second cat becomes `cat_2`), an image with no detections,
class names with a space (`traffic light`), an XML-special file name (`a&b.jpg`), a file name
with a space, an EXIF-rotated JPEG (COCO holds its upright size), COCO category ids with gaps, an unused category boxes touching the right
and bottom edges, and a review subset (review/annotations.json, review/labelstudio/tasks.json).
"""

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

MODEL_SHA256 = "0" * 63 + "1"
JOB = "sample-job"

# COCO ids with gaps, as for a COCO model; "bicycle" is never detected.
CATEGORIES = [(1, "person"), (2, "bicycle"), (3, "car"), (10, "traffic light"), (18, "dog")]

# (relative source path, width, height, [(category id, x, y, w, h, score)])
IMAGES = [
    ("street/cat.jpg", 640, 480, [(1, 12.34, 56.78, 100.5, 200.25, 0.91), (10, 600.0, 10.0, 40.0, 60.0, 0.55),
                                  (3, 200.12, 300.0, 150.0, 180.0, 0.77)]),
    ("park/cat.jpg", 320, 240, [(18, 0.0, 0.0, 320.0, 240.0, 0.66)]),
    ("cat_1.png", 200, 150, [(1, 10.5, 20.25, 30.0, 40.0, 0.42), (1, 100.0, 20.0, 30.0, 40.0, 0.43)]),
    ("a&b.jpg", 300, 200, [(10, 150.49, 100.5, 149.51, 99.5, 0.88)]),
    ("empty.jpg", 64, 48, []),
    ("my photo.jpg", 333, 257, [(3, 1.01, 2.02, 3.03, 4.04, 0.3), (18, 299.99, 200.0, 33.01, 57.0, 0.99)]),
    # Stored 120x80 with EXIF orientation 6: upright (what COCO records) it is 80x120.
    ("rotated.jpg", 80, 120, [(1, 5.0, 60.0, 70.0, 55.5, 0.8)]),
]
EXIF_ORIENTATION = {"rotated.jpg": 6}


def assign_stems(file_names):
    """stem = file name without extension; `_1`, `_2`, ... added in id order when the stem was
    already taken, never colliding with an existing real stem either."""
    bases = [os.path.splitext(os.path.basename(f))[0] for f in file_names]
    exts = [os.path.splitext(os.path.basename(f))[1] for f in file_names]
    real = set(bases)
    taken, stems = set(), []
    for base in bases:
        stem = base
        if stem in taken:
            n = 1
            while f"{base}_{n}" in taken or f"{base}_{n}" in real:
                n += 1
            stem = f"{base}_{n}"
        taken.add(stem)
        stems.append(stem)
    return stems, exts


_PLAIN_YAML = re.compile(r"^[A-Za-z][A-Za-z0-9 _-]*$")
_YAML11_WORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null", "none", "~"}


def yaml_str(name):
    """Plain scalar where YAML reads it back as the same string, else a JSON (= YAML) string."""
    if _PLAIN_YAML.match(name) and name.lower() not in _YAML11_WORDS and not name.endswith(" "):
        return name
    return json.dumps(name)


def f2(v):
    return f"{v:.2f}"


def write_sample(out: Path, images_dir: Path):
    from PIL import Image, ImageDraw

    out.mkdir(parents=True, exist_ok=True)
    images_dir.mkdir(parents=True, exist_ok=True)
    cat_name = dict(CATEGORIES)
    cat_index = {cid: i for i, (cid, _) in enumerate(CATEGORIES)}

    coco_images, coco_anns, results = [], [], []
    ann_id = 1
    for img_id, (rel, w, h, boxes) in enumerate(IMAGES, start=1):
        src = images_dir / rel
        src.parent.mkdir(parents=True, exist_ok=True)
        im = Image.new("RGB", (w, h), (40 * img_id % 255, 90, 160))
        draw = ImageDraw.Draw(im)
        for _, x, y, bw, bh, _ in boxes:
            draw.rectangle([x, y, x + bw - 1, y + bh - 1], outline=(255, 255, 0))
        orientation = EXIF_ORIENTATION.get(rel)
        if orientation == 6:  # stored rotated 90° counter-clockwise; viewers turn it clockwise
            exif = Image.Exif()
            exif[0x0112] = orientation
            im.transpose(Image.Transpose.ROTATE_90).save(src, exif=exif)
        else:
            im.save(src)
        coco_images.append({"id": img_id, "file_name": "file://" + str(src.resolve()),
                            "width": w, "height": h})
        for cid, x, y, bw, bh, score in boxes:
            bbox = [round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)]
            coco_anns.append({"id": ann_id, "image_id": img_id, "category_id": cid, "bbox": bbox,
                              "area": round(bw * bh, 2), "iscrowd": 0, "score": score})
            results.append({"image_id": img_id, "category_id": cid, "bbox": bbox, "score": score})
            ann_id += 1

    coco = {
        "info": {"description": f"LabelJob {JOB}"},
        "images": coco_images,
        "annotations": coco_anns,
        "categories": [{"id": cid, "name": name, "supercategory": "object"} for cid, name in CATEGORIES],
    }
    (out / "annotations.json").write_text(json.dumps(coco, indent=1))
    (out / "results.json").write_text(json.dumps(results))

    stems, exts = assign_stems([im["file_name"] for im in coco_images])
    with open(out / "stems.jsonl", "w") as f:
        for im, stem, ext in zip(coco_images, stems, exts):
            f.write(json.dumps({"id": im["id"], "file_name": im["file_name"], "stem": stem, "ext": ext}) + "\n")

    by_image = {im["id"]: [a for a in coco_anns if a["image_id"] == im["id"]] for im in coco_images}

    # --- YOLO (Ultralytics) ---
    (out / "yolo" / "labels").mkdir(parents=True, exist_ok=True)
    names = "\n".join(f"  {i}: {yaml_str(name)}" for i, (_, name) in enumerate(CATEGORIES))
    (out / "yolo" / "data.yaml").write_text(f"path: .\ntrain: images\nval: images\nnames:\n{names}\n")
    for im, stem in zip(coco_images, stems):
        lines = []
        for a in by_image[im["id"]]:
            x, y, bw, bh = a["bbox"]
            W, H = im["width"], im["height"]
            lines.append(f"{cat_index[a['category_id']]} {(x + bw / 2) / W:.6f} {(y + bh / 2) / H:.6f} "
                         f"{bw / W:.6f} {bh / H:.6f}\n")
        (out / "yolo" / "labels" / f"{stem}.txt").write_text("".join(lines))

    # --- Pascal VOC ---
    voc = out / "voc"
    (voc / "Annotations").mkdir(parents=True, exist_ok=True)
    (voc / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    (voc / "ImageSets" / "Main" / "default.txt").write_text("".join(s + "\n" for s in stems))
    (voc / "labelmap.txt").write_text("# label:color_rgb:parts:actions\n"
                                     + "".join(f"{name}:::\n" for _, name in CATEGORIES))
    for im, stem, ext in zip(coco_images, stems, exts):
        W, H = im["width"], im["height"]
        objs = []
        for a in by_image[im["id"]]:
            x, y, bw, bh = a["bbox"]
            xmin, ymin = min(max(round(x), 0), W), min(max(round(y), 0), H)
            xmax, ymax = min(max(round(x + bw), 0), W), min(max(round(y + bh), 0), H)
            objs.append(f"<object><name>{escape(cat_name[a['category_id']])}</name><pose>Unspecified</pose>"
                        f"<truncated>0</truncated><difficult>0</difficult><bndbox><xmin>{xmin}</xmin>"
                        f"<ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")
        xml = (f"<annotation><folder>images</folder><filename>{escape(stem + ext)}</filename>"
               f"<source><database>labeljob</database></source><size><width>{W}</width><height>{H}</height>"
               f"<depth>3</depth></size><segmented>0</segmented>{''.join(objs)}</annotation>\n")
        (voc / "Annotations" / f"{stem}.xml").write_text(xml)

    # --- CVAT for images 1.1 ---
    (out / "cvat").mkdir(parents=True, exist_ok=True)
    labels = "".join(
        f"<label><name>{escape(name)}</name><attributes><attribute><name>score</name><mutable>False</mutable>"
        f"<input_type>number</input_type><default_value>0</default_value><values>0;1;0.00001</values>"
        f"</attribute></attributes></label>" for _, name in CATEGORIES)
    parts = [f"<annotations><version>1.1</version><meta><task><name>{escape(JOB)}</name>"
             f"<size>{len(coco_images)}</size><mode>annotation</mode><labels>{labels}</labels></task></meta>"]
    for i, (im, stem, ext) in enumerate(zip(coco_images, stems, exts)):
        parts.append(f"<image id=\"{i}\" name={quoteattr(stem + ext)} width=\"{im['width']}\" "
                     f"height=\"{im['height']}\">")
        for a in by_image[im["id"]]:
            x, y, bw, bh = a["bbox"]
            parts.append(f"<box label={quoteattr(cat_name[a['category_id']])} source=\"auto\" occluded=\"0\" "
                         f"xtl=\"{f2(x)}\" ytl=\"{f2(y)}\" xbr=\"{f2(x + bw)}\" ybr=\"{f2(y + bh)}\" z_order=\"0\">"
                         f"<attribute name=\"score\">{f2(a['score'])}</attribute></box>")
        parts.append("</image>")
    parts.append("</annotations>\n")
    (out / "cvat" / "annotations.xml").write_text("".join(parts))

    # --- Label Studio ---
    ls = out / "labelstudio"
    ls.mkdir(parents=True, exist_ok=True)
    (ls / "config.xml").write_text(
        '<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
        + "".join(f"<Label value={quoteattr(name)}/>" for _, name in CATEGORIES)
        + "</RectangleLabels></View>\n")
    tasks = []
    for im in coco_images:
        W, H = im["width"], im["height"]
        anns = by_image[im["id"]]
        result = []
        for n, a in enumerate(anns):
            x, y, bw, bh = a["bbox"]
            result.append({
                "id": f"{im['id']}-{n}", "type": "rectanglelabels", "from_name": "label", "to_name": "image",
                "original_width": W, "original_height": H, "image_rotation": 0, "score": a["score"],
                "value": {"x": x / W * 100, "y": y / H * 100, "width": bw / W * 100, "height": bh / H * 100,
                          "rotation": 0, "rectanglelabels": [cat_name[a["category_id"]]]}})
        score = sum(a["score"] for a in anns) / len(anns) if anns else 0
        tasks.append({"id": im["id"], "data": {"image": im["file_name"]},
                      "predictions": [{"model_version": MODEL_SHA256, "score": score, "result": result}]})
    (ls / "tasks.json").write_text(json.dumps(tasks, indent=1))

    # --- review subset: images with a box scored under 0.5 (COCO + Label Studio only) ---
    review_ids = sorted({a["image_id"] for a in coco_anns if a["score"] < 0.5})
    (out / "review" / "labelstudio").mkdir(parents=True, exist_ok=True)
    review = dict(coco, images=[im for im in coco_images if im["id"] in review_ids],
                  annotations=[a for a in coco_anns if a["image_id"] in review_ids])
    (out / "review" / "annotations.json").write_text(json.dumps(review, indent=1))
    (out / "review" / "labelstudio" / "tasks.json").write_text(
        json.dumps([t for t in tasks if t["id"] in review_ids], indent=1))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output_dir", type=Path)
    ap.add_argument("--images-dir", type=Path, required=True, help="where to write the source images")
    args = ap.parse_args(argv)
    write_sample(args.output_dir, args.images_dir)
    print(args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
