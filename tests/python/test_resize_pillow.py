"""The worker's resize is bit-exact with Pillow: `tests/fixtures/pillow-resize.json` holds the
sha256 of what Pillow makes of every fixture photo (EXIF transpose, convert("RGB"), BILINEAR
resize: stretch to 300x300 and 640x640, letterbox into 320x256 padded with 114). This test
recomputes the digests with the installed Pillow; the Rust test
`imaging::tests::fixtures::resize_is_bit_exact_with_pillow` checks the worker against the same
file. Regenerate after adding a photo: `python tests/python/test_resize_pillow.py > FILE`."""

import hashlib
import json
import sys
from pathlib import Path

from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO / "tests" / "fixtures" / "photos"
DIGESTS = REPO / "tests" / "fixtures" / "pillow-resize.json"
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
PAD = 114


def letterbox(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Ultralytics LetterBox geometry: round(side * r) content, floor of half the slack on the
    left/top."""
    w, h = img.size
    r = min(size[0] / w, size[1] / h)
    cw, ch = min(max(round(w * r), 1), size[0]), min(max(round(h * r), 1), size[1])
    canvas = Image.new("RGB", size, (PAD, PAD, PAD))
    canvas.paste(img.resize((cw, ch), Image.BILINEAR), ((size[0] - cw) // 2, (size[1] - ch) // 2))
    return canvas


def digests() -> dict:
    out = {}
    for path in sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in IMAGE_EXT):
        img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        variants = {
            "stretch-300x300": img.resize((300, 300), Image.BILINEAR),
            "stretch-640x640": img.resize((640, 640), Image.BILINEAR),
            "letterbox-320x256": letterbox(img, (320, 256)),
        }
        out[path.name] = {k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in variants.items()}
    return out


def test_committed_digests_are_what_pillow_makes():
    now = digests()
    assert now == json.loads(DIGESTS.read_text()), json.dumps(now, indent=2)


if __name__ == "__main__":
    json.dump(digests(), sys.stdout, indent=2)
    print()
