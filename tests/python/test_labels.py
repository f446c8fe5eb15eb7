"""Labels people can use at once (issue 10), on the fixture photos with the real model:
every output format read by real importers (datumaro for coco/yolo/voc/cvat, label-studio-sdk
for the Label Studio tasks, pycocotools for COCO), review routing against an independent
recomputation, duplicates (exact and perceptual, compared with the imagehash package), and the
per-class rules against a Python recomputation from the raw detections."""

import hashlib
import json
import shutil
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from PIL import Image
from pycocotools.coco import COCO

from conftest import PHOTOS, REPO, run_labeljob

FORMATS_PY = REPO / ".venv-formats" / "bin" / "python"
CHECKER = REPO / "tests" / "formats" / "check_formats.py"


def job(tmp, name, inp, extra, shards=1, input_extra="", output_extra=""):
    """A job file for the builtin model; `input_extra`/`output_extra` go into those blocks."""
    out = tmp / f"out-{name}"
    path = tmp / f"{name}.yaml"
    path.write_text(f"""apiVersion: labeljob.dev/v1alpha1
kind: LabelJob
metadata: {{name: {name}}}
spec:
  input:
    uri: "file://{inp}"
{input_extra}  model: {{builtin: ssd-mobilenet-v2-coco}}
  output:
    uri: "file://{out}"
{output_extra}  workers: {{shards: {shards}}}
{extra}""")
    return path, out


def load(out, sub=""):
    return json.loads((out / sub / "annotations.json").read_text())


def boxes_by_uri(coco):
    names = {i["id"]: i["file_name"] for i in coco["images"]}
    got = defaultdict(list)
    for a in coco["annotations"]:
        got[names[a["image_id"]]].append((a["category_id"], a["bbox"], a["score"]))
    return {u: sorted(got.get(u, []), key=lambda b: -b[2]) for u in names.values()}


@pytest.fixture(scope="module")
def raw_run(tmp_path_factory, labeljob_bin, run_env):
    """The fixture photos with no rules: the reference the other runs are compared with."""
    tmp = tmp_path_factory.mktemp("raw")
    path, out = job(tmp, "raw", PHOTOS, "  postprocess: {scoreThreshold: 0.3}\n")
    run_labeljob(labeljob_bin, run_env, "run", path)
    return load(out)


def checker(out, *args):
    proc = subprocess.run([str(FORMATS_PY), str(CHECKER), str(out), "--images-dir", str(PHOTOS), *args],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"importer check failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout)


@pytest.mark.parametrize("archive", ["zip", "none"])
def test_every_format_is_read_by_the_real_importers(tmp_path, labeljob_bin, run_env, archive):
    """`archive` as written in the job: the default (yolo.zip, voc.zip) or `none` (directories)."""
    extra = "" if archive == "zip" else f"    archive: {archive}\n"
    path, out = job(tmp_path, "formats", PHOTOS, "", shards=2,
                    output_extra="    formats: [coco, yolo, voc, cvat, labelstudio]\n" + extra)
    run_labeljob(labeljob_bin, run_env, "run", path)
    for fmt in ["yolo", "voc"]:
        assert (out / f"{fmt}.zip").is_file() == (archive == "zip"), fmt
        assert (out / fmt).is_dir() == (archive == "none"), fmt
    coco = load(out)
    got = checker(out)
    assert got["checks"]["ok"], got["checks"]["errors"]
    want_per_class = Counter(next(c["name"] for c in coco["categories"] if c["id"] == a["category_id"])
                             for a in coco["annotations"])
    for fmt in ["coco", "yolo", "voc", "cvat", "labelstudio"]:
        assert got[fmt]["images"] == len(coco["images"]) == 13, fmt
        per_class = {k: v for k, v in got[fmt]["per_class"].items() if v}
        assert per_class == dict(want_per_class), fmt
    assert got["checks"]["max_diff_px"]["voc"] <= 1.0 and got["checks"]["max_diff_px"]["yolo"] <= 0.011
    assert got["labelstudio"]["validation"], "label-studio-sdk validated the predictions"
    print(f"\nformats: {len(coco['images'])} images, per class {dict(want_per_class)}, "
          f"max |box - COCO| px {got['checks']['max_diff_px']}")
    gt = COCO(str(out / "annotations.json"))
    dt = gt.loadRes(str(out / "results.json"))
    assert len(dt.getAnnIds()) == len(coco["annotations"]) > 0


def test_review_holds_exactly_the_uncertain_images(tmp_path, labeljob_bin, run_env, raw_run):
    above, below = 0.45, 0.7
    path, out = job(tmp_path, "review", PHOTOS,
                    f"  postprocess: {{scoreThreshold: 0.3}}\n  review: {{above: {above}, below: {below}}}\n")
    proc = run_labeljob(labeljob_bin, run_env, "run", path)
    want = {u for u, bs in boxes_by_uri(raw_run).items()
            if any(above <= s < below for _, _, s in bs) or not any(s >= above for _, _, s in bs)}
    assert 0 < len(want) < 13, "the band splits the fixture photos"
    main, review = load(out), load(out, "review")
    main_uris = {i["file_name"] for i in main["images"]}
    review_uris = {i["file_name"] for i in review["images"]}
    assert review_uris == want
    assert main_uris.isdisjoint(review_uris) and main_uris | review_uris == set(boxes_by_uri(raw_run))
    assert boxes_by_uri(review) == {u: b for u, b in boxes_by_uri(raw_run).items() if u in want}
    report = json.loads((out / "report.json").read_text())
    assert report["images"]["review"] == len(want)
    assert f"{len(want)} to review" in proc.stdout
    print(f"\nreview band [{above}, {below}): {len(review_uris)} to review, {len(main_uris)} in main")

    # Flag mode: every image stays in the main set, the uncertain ones flagged.
    text = path.read_text().replace(f"below: {below}}}", f"below: {below}, mode: Flag}}")
    flag = tmp_path / "flag.yaml"
    flag.write_text(text.replace(str(out), str(tmp_path / "out-flag")))
    run_labeljob(labeljob_bin, run_env, "run", flag)
    flagged = load(tmp_path / "out-flag")
    assert len(flagged["images"]) == 13
    assert {i["file_name"] for i in flagged["images"] if i.get("review")} == want


def make_copies(dst: Path):
    """The photos plus two byte copies, one JPEG re-encoded at quality 70, one resized to 60%."""
    dst.mkdir()
    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    for p in photos:
        shutil.copy(p, dst / p.name)
    jpgs = [p for p in photos if p.suffix.lower() in {".jpg", ".jpeg"} and "exif" not in p.name]
    a, b, c, d = jpgs[:4]
    shutil.copy(a, dst / f"zz-copy-{a.name}")
    shutil.copy(b, dst / f"zz-copy-{b.name}")
    Image.open(c).convert("RGB").save(dst / f"zz-reenc-{c.stem}.jpg", quality=70)
    im = Image.open(d).convert("RGB")
    im.resize((im.width * 6 // 10, im.height * 6 // 10), Image.LANCZOS).save(dst / f"zz-small-{d.stem}.jpg", quality=90)
    return {f"zz-copy-{a.name}": a.name, f"zz-copy-{b.name}": b.name}, \
        {f"zz-reenc-{c.stem}.jpg": c.name, f"zz-small-{d.stem}.jpg": d.name}


def imagehash_pairs(folder: Path, max_distance: int):
    """Pairs (copy, first) within max_distance by the imagehash package's dhash (formats venv)."""
    code = (
        "import sys, json, imagehash; from pathlib import Path; from PIL import Image, ImageOps\n"
        "fs = sorted(p for p in Path(sys.argv[1]).iterdir())\n"
        "h = [(p.name, imagehash.dhash(ImageOps.exif_transpose(Image.open(p)).convert('RGB'))) for p in fs]\n"
        "out = {}\n"
        "for i, (n, x) in enumerate(h):\n"
        "    near = [(x - y, m) for m, y in h[:i] if m not in out and x - y <= int(sys.argv[2])]\n"
        "    if near: out[n] = min(near)[1]\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([str(FORMATS_PY), "-c", code, str(folder), str(max_distance)],
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(proc.stdout)


def duplicates(out):
    lines = (out / "duplicates.jsonl").read_text().splitlines()
    return {Path(d["uri"]).name: Path(d["duplicateOf"]).name for d in map(json.loads, lines)}


@pytest.mark.parametrize("shards", [1, 3])
def test_duplicates_are_labelled_once(tmp_path, labeljob_bin, run_env, shards):
    inp = tmp_path / "in"
    exact, near = make_copies(inp)
    n = len(list(inp.iterdir()))
    runs = {}
    for mode in ["none", "exact", "perceptual"]:
        path, out = job(tmp_path, f"dedup-{mode}", inp, "", shards,
                        input_extra=f"    dedup: {{mode: {mode}, maxDistance: 6}}\n")
        run_labeljob(labeljob_bin, run_env, "run", path)
        runs[mode] = (load(out), json.loads((out / "report.json").read_text()), duplicates(out))
    none, exact_run, perc = runs["none"], runs["exact"], runs["perceptual"]
    assert none[2] == {} and none[1]["images"]["modelRuns"] == n
    assert exact_run[2] == exact, "exact mode finds exactly the byte copies"
    want_perceptual = imagehash_pairs(inp, 6)
    assert set(near) <= set(want_perceptual), f"imagehash itself pairs the re-encoded copies: {want_perceptual}"
    # The fixtures hold EXIF-rotated copies (dog-exif6.jpg shows dog.jpg upright): perceptual
    # copies too, found both by imagehash and by LabelJob.
    assert perc[2] == want_perceptual, (perc[2], want_perceptual)
    assert set(exact) | set(near) <= set(perc[2])
    print(f"\ndedup, {shards} shard(s), {n} images: model runs none/exact/perceptual = "
          f"{none[1]['images']['modelRuns']}/{exact_run[1]['images']['modelRuns']}/{perc[1]['images']['modelRuns']}; "
          f"exact copies {sorted(exact_run[2])}; perceptual {perc[2]}")
    # exact: a byte copy is never sent to the model, in its shard or another (claims);
    # perceptual: copies in other shards are inferred there and get their first copy's labels
    # at the merge, so the model runs once per unique image within a shard.
    assert exact_run[1]["images"]["modelRuns"] == n - len(exact)
    assert not (tmp_path / "out-dedup-exact" / "claims").exists(), "the merge removes the claims"
    if shards == 1:
        assert perc[1]["images"]["modelRuns"] == n - len(perc[2])
    base = {Path(u).name: b for u, b in boxes_by_uri(none[0]).items()}
    for got, copies in [(exact_run, exact), (perc, perc[2])]:
        labels = {Path(u).name: b for u, b in boxes_by_uri(got[0]).items()}
        sizes = {Path(i["file_name"]).name: (i["width"], i["height"]) for i in got[0]["images"]}
        for copy, first in copies.items():
            sx, sy = sizes[copy][0] / sizes[first][0], sizes[copy][1] / sizes[first][1]
            want = [(c, [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy], s) for c, b, s in base[first]]
            assert len(labels[copy]) == len(want), copy
            for (c1, b1, s1), (c2, b2, s2) in zip(labels[copy], want):
                assert c1 == c2 and s1 == s2 and all(abs(x - y) <= 0.02 for x, y in zip(b1, b2)), (copy, b1, b2)


def greedy_agnostic(boxes, iou_threshold):
    def iou(a, b):
        ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
        iw, ih = max(0, min(ax2, bx2) - max(a[0], b[0])), max(0, min(ay2, by2) - max(a[1], b[1]))
        inter = iw * ih
        union = a[2] * a[3] + b[2] * b[3] - inter
        return inter / union if union > 0 else 0
    kept = []
    for c, b, s in sorted(boxes, key=lambda x: -x[2]):
        if all(iou(b, k[1]) <= iou_threshold for k in kept):
            kept.append((c, b, s))
    return kept


def test_class_rules_change_exactly_what_they_say(tmp_path, labeljob_bin, run_env, raw_run):
    cats = {c["name"]: c["id"] for c in raw_run["categories"]}
    thresholds = {"person": 0.75, "dog": 0.31}
    th = {cats[k]: v for k, v in thresholds.items()}
    path, out = job(tmp_path, "rules", PHOTOS,
                    "  postprocess:\n    scoreThreshold: 0.5\n    classThresholds: {person: 0.75, dog: 0.31}\n")
    run_labeljob(labeljob_bin, run_env, "run", path)
    got = boxes_by_uri(load(out))
    want = {u: [b for b in bs if b[2] >= th.get(b[0], 0.5)] for u, bs in boxes_by_uri(raw_run).items()}
    assert got == want
    raw_n = sum(map(len, boxes_by_uri(raw_run).values()))
    assert sum(map(len, want.values())) != raw_n, "the rule removes boxes"
    print(f"\nclassThresholds: {raw_n} raw boxes → {sum(map(len, got.values()))}")

    path, out = job(tmp_path, "agnostic", PHOTOS,
                    "  postprocess:\n    scoreThreshold: 0.3\n    agnosticNms: true\n    iouThreshold: 0.5\n")
    run_labeljob(labeljob_bin, run_env, "run", path)
    got = boxes_by_uri(load(out))
    want = {u: greedy_agnostic(bs, 0.5) for u, bs in boxes_by_uri(raw_run).items()}
    assert got == want
    assert want != boxes_by_uri(raw_run), "two classes fire on one object in the fixtures"
    print(f"agnosticNms: {raw_n} raw boxes → {sum(map(len, got.values()))}")

    path, out = job(tmp_path, "classmap", PHOTOS,
                    "  postprocess:\n    scoreThreshold: 0.3\n    classMap: {cat: pet, dog: pet, person: human}\n")
    run_labeljob(labeljob_bin, run_env, "run", path)
    mapped = load(out)
    names = {c["id"]: c["name"] for c in mapped["categories"]}
    assert names[cats["cat"]] == "pet" and cats["dog"] not in names and names[1] == "human"
    remap = {cats["dog"]: cats["cat"]}
    want = {u: [(remap.get(c, c), b, s) for c, b, s in bs] for u, bs in boxes_by_uri(raw_run).items()}
    assert boxes_by_uri(mapped) == want


def test_unknown_class_names_are_refused_with_exit_2(tmp_path, labeljob_bin, run_env):
    path, out = job(tmp_path, "bad", PHOTOS, "  postprocess:\n    classThresholds: {persn: 0.5}\n    classMap: {doge: dog}\n")
    proc = run_labeljob(labeljob_bin, run_env, "run", path, check=False)
    assert proc.returncode == 2, proc.stderr
    assert '"persn" is not a class of this model' in proc.stderr and '"doge"' in proc.stderr
    assert not out.exists()


def test_a_claim_naming_another_image_is_ignored(tmp_path, labeljob_bin, run_env):
    """A duplicate claim in the output that does not name an image of this manifest by id and
    URI (left by hand, or by another tool) never stops an image from being labelled."""
    inp = tmp_path / "in"
    exact, _ = make_copies(inp)
    n = len(list(inp.iterdir()))
    path, out = job(tmp_path, "claims", inp, "", 3, input_extra="    dedup: {mode: exact}\n")
    run_labeljob(labeljob_bin, run_env, "run", path)
    digest = json.loads((out / "plan.json").read_text())["manifestDigest"]
    claims = out / "claims" / digest[:16]
    claims.mkdir(parents=True)
    for i, p in enumerate(sorted(inp.iterdir())):
        sha = hashlib.sha256(p.read_bytes()).hexdigest()
        claim = json.dumps({"id": 0, "uri": "file:///elsewhere/x.jpg"})
        # one of them far larger than any claim: refused unread (the image labelled all the same)
        (claims / sha).write_text(claim + " " * (1 << 20) if i == 0 else claim)
    path.write_text(path.read_text().replace("uri: \"file://" + str(out) + "\"",
                                             "uri: \"file://" + str(out) + "\"\n    overwrite: Replace"))
    run_labeljob(labeljob_bin, run_env, "run", path)
    report = json.loads((out / "report.json").read_text())
    # Every image labelled: a foreign claim costs a second model run, never the image; the
    # byte copies are still found (by hash, at the merge) and listed.
    assert report["images"]["labelled"] == n and report["images"]["modelRuns"] == n, report["images"]
    assert duplicates(out) == exact
    assert not (out / "claims").exists()


def test_exact_copies_across_shards_label_as_one_shard_does(tmp_path, labeljob_bin, run_env):
    """Many byte copies spread over shards (copies of claimed copies within a shard too): the
    same labels, the same duplicates.jsonl and the same model runs as one shard."""
    inp = tmp_path / "many"
    inp.mkdir()
    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix == ".jpg")[:6]
    for i in range(60):
        shutil.copyfile(photos[i % len(photos)], inp / f"img{i:03d}.jpg")
    got = {}
    for shards in (1, 5):
        path, out = job(tmp_path, f"copies-{shards}", inp, "", shards, input_extra="    dedup: {mode: exact}\n")
        run_labeljob(labeljob_bin, run_env, "run", path)
        report = json.loads((out / "report.json").read_text())["images"]
        got[shards] = (sorted(boxes_by_uri(load(out)).items()), duplicates(out), report["modelRuns"],
                       report["labelled"])
    assert got[5] == got[1]
    assert got[1][2] == len(photos) and got[1][3] == 60 and len(got[1][1]) == 60 - len(photos)


def test_a_claim_from_its_own_shard_never_leaves_copies_unlabelled(tmp_path, labeljob_bin, run_env):
    """An earlier attempt of a shard may have claimed a content through its second copy (the
    first failed then): the retry sees its own shard's claim, labels the first copy and copies
    it to the second, instead of two copies each waiting on the other."""
    inp = tmp_path / "in"
    inp.mkdir()
    a, b, c = sorted(p for p in PHOTOS.iterdir() if p.suffix == ".jpg")[:3]
    for name, src in [("x0.jpg", a), ("x1.jpg", a), ("x2.jpg", b), ("x3.jpg", c)]:
        shutil.copyfile(src, inp / name)
    path, out = job(tmp_path, "own-claim", inp, "", 2, input_extra="    dedup: {mode: exact}\n")
    run_labeljob(labeljob_bin, run_env, "run", path)
    want = boxes_by_uri(load(out))
    digest = json.loads((out / "plan.json").read_text())["manifestDigest"]
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    second = next(e for e in manifest if e["uri"].endswith("/x1.jpg"))
    claims = out / "claims" / digest[:16]
    claims.mkdir(parents=True)
    sha = hashlib.sha256(a.read_bytes()).hexdigest()
    (claims / sha).write_text(json.dumps({"id": second["id"], "uri": second["uri"]}))
    path.write_text(path.read_text().replace("uri: \"file://" + str(out) + "\"",
                                             "uri: \"file://" + str(out) + "\"\n    overwrite: Replace"))
    run_labeljob(labeljob_bin, run_env, "run", path)
    report = json.loads((out / "report.json").read_text())["images"]
    assert (report["labelled"], report["modelRuns"]) == (4, 3), report
    assert duplicates(out) == {"x1.jpg": "x0.jpg"}
    got = boxes_by_uri(load(out))
    assert got == want and got[f"file://{inp}/x0.jpg"], "the copies have the first copy's labels"


def test_a_claim_that_cannot_give_labels_fails_its_copy_by_name(tmp_path, labeljob_bin, run_env):
    """A claim (changed by hand) naming an image of another shard that failed, or whose bytes
    differ: the copy is not silently given no labels or another image's labels, it fails with
    a reason naming the claimed image."""
    inp = tmp_path / "in"
    inp.mkdir()
    a, b, c = sorted(p for p in PHOTOS.iterdir() if p.suffix == ".jpg")[:3]
    shutil.copyfile(a, inp / "a0.jpg")
    (inp / "a1-bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    shutil.copyfile(b, inp / "b0.jpg")
    shutil.copyfile(c, inp / "b1.jpg")
    path, out = job(tmp_path, "bad-claims", inp, "", 2, input_extra="    dedup: {mode: exact}\n")
    run_labeljob(labeljob_bin, run_env, "run", path, check=False)  # a1-bad.jpg may spend the error budget
    digest = json.loads((out / "plan.json").read_text())["manifestDigest"]
    entry = {Path(e["uri"]).name: e for e in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}
    claims = out / "claims" / digest[:16]
    claims.mkdir(parents=True)
    for copy, named in [(b, "a1-bad.jpg"), (c, "a0.jpg")]:
        e = entry[named]
        (claims / hashlib.sha256(copy.read_bytes()).hexdigest()).write_text(json.dumps({"id": e["id"], "uri": e["uri"]}))
    path.write_text(path.read_text().replace("uri: \"file://" + str(out) + "\"",
                                             "uri: \"file://" + str(out) + "\"\n    overwrite: Replace"))
    run_labeljob(labeljob_bin, run_env, "run", path, check=False)
    errors = {Path(e["uri"]).name: e for e in map(json.loads, (out / "errors.jsonl").read_text().splitlines())}
    assert errors["b0.jpg"]["kind"] == "first-copy-failed", errors
    assert errors["b0.jpg"]["reason"].endswith("a1-bad.jpg, which could not be labelled"), errors["b0.jpg"]
    assert errors["b1.jpg"]["reason"].endswith("a0.jpg, whose content differs: its claim is not this image's")
    assert [Path(i["file_name"]).name for i in load(out)["images"]] == ["a0.jpg"]
