"""Generate the bad-input corpus of issue 9 into a directory: broken, odd and hostile images and
names (`image_cases`), bad LabelJob files (`job_cases`) and bad OIP requests (`oip_cases`).
Nothing here is a binary blob in git: every case is built from the fixture photos or from bytes
written out below. Run it by hand to look at the files:

    python tests/corpus/make_corpus.py /tmp/corpus
"""

import io
import os
import random
import shutil
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO / "tests" / "fixtures" / "photos"

LABELLED = "labelled"


@dataclass
class ImageCase:
    """One entry in the input directory. `name` is the raw (bytes) path relative to the input.
    `expect` is LABELLED, or (stage, kind, [words the reason must contain]). `counted` is
    False for entries the lister rightly skips (not an image name: not in the manifest)."""
    name: bytes
    expect: object
    note: str = ""
    counted: bool = True
    size: tuple = None  # (width, height) the COCO image must have, after EXIF orientation


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_raw(w, h, ihdr_extra=(8, 2, 0, 0, 0), idat=None, pre=b"", post=b""):
    depth, ctype, comp, filt, inter = ihdr_extra
    if idat is None:
        bpp = {2: 3, 0: 1, 6: 4, 3: 1, 4: 2}[ctype] * max(1, depth // 8)
        raw = b"".join(b"\0" + b"\x80" * (w * bpp) for _ in range(h))
        idat = zlib.compress(raw)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, comp, filt, inter))
            + pre + chunk(b"IDAT", idat) + post + chunk(b"IEND", b""))


def jpeg_bytes(img, **kw):
    b = io.BytesIO()
    img.save(b, "JPEG", **kw)
    return b.getvalue()


def png_bytes(img, **kw):
    b = io.BytesIO()
    img.save(b, "PNG", **kw)
    return b.getvalue()


def exif_with_orientation(o):
    # little-endian TIFF header, one IFD entry: Orientation (0x0112), SHORT, 1, value o
    tiff = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, o, 0) + b"\0\0\0\0"
    return b"Exif\0\0" + tiff


def exif_absurd():
    # IFD0 offset far beyond the segment; an entry whose value offset points at 0xFFFFFFF0
    tiff = b"MM\0*" + struct.pack(">I", 0xFFFFFF00)
    tiff2 = b"MM\0*" + struct.pack(">I", 8) + struct.pack(">H", 0xFFFF) + struct.pack(">HHII", 0x010F, 2, 0x7FFFFFFF, 0xFFFFFFF0)
    return b"Exif\0\0" + tiff, b"Exif\0\0" + tiff2


def insert_app1(jpeg, payload):
    seg = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + seg + jpeg[2:]


def patch_sof(jpeg, w, h):
    """Set the frame size in the first SOFn marker."""
    i = 2
    b = bytearray(jpeg)
    while i < len(b):
        assert b[i] == 0xFF
        m = b[i + 1]
        ln = struct.unpack(">H", b[i + 2:i + 4])[0]
        if m in (0xC0, 0xC1, 0xC2):
            b[i + 5:i + 9] = struct.pack(">HH", h, w)
            return bytes(b)
        i += 2 + ln
    raise ValueError("no SOF")


def sos_offset(jpeg):
    i = 2
    while i < len(jpeg):
        m = jpeg[i + 1]
        ln = struct.unpack(">H", jpeg[i + 2:i + 4])[0]
        if m == 0xDA:
            return i + 2 + ln
        i += 2 + ln
    raise ValueError("no SOS")


def bomb(inflated):
    co = zlib.compressobj(9)
    block = b"\0" * (1 << 24)
    return b"".join(co.compress(block) for _ in range(max(1, inflated // len(block)))) + co.flush()


def image_cases(src: Path):
    """Write the image corpus into `src` (created) and return the list of ImageCase."""
    d = os.fsencode(src)
    os.makedirs(d, exist_ok=True)
    os.makedirs(d + b"/sub", exist_ok=True)
    dog_path = PHOTOS / "dog.jpg"
    dog = dog_path.read_bytes()
    img = Image.open(dog_path).convert("RGB")
    small = img.resize((160, 120))
    cases = []

    def put(name, data, expect, note="", counted=True, size=None):
        with open(d + b"/" + name, "wb") as f:
            f.write(data)
        cases.append(ImageCase(name, expect, note, counted, size))

    dec = lambda kind, *words: ("decode", kind, list(words))
    # --- broken bytes -------------------------------------------------------------------------
    put(b"empty.jpg", b"", dec("empty", "0 bytes"))
    put(b"empty.png", b"", dec("empty", "0 bytes"))
    s = sos_offset(dog)
    for frac, tag in [(0.0, "header"), (0.5, "half"), (0.99, "tail")]:
        cut = s + int((len(dog) - s) * frac) if frac else 200
        put(f"trunc-{tag}.jpg".encode(), dog[:cut], dec("corrupt", "truncated"))
    garbled = bytearray(dog)
    rnd = random.Random(9)
    for k in range(s + 100, len(dog) - 100, 97):
        garbled[k] = 0xFF if rnd.random() < 0.5 else rnd.randrange(256)
    put(b"bad-huffman.jpg", bytes(garbled), dec("corrupt", "corrupt jpeg image: "))
    p = bytearray(png_bytes(small))
    p[29:33] = b"\0\0\0\0"  # IHDR CRC
    put(b"bad-crc.png", bytes(p), dec("corrupt", "CRC error"))
    put(b"iccp-bomb.png", png_raw(8, 8, pre=chunk(b"iCCP", b"evil\0\0" + bomb(1 << 28))), LABELLED, "iCCP inflates to 256 MiB")
    put(b"ztxt-bomb.png", png_raw(8, 8, pre=chunk(b"zTXt", b"Comment\0\0" + bomb(1 << 28))), LABELLED, "zTXt inflates to 256 MiB")
    put(b"idat-bomb.png", png_raw(64, 64, idat=bomb(1 << 28)), LABELLED, "IDAT inflates to 256 MiB: only the 64x64 image is read")
    put(b"huge-sof.jpg", patch_sof(dog, 65535, 65535), dec("too-large", "65535×65535 px exceeds the width limit"), "SOF 65535x65535")
    put(b"huge-ihdr.png", png_raw(100000, 100000, idat=zlib.compress(b"\0" * 10)), dec("too-large", "100000×100000 px exceeds"), "IHDR 100000x100000")
    put(b"zero-w.png", png_raw(0, 8, idat=zlib.compress(b"")), dec("corrupt", "Invalid image dimensions"), "IHDR width 0")
    put(b"zero-sof.jpg", patch_sof(dog, 0, 0), dec("corrupt", "zero width or height"), "SOF 0x0")
    put(b"text.jpg", b"hello, this is not an image\n" * 10, dec("unknown-format", "280 bytes that are not JPEG, PNG"))
    put(b"page.png", b"<!doctype html><html><body>not a png</body></html>\n", dec("unknown-format", "51 bytes that are not JPEG, PNG"))
    put(b"random.jpg", bytes(random.Random(1).randrange(256) for _ in range(4096)), dec("unknown-format", "4096 bytes that are not JPEG"))
    put(b"random.png", b"\x89PNG\r\n\x1a\n" + bytes(random.Random(2).randrange(256) for _ in range(4096)), dec("corrupt", "chunk appeared before IHDR"))
    # --- odd but valid --------------------------------------------------------------------------
    put(b"png-named.jpg", png_bytes(small), LABELLED, "PNG bytes under .jpg")
    put(b"jpeg-named.png", jpeg_bytes(small), LABELLED, "JPEG bytes under .png")
    for fmt, ext in [("GIF", "gif"), ("BMP", "bmp"), ("WEBP", "webp"), ("TIFF", "tiff")]:
        b = io.BytesIO()
        small.save(b, fmt)
        put(f"fmt.{ext}".encode(), b.getvalue(), LABELLED if ext in ("bmp", "webp") else None, fmt,
            counted=ext in ("bmp", "webp"))  # GIF/TIFF: not an image name, not listed
    put(b"cmyk.jpg", jpeg_bytes(small.convert("CMYK")), LABELLED)
    put(b"gray.jpg", jpeg_bytes(small.convert("L")), LABELLED)
    put(b"gray16.png", png_bytes(small.convert("L").convert("I;16")), LABELLED)
    put(b"rgba.png", png_bytes(small.convert("RGBA")), LABELLED)
    pal = small.convert("P", palette=Image.ADAPTIVE, colors=16)
    put(b"palette-trns.png", png_bytes(pal, transparency=0), LABELLED)
    put(b"interlaced.png", png_raw(32, 24, (8, 2, 0, 0, 1), idat=zlib.compress(
        # Adam7 of a uniform image: every pass row is filter 0 + gray bytes
        b"".join(b"\0" + b"\x80" * (3 * pw) for pw, ph in [(4, 3), (4, 3), (8, 3), (8, 6), (16, 6), (16, 12), (32, 12)] for _ in range(ph)))), LABELLED)
    put(b"progressive.jpg", jpeg_bytes(small, progressive=True), LABELLED)
    plain = jpeg_bytes(small)
    for o in range(1, 9):
        put(f"exif-orient-{o}.jpg".encode(), insert_app1(plain, exif_with_orientation(o)), LABELLED,
            size=(160, 120) if o <= 4 else (120, 160))  # 5-8 swap the axes
    e1, e2 = exif_absurd()
    put(b"exif-absurd-ifd.jpg", insert_app1(plain, e1), LABELLED, size=(160, 120))
    put(b"exif-absurd-count.jpg", insert_app1(plain, e2), LABELLED)
    put(b"one-pixel.png", png_bytes(Image.new("RGB", (1, 1), (200, 10, 10))), LABELLED, size=(1, 1))
    put(b"wide-30000x1.png", png_bytes(Image.new("RGB", (30000, 1), (10, 200, 10))), dec("too-large", "30000×1 px exceeds the width limit of 20000 px"))
    put(b"wide-20000x1.png", png_bytes(Image.new("RGB", (20000, 1), (10, 200, 10))), LABELLED, "at the width limit", size=(20000, 1))
    put(b"tall-1x30000.jpg", jpeg_bytes(Image.new("RGB", (1, 30000), (10, 10, 200))), dec("too-large", "1×30000 px exceeds the height limit of 20000 px"))
    pp = png_bytes(small)
    put(b"trunc-idat.png", pp[:len(pp) // 2], dec("corrupt", "png"))
    put(b"no-iend.png", pp[:-12], dec("corrupt", "truncated"), "IEND chunk cut off")
    with open(d + b"/sparse-300MiB.jpg", "wb") as f:
        f.truncate(300 << 20)  # sparse: no disk used
    cases.append(ImageCase(b"sparse-300MiB.jpg", ("download", "too-large", [f"{300 << 20} bytes exceeds the limit of {256 << 20} bytes"])))
    put(b"polyglot.jpg", plain + b"PK\x03\x04" + b"\0" * 26 + b"zipped.txt" + b"hello" * 20, LABELLED, "JPEG + appended zip")
    put(b"trailing-garbage.png", png_bytes(small) + b"\0garbage" * 100, LABELLED)
    put(b"dup-a.jpg", plain, LABELLED, "same bytes as dup-b")
    put(b"dup-b.jpg", plain, LABELLED, "same bytes as dup-a")
    put(b"UPPER.JPG", plain, LABELLED)
    # --- names ---------------------------------------------------------------------------------
    for name in ["with space.jpg", "hash#1.jpg", "what?x=1.jpg", "pct%41%zz.jpg", "ünïcødé-写真.jpg",
                 "-leading-dash.jpg", ".dotfile.jpg", "semi;colon&amp.jpg", "quote'\"back\\.jpg",
                 "sub/nested.jpg"]:
        put(name.encode(), plain, LABELLED)
    long = ("L" * (250 - 4)) + ".jpg"
    put(long.encode(), plain, LABELLED, "250-byte name")
    put(b"not-an-image.txt", b"notes\n", None, "not an image name", counted=False)
    # --- odd entries (stage list) ---------------------------------------------------------------
    for raw in [b"tab\there.jpg", b"new\nline.jpg", b"bell\x07.png", b"latin1-\xe9t\xe9.jpg", b"del\x7f.jpg",
                b"esc\x1b[31m.jpg"]:
        put(raw, plain, ("list", "bad-name", ["file name", "rename the file"]))
    os.symlink(b"loop.jpg", d + b"/loop.jpg")
    cases.append(ImageCase(b"loop.jpg", ("list", "symlink-loop", ["symbolic link loop"])))
    os.symlink(b"nowhere.jpg", d + b"/dangling.jpg")
    cases.append(ImageCase(b"dangling.jpg", ("list", "dangling-symlink", ["nowhere.jpg does not exist"])))
    os.symlink(b"dup-a.jpg", d + b"/link-to-dup.jpg")
    cases.append(ImageCase(b"link-to-dup.jpg", LABELLED, "symlink inside the input"))
    os.mkfifo(d + b"/fifo.jpg")
    cases.append(ImageCase(b"fifo.jpg", ("list", "not-a-file", ["not a regular file"])))
    os.makedirs(d + b"/dir.jpg")
    cases.append(ImageCase(b"dir.jpg", None, "a directory named like an image: listed into, not an image", counted=False))
    put(b"dir.jpg/inner.jpg", plain, LABELLED)
    return cases


# --- bad LabelJob files ------------------------------------------------------------------------

@dataclass
class JobCase:
    """A LabelJob file (`text`, bytes) that `labeljob run` must refuse with exit 2, printing
    each of `words` (the field path or the input at fault)."""
    id: str
    text: bytes
    words: list
    known_issue: str = ""  # wrong behaviour seen on the current build: reported, not asserted
    plans: bool = False  # refused after planning: the output may hold the plan, never shards or results


def job_text(input_uri, output_uri, spec_extra="", model="  model:\n    builtin: ssd-mobilenet-v2-coco\n",
             head="apiVersion: labeljob.dev/v1alpha1\nkind: LabelJob\n"):
    return (f"{head}metadata:\n  name: corpus\nspec:\n  input:\n    uri: \"{input_uri}\"\n{model}"
            f"  output:\n    uri: \"{output_uri}\"\n{spec_extra}")


def job_cases(work: Path, photos_uri: str, out_uri: str):
    """Bad job files; `work` is a scratch directory for inputs some cases need."""
    (work / "in").mkdir(parents=True, exist_ok=True)
    shutil.copy(PHOTOS / "dog.jpg", work / "in" / "dog.jpg")
    inp = f"file://{work}/in"
    J = lambda extra="", **kw: job_text(kw.pop("input_uri", inp), kw.pop("output_uri", out_uri), extra, **kw).encode()
    laughs = "".join(f"  l{i}: &l{i} [" + ",".join([f"*l{i-1}"] * 9) + "]\n" for i in range(1, 10))
    bomb_doc = ("apiVersion: labeljob.dev/v1alpha1\nkind: LabelJob\nmetadata:\n  name: corpus\n"
                "  annotations:\n    l0: &l0 \"lol\"\n" + laughs.replace("  l", "    l") +
                f"spec:\n  input:\n    uri: \"{inp}\"\n  model:\n    builtin: ssd-mobilenet-v2-coco\n"
                f"  output:\n    uri: \"{out_uri}\"\n")
    big_line = "      - '**/prefix-that-matches-nothing-*.jpg'\n"
    cases = [
        JobCase("misspelt-scoreTreshold", J("  postprocess:\n    scoreTreshold: 0.99\n"),
                ["spec.postprocess.scoreTreshold: unknown field", 'did you mean "scoreThreshold"']),
        JobCase("misspelt-top-level", J("  maxFailedFractoin: 0\n"), ["spec.maxFailedFractoin: unknown field"]),
        JobCase("misspelt-spec", J().replace(b"spec:", b"spek:"), ["spek: unknown field", "did you mean \"spec\""]),
        JobCase("shards-string", J("  workers:\n    shards: many\n"), ["spec.workers.shards"]),
        JobCase("shards-negative", J("  workers:\n    shards: -1\n"), ["spec.workers.shards: -1 is below the minimum 1"]),
        JobCase("shards-zero", J("  workers:\n    shards: 0\n"), ["spec.workers.shards: 0 is below the minimum 1"]),
        JobCase("shards-u32max", J("  workers:\n    shards: 4294967295\n"), ["spec.workers.shards: 4294967295 is above the maximum"]),
        JobCase("shards-float", J("  workers:\n    shards: 2.5\n"), ["spec.workers.shards"]),
        JobCase("concurrency-zero", J("  workers:\n    concurrency: 0\n"), ["spec.workers.concurrency: 0 is below the minimum"]),
        JobCase("concurrency-huge", J("  workers:\n    concurrency: 100000\n"), ["spec.workers.concurrency: 100000 is above the maximum"]),
        JobCase("score-above-1", J("  postprocess:\n    scoreThreshold: 2\n"), ["spec.postprocess.scoreThreshold: 2 is above the maximum 1"]),
        JobCase("unknown-builtin", J(model="  model:\n    builtin: yolo-v99\n"), ['"yolo-v99"']),
        JobCase("resize-enum", J(model="  model:\n    builtin: ssd-mobilenet-v2-coco\n    resize: squash\n"),
                ['spec.model.resize: "squash" is not one of']),
        JobCase("bad-glob", J().replace(f'    uri: "{inp}"\n'.encode(), f'    uri: "{inp}"\n    include: ["a[b"]\n'.encode()),
                ["invalid glob", "a[b"]),
        JobCase("bucketless-output", J(output_uri="s3:///x"), ["invalid storage URI", "s3:///x"]),
        JobCase("unknown-scheme", J(output_uri="ftp://host/x"), ["ftp://host/x"]),
        JobCase("output-equals-input", J(output_uri=inp), ["spec.output.uri", "overlaps input.uri"]),
        JobCase("output-inside-input", J(output_uri=inp + "/out"), ["spec.output.uri", "overlaps input.uri"]),
        JobCase("missing-input", J(input_uri=f"file://{work}/does-not-exist"), [f"{work}/does-not-exist", "does not exist"]),
        JobCase("empty-input", J(input_uri=f"file://{work}/empty-in"), ["lists no images"], plans=True),
        JobCase("no-input-field", J().replace(f'  input:\n    uri: "{inp}"\n'.encode(), b""), ["spec.input: required field is missing"]),
        JobCase("wrong-apiVersion", J(head="apiVersion: labeljob.dev/v9\nkind: LabelJob\n"), ["apiVersion/kind", "labeljob.dev/v9"]),
        JobCase("wrong-kind", J(head="apiVersion: labeljob.dev/v1alpha1\nkind: Pod\n"), ["Pod"]),
        JobCase("yaml-billion-laughs", bomb_doc.encode(), ["repetition limit exceeded"]),
        JobCase("oversized-48MB", J("  input:\n    include:\n") + big_line.encode() * (48_000_000 // len(big_line)),
                ["more than the 1572864 bytes a LabelJob may have"]),
        JobCase("tabs-indent", J().replace(b"  output:\n    uri", b"  output:\n\turi"), ["line 11 column 1"]),
        JobCase("two-documents", J() + b"---\n" + J(), ["more than one document"]),
        JobCase("not-utf8", J().replace(b"name: corpus", b"name: corp\xff\xfeus"), ["cannot read", "job.yaml", "valid UTF-8"]),
        JobCase("empty-file", b"", ["apiVersion/kind"]),
        JobCase("not-a-mapping", b"- just\n- a list\n", ["apiVersion/kind"]),
        JobCase("class-threshold-bad-class", J("  postprocess:\n    classThresholds:\n      unicorn: 0.5\n"), ["spec.postprocess.classThresholds", "unicorn"]),
        JobCase("class-threshold-out-of-range", J("  postprocess:\n    classThresholds:\n      dog: 7\n"), ["spec.postprocess.classThresholds", "\"dog\": 7 is outside"]),
        JobCase("binary-garbage", bytes(random.Random(3).randrange(256) for _ in range(2000)), ["apiVersion/kind"]),
    ]
    (work / "empty-in").mkdir(exist_ok=True)
    return cases


# --- bad OIP requests --------------------------------------------------------------------------

@dataclass
class OipCase:
    """A raw HTTP/1.1 request to `labeljob serve`; `status` is the expected answer and `words`
    what its error body must say. `raw` is the whole request (headers and body) as sent."""
    id: str
    raw: bytes
    status: int
    words: list
    known_issue: str = ""
    json_error: bool = True  # False: refused by the HTTP layer itself, before any handler (empty body)


MODEL_NAME = "ssd-mobilenet-v2-coco"
INFER = f"/v2/models/{MODEL_NAME}/infer"


def http(path, body=b"", method="POST", ctype="application/json", extra=b"", length=None):
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode()
    if ctype:
        head += f"Content-Type: {ctype}\r\n".encode()
    if length is None:
        length = len(body)
    if length is not False:
        head += f"Content-Length: {length}\r\n".encode()
    return head + extra + b"\r\n" + body


def infer_json(shape, data, datatype="UINT8", name="images", **top):
    import json
    doc = {"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}], **top}
    return json.dumps(doc).encode()


def oip_cases(max_body=33554432):
    import json
    one = [0] * (300 * 300 * 3)
    good = infer_json([1, 300, 300, 3], one)
    binary_json = json.dumps({"inputs": [{"name": "images", "shape": [1, 300, 300, 3], "datatype": "UINT8",
                                          "parameters": {"binary_data_size": 270000}}]}).encode()
    chunks = b"".join(b"%x\r\n" % (1 << 20) + b"\0" * (1 << 20) + b"\r\n" for _ in range(max_body // (1 << 20) + 2)) + b"0\r\n\r\n"
    cases = [
        OipCase("huge-shape-tiny-data", http(INFER, infer_json([1000000, 300, 300, 3], [0])), 400, ["shape"]),
        OipCase("negative-dim", http(INFER, infer_json([1, -300, 300, 3], [0])), 400, ["shape"]),
        OipCase("shape-overflow", http(INFER, infer_json([2**62, 2**62, 300, 3], [0])), 400, ["shape"]),
        OipCase("wrong-datatype", http(INFER, infer_json([1, 300, 300, 3], one, datatype="FP64")), 400, ["datatype"]),
        OipCase("unknown-datatype", http(INFER, infer_json([1, 300, 300, 3], one, datatype="COMPLEX")), 400, ["COMPLEX"]),
        OipCase("data-length-mismatch", http(INFER, infer_json([1, 300, 300, 3], [0] * 1000)), 400, ["1000"]),
        OipCase("wrong-image-size", http(INFER, infer_json([1, 200, 300, 3], [0] * (200 * 300 * 3))), 400, ["inputs[0].shape"]),
        OipCase("zero-batch", http(INFER, infer_json([0, 300, 300, 3], [])), 400, ["shape"]),
        OipCase("missing-inputs", http(INFER, b'{"outputs": []}'), 400, ["inputs"]),
        OipCase("empty-inputs", http(INFER, b'{"inputs": []}'), 400, ["inputs"]),
        OipCase("wrong-input-name", http(INFER, infer_json([1, 300, 300, 3], one, name="pixels")), 400, ["pixels"]),
        OipCase("data-out-of-range", http(INFER, infer_json([1, 300, 300, 3], [256] + one[1:])), 400, ["256"]),
        OipCase("data-nan-strings", http(INFER, infer_json([1, 300, 300, 3], ["NaN"] + one[1:])), 400, ["data"]),
        OipCase("json-deep-nesting", http(INFER, b"[" * 100000 + b"]" * 100000), 400, ["invalid JSON"]),
        OipCase("json-deep-nesting-in-object", http(INFER, b'{"inputs":' + b"[" * 100000 + b"]" * 100000 + b"}"), 400, ["invalid JSON"]),
        OipCase("not-json", http(INFER, b"hello, not json"), 400, ["expected"]),
        OipCase("truncated-json", http(INFER, good[:5000]), 400, ["EOF"]),
        # As Triton and KServe do, the body decides (JSON, or binary with its header length), not
        # the Content-Type: a valid request sent as text/plain is answered.
        OipCase("wrong-content-type", http(INFER, good, ctype="text/plain"), 200, ["outputs"], json_error=False),
        OipCase("binary-header-beyond-body", http(INFER, binary_json + b"\0" * 100, ctype="application/octet-stream",
                                                  extra=f"Inference-Header-Content-Length: {len(binary_json) + 10**9}\r\n".encode()),
                400, ["Inference-Header-Content-Length"]),
        OipCase("binary-size-mismatch", http(INFER, binary_json + b"\0" * 100, ctype="application/octet-stream",
                                             extra=f"Inference-Header-Content-Length: {len(binary_json)}\r\n".encode()),
                400, ["binary"]),
        OipCase("content-length-over-limit", http(INFER, b"", length=max_body + 1), 413, ["larger than the limit of 33554432 bytes"]),
        OipCase("content-length-2GB", http(INFER, b"{}", length=2 << 30), 413, ["larger than the limit of 33554432 bytes"]),
        OipCase("chunked-over-limit", http(INFER, chunks, length=False, extra=b"Transfer-Encoding: chunked\r\n"), 413, ["limit"]),
        OipCase("content-length-not-a-number", http(INFER, good, length=False, extra=b"Content-Length: 99999999999999999999999\r\n"), 400, [],
                json_error=False),
        OipCase("header-length-not-a-number", http(INFER, binary_json, ctype="application/octet-stream",
                                                   extra=b"Inference-Header-Content-Length: lots\r\n"), 400, ["Inference-Header-Content-Length"]),
        OipCase("binary-size-negative", http(INFER, json.dumps({"inputs": [{"name": "images", "shape": [1, 300, 300, 3], "datatype": "UINT8",
                "parameters": {"binary_data_size": -5}}]}).encode(), ctype="application/octet-stream",
                extra=b"Inference-Header-Content-Length: 500\r\n"), 400, []),
        OipCase("shape-as-string", http(INFER, infer_json("1,300,300,3", [0])), 400, ["invalid type", "expected a sequence"]),
        OipCase("duplicate-input", http(INFER, json.dumps({"inputs": json.loads(good)["inputs"] * 2}).encode()), 400, ["images"]),
        OipCase("data-nested-wrong", http(INFER, infer_json([1, 300, 300, 3], [[{"a": 1}]])), 400, ["data"]),
        OipCase("empty-body", http(INFER, b""), 400, []),
        OipCase("unknown-model", http("/v2/models/yolo/infer", good), 404, ["yolo"]),
        OipCase("unknown-model-metadata", http("/v2/models/yolo", method="GET", ctype=None), 404, ["yolo"]),
        OipCase("unknown-version", http(f"/v2/models/{MODEL_NAME}/versions/99/infer", good), 404, ["99"]),
        OipCase("get-on-infer", http(INFER, method="GET", ctype=None), 405, []),
        OipCase("unknown-path", http("/v2/nothing/here", method="GET", ctype=None), 404, ["not found"]),
        OipCase("bad-outputs", http(INFER, json.dumps({"inputs": json.loads(good)["inputs"],
                                                       "outputs": [{"name": "secrets"}]}).encode()), 400, ["secrets"]),
    ]
    return cases


if __name__ == "__main__":
    out = Path(sys.argv[1])
    if out.exists():
        shutil.rmtree(out)
    for c in image_cases(out / "images"):
        print("image", c.name, c.expect, c.note)
    (out / "jobs").mkdir()
    for c in job_cases(out / "job-inputs", f"file://{PHOTOS}", f"file://{out}/job-out"):
        (out / "jobs" / f"{c.id}.yaml").write_bytes(c.text)
        print("job", c.id, c.words)
    (out / "oip").mkdir()
    for c in oip_cases():
        (out / "oip" / f"{c.id}.http").write_bytes(c.raw)
        print("oip", c.id, c.status, c.words)
