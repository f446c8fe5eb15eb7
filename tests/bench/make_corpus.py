"""Generate the benchmark corpora of `make bench` from the fixture photos (no downloads).

    python make_corpus.py OUT_DIR small|large COUNT

small: COUNT distinct JPEG photos of at most 1 MP (a random crop of 70–100 % of a fixture,
scaled to 0.3–1 MP, a small brightness change, quality 80–95): the typical labelling input.
large: COUNT distinct 12 MP JPEGs (4000×3000 or 3000×4000: a fixture crop upscaled with
Lanczos plus sensor-like noise, quality 90): what phones and cameras write.

Each image differs in content, so content deduplication keeps every one. A file `DONE` with
the arguments marks a finished corpus: a second call with the same arguments returns at once.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"


def sources() -> list[Image.Image]:
    out = []
    for p in sorted(PHOTOS.iterdir()):
        if p.suffix.lower() in (".jpg", ".png"):
            with Image.open(p) as im:
                out.append(ImageOps.exif_transpose(im).convert("RGB"))
    return out


def crop(rng: random.Random, im: Image.Image, lo: float) -> Image.Image:
    w, h = im.size
    f = rng.uniform(lo, 1.0)
    cw, ch = max(16, int(w * f)), max(16, int(h * f))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return im.crop((x, y, x + cw, y + ch))


def small(rng: random.Random, im: Image.Image) -> Image.Image:
    im = crop(rng, im, 0.7)
    mp = rng.uniform(0.3, 1.0) * 1e6
    scale = min(1.0, (mp / (im.width * im.height)) ** 0.5) if im.width * im.height > mp else 1.0
    im = im.resize((max(16, int(im.width * scale)), max(16, int(im.height * scale))), Image.BILINEAR)
    return ImageEnhance.Brightness(im).enhance(rng.uniform(0.85, 1.15))


def large(rng: random.Random, im: Image.Image) -> Image.Image:
    im = crop(rng, im, 0.8)
    size = (4000, 3000) if im.width >= im.height else (3000, 4000)
    im = im.resize(size, Image.LANCZOS)
    noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 3, (size[1], size[0], 1))
    px = np.clip(np.asarray(im, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(px)


def main() -> None:
    out, kind, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    done = out / "DONE"
    if done.exists() and done.read_text() == f"{kind} {count}\n":
        return
    out.mkdir(parents=True, exist_ok=True)
    srcs = sources()
    rng = random.Random(f"labeljob-bench-{kind}")
    for i in range(count):
        im = (small if kind == "small" else large)(rng, srcs[i % len(srcs)])
        quality = rng.randint(80, 95) if kind == "small" else 90
        im.save(out / f"{kind}-{i:05d}.jpg", quality=quality)
    done.write_text(f"{kind} {count}\n")


if __name__ == "__main__":
    main()
