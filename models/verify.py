#!/usr/bin/env python3
"""Check the default detection model with python onnxruntime.

    .venv/bin/python models/verify.py                      # signature + detections on the fixture photos
    .venv/bin/python models/verify.py --compare NEW.onnx   # NEW must give bit-identical outputs

Preprocessing is the reference one: PIL decode, EXIF transpose, convert("RGB"),
stretch-resize to 300x300 with PIL BILINEAR, uint8 NHWC, batch 1.
Exit status is non-zero when the signature is not the expected one, when the expected
reference detections are missing, or when --compare finds any difference.
"""
import argparse
import glob
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODEL = os.path.join(HERE, "ssd-mobilenet-v2-coco.onnx")
LABELS = os.path.join(HERE, "coco_labels.txt")
PHOTOS = os.path.join(ROOT, "tests", "fixtures", "photos")

INPUT = ("normalized_input_image_tensor", [1, 300, 300, 3], "tensor(uint8)")
OUTPUTS = [
    ("TFLite_Detection_PostProcess", [1, 20, 4], "tensor(float)"),    # boxes ymin,xmin,ymax,xmax
    ("TFLite_Detection_PostProcess:1", [1, 20], "tensor(float)"),     # class index (0-based)
    ("TFLite_Detection_PostProcess:2", [1, 20], "tensor(float)"),     # score
    ("TFLite_Detection_PostProcess:3", [1], "tensor(float)"),         # number of valid rows
]
# (photo, COCO category id, min score) that the model must find (score >= min).
EXPECTED = [
    ("dog.jpg", 18, 0.9), ("dog.jpg", 2, 0.85), ("dog.jpg", 3, 0.8),
    ("chelsea.png", 17, 0.85), ("eagle.jpg", 16, 0.9), ("giraffe.jpg", 25, 0.9),
    ("horses.jpg", 19, 0.85), ("coffee.png", 47, 0.85), ("motorcycle_left.png", 4, 0.9),
    ("grace_hopper.jpg", 32, 0.7), ("astronaut.png", 1, 0.6),
]


def load_labels():
    """coco_labels.txt: '<index>  <name>' per line; index = model class output; COCO id = index + 1."""
    out = {}
    with open(LABELS) as f:
        for line in f:
            if line.strip():
                idx, name = line.rstrip("\n").split("  ", 1)
                out[int(idx)] = name
    return out


def preprocess(path):
    im = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    x = np.asarray(im.resize((300, 300), Image.BILINEAR), dtype=np.uint8)[None]
    return x, im.size


def inputs_for_compare(photos):
    xs = [preprocess(p)[0] for p in photos]
    rng = np.random.default_rng(1234)
    xs += [rng.integers(0, 256, (1, 300, 300, 3), dtype=np.uint8) for _ in range(8)]
    xs += [np.zeros((1, 300, 300, 3), np.uint8), np.full((1, 300, 300, 3), 255, np.uint8)]
    return xs


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--compare", help="another .onnx that must produce identical outputs")
    ap.add_argument("--min-score", type=float, default=0.4)
    args = ap.parse_args()

    photos = sorted(p for p in glob.glob(os.path.join(PHOTOS, "*")) if not p.endswith(".md"))
    labels = load_labels()
    s = session(args.model)
    ok = True

    sig_in = [(i.name, i.shape, i.type) for i in s.get_inputs()]
    sig_out = [(o.name, o.shape, o.type) for o in s.get_outputs()]
    print("onnxruntime", ort.__version__, "model", os.path.relpath(args.model, ROOT))
    for t in sig_in:
        print("  input ", *t)
    for t in sig_out:
        print("  output", *t)
    if sig_in != [INPUT] or sig_out != OUTPUTS:
        print("UNEXPECTED SIGNATURE", file=sys.stderr)
        ok = False

    found = {}
    for p in photos:
        x, (w, h) = preprocess(p)
        boxes, cls, scores, count = s.run(None, {INPUT[0]: x})
        name = os.path.basename(p)
        print(f"{name} {w}x{h} count={int(count[0])}")
        for k in range(int(count[0])):
            sc = float(scores[0, k])
            c = int(cls[0, k])
            found[(name, c + 1)] = max(found.get((name, c + 1), 0.0), sc)
            if sc < args.min_score:
                continue
            y0, x0, y1, x1 = (float(v) for v in boxes[0, k])
            print(f"   {labels.get(c, '?'):<13} idx={c:<2} coco_id={c + 1:<2} score={sc:.3f} "
                  f"box=[ymin {y0:.3f}, xmin {x0:.3f}, ymax {y1:.3f}, xmax {x1:.3f}] "
                  f"xywh_px=[{x0 * w:.0f}, {y0 * h:.0f}, {(x1 - x0) * w:.0f}, {(y1 - y0) * h:.0f}]")
    for name, cid, smin in EXPECTED:
        if os.path.exists(os.path.join(PHOTOS, name)) and found.get((name, cid), 0.0) < smin:
            print(f"MISSING expected detection: {name} coco_id={cid} score>={smin}", file=sys.stderr)
            ok = False

    if args.compare:
        other = session(args.compare)
        worst = 0.0
        same = True
        for x in inputs_for_compare(photos):
            a = s.run(None, {INPUT[0]: x})
            b = other.run(None, {INPUT[0]: x})
            for u, v in zip(a, b):
                if u.shape != v.shape or not np.array_equal(u, v):
                    same = False
                    if u.shape == v.shape:
                        worst = max(worst, float(np.abs(u - v).max()))
        print("compare:", "identical outputs" if same else f"DIFFERENT outputs (max abs diff {worst})")
        ok = ok and same

    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
