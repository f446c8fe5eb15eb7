"""The Python peer of `make bench`: the plain script a team writes instead of LabelJob —
OpenCV decode + resize, one single-threaded onnxruntime session per thread (one per core), each
thread over its share of the images. Prints one JSON object with img/s and the per-image cost
split (decode, resize, inference, in core-milliseconds).

    python peer.py MODEL IMAGE_DIR [--reduced] [--threads N]

--reduced decodes JPEGs with OpenCV's DCT-scaled IMREAD_REDUCED_COLOR_{2,4,8}, the largest
reduction that keeps both sides at least the model's input size (the size is read from the
header first), as a careful script would.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from PIL import Image

SIDE = 300
REDUCED = [(8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2)]


def decode_flag(path: Path, reduced: bool) -> int:
    if not reduced:
        return cv2.IMREAD_COLOR
    with Image.open(path) as im:
        w, h = im.size
    for k, flag in REDUCED:
        if min(w, h) // k >= SIDE:
            return flag
    return cv2.IMREAD_COLOR


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("images")
    ap.add_argument("--reduced", action="store_true")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    files = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in (".jpg", ".png"))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sessions = [ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
                for _ in range(args.threads)]
    name = sessions[0].get_inputs()[0].name
    for s in sessions:
        s.run(None, {name: np.zeros((1, SIDE, SIDE, 3), np.uint8)})
    costs = [[0.0, 0.0, 0.0] for _ in sessions]
    detections = [0 for _ in sessions]

    def work(i: int) -> None:
        s, c = sessions[i], costs[i]
        for path in files[i::len(sessions)]:
            t0 = time.perf_counter()
            bgr = cv2.imread(str(path), decode_flag(path, args.reduced))
            t1 = time.perf_counter()
            rgb = cv2.cvtColor(cv2.resize(bgr, (SIDE, SIDE), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
            t2 = time.perf_counter()
            out = s.run(None, {name: rgb[np.newaxis]})
            t3 = time.perf_counter()
            detections[i] += int(np.sum(out[2] >= 0.3)) if len(out) > 2 else 0
            c[0] += t1 - t0
            c[1] += t2 - t1
            c[2] += t3 - t2

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    n = len(files)
    decode, resize, infer = (sum(c[k] for c in costs) for k in range(3))
    print(json.dumps({
        "images": n, "seconds": wall, "imagesPerSecond": n / wall, "threads": len(sessions),
        "decodeMs": 1e3 * decode / n, "resizeMs": 1e3 * resize / n, "inferenceMs": 1e3 * infer / n,
        "otherMs": 1e3 * max(0.0, wall * len(sessions) - decode - resize - infer) / n,
        "detections": sum(detections),
    }))


if __name__ == "__main__":
    main()
