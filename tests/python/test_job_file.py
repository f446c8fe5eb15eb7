"""Bad LabelJob files are refused by `labeljob run` before anything is created, with the field path,
the reason printed once, and exit code 2 (issue: hardening, cases 4, 5 and 7): the same schema,
with the same limits, as the CRD the apiserver checks."""

import json
import shutil

import pytest

from conftest import PHOTOS, run_measured, write_job

EXIT_INVALID = 2


@pytest.mark.parametrize(
    "extra, want",
    [
        ("  postprocess:\n    scoreTreshold: 0.99\n",
         'spec.postprocess.scoreTreshold: unknown field (did you mean "scoreThreshold"?)'),
        ("  maxFailedFractoin: 0\n", 'spec.maxFailedFractoin: unknown field (did you mean "maxFailedFraction"?)'),
        ("  workers:\n    shards: 4294967295\n", "spec.workers.shards: 4294967295 is above the maximum"),
        ("  workers:\n    concurrency: 100000\n", "spec.workers.concurrency: 100000 is above the maximum"),
        ("  model:\n    builtin: ssd-mobilenet-v2-coco\n    resize: squash\n", 'spec.model.resize: "squash" is not one of'),
    ],
)
def test_refused_with_the_field_path(tmp_path, labeljob_bin, run_env, extra, want):
    text = write_job(tmp_path / "job.yaml", "bad", f"file://{PHOTOS}", f"file://{tmp_path}/out", extra).read_text()
    if "  model:\n    builtin" in extra:  # replace the default model block
        text = text.replace("  model:\n    builtin: ssd-mobilenet-v2-coco\n", "", 1)
    job = tmp_path / "job.yaml"
    job.write_text(text)
    code, out, err, _ = run_measured(labeljob_bin, run_env, "run", job, "--no-progress")
    assert code == EXIT_INVALID, (code, out, err)
    assert want in err, err
    assert err.count(want) == 1, f"the reason is printed once:\n{err}"
    assert not (tmp_path / "out").exists(), "nothing is created for a refused job"


@pytest.mark.parametrize(
    "input_uri, model, extra, want",
    [
        (f"file://{PHOTOS}", "yolo-v99", "", '"yolo-v99"'),
        (f"file://{PHOTOS}", "ssd-mobilenet-v2-coco", "", "invalid storage URI"),
        (f"file://{PHOTOS}", "ssd-mobilenet-v2-coco", "  workers:\n    shards: 2\n", "glob"),
    ],
    ids=["unknown-builtin", "bucketless-output", "bad-glob"],
)
def test_jobs_that_cannot_exist_exit_2(tmp_path, labeljob_bin, run_env, input_uri, model, extra, want):
    out = "s3:///x" if want == "invalid storage URI" else f"file://{tmp_path}/out"
    job = write_job(tmp_path / "job.yaml", "bad", input_uri, out, extra)
    text = job.read_text().replace("builtin: ssd-mobilenet-v2-coco", f"builtin: {model}")
    if want == "glob":
        text = text.replace(f'    uri: "{input_uri}"\n', f'    uri: "{input_uri}"\n    include: ["a[b"]\n')
    job.write_text(text)
    code, out_, err, _ = run_measured(labeljob_bin, run_env, "run", job, "--no-progress")
    assert code == EXIT_INVALID, (code, out_, err)
    assert want in err, err
    assert not (tmp_path / "out").exists()


def test_oversized_job_file_is_refused_without_reading_it_whole(tmp_path, labeljob_bin, run_env):
    # 48 MB of include globs: once cost 17 GB of RSS; now refused at the document size limit.
    job = write_job(tmp_path / "job.yaml", "huge", f"file://{PHOTOS}", f"file://{tmp_path}/out")
    with job.open("a") as f:
        f.write("  input:\n    include:\n")
        line = "      - '**/prefix-that-matches-nothing-*.jpg'\n"
        f.write(line * (48_000_000 // len(line)))
    code, out, err, rss_kib = run_measured(labeljob_bin, run_env, "run", job, "--no-progress")
    assert code == EXIT_INVALID, (code, out, err[-2000:])
    assert "more than the 1572864 bytes a LabelJob may have" in err, err[-2000:]
    assert rss_kib < 64 * 1024, f"peak RSS {rss_kib} KiB"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("layout", ["empty-dir", "no-matching-keys"])
def test_an_input_without_images_exits_2_after_planning(tmp_path, labeljob_bin, run_env, layout):
    # Issue "operator at cluster scale" item 6: no more `Succeeded 0/0` after starting every stage.
    src = tmp_path / "in"
    src.mkdir()
    if layout == "no-matching-keys":
        (src / "notes.txt").write_text("not an image\n")
    job = write_job(tmp_path / "job.yaml", "empty", f"file://{src}", f"file://{tmp_path}/out")
    code, out, err, _ = run_measured(labeljob_bin, run_env, "run", job, "--no-progress")
    assert code == EXIT_INVALID, (code, out, err)
    assert f"the input file://{src}" in err and "lists no images" in err, err
    assert not (tmp_path / "out" / "annotations.json").exists(), "no merge ran"
    assert not (tmp_path / "out" / "shards").exists(), "no shard ran"


def test_more_shards_than_images_run_one_shard_per_image(tmp_path, labeljob_bin, run_env):
    # Case 7: `shards: 100000` on 5 images ran 100000 shards for minutes. The schema caps
    # workers.shards at 10000, and a job never runs more shards than it has images.
    src = tmp_path / "in"
    src.mkdir()
    names = ["dog.jpg", "eagle.jpg", "chelsea.png"]
    for name in names:
        shutil.copyfile(PHOTOS / name, src / name)
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.yaml", "many-shards", f"file://{src}", f"file://{out}",
                    "  workers:\n    shards: 10000\n")
    code, stdout, err, _ = run_measured(labeljob_bin, run_env, "run", job, "--no-progress")
    assert code == 0, (code, stdout, err)
    assert "labelled 3 of 3" in stdout, stdout
    assert "shards: 3 run, 0 reused (workers.shards 10000: at most one shard per image)" in stdout, stdout
    assert sorted(p.name for p in (out / "shards").iterdir()) == [f"shard-{i:05d}.json" for i in range(3)]
    assert json.loads((out / "plan.json").read_text())["shards"] == 3
    assert len(json.loads((out / "annotations.json").read_text())["images"]) == 3

    # In a cluster the Indexed Job still has workers.shards pods: those beyond the images
    # succeed at once, write nothing and load no model; an index beyond workers.shards fails.
    code, stdout, err, _ = run_measured(labeljob_bin, run_env, "shard", "--job", job, "--index", 9999)
    assert code == 0, (code, stdout, err)
    assert "shard 9999: nothing to do (3 images in 3 shards)" in stdout, stdout
    assert len(list((out / "shards").iterdir())) == 3
    code, stdout, err, _ = run_measured(labeljob_bin, run_env, "shard", "--job", job, "--index", 10000)
    assert code == 1 and "shard index 10000 is out of range" in err, (code, stdout, err)
    code, stdout, err, _ = run_measured(labeljob_bin, run_env, "merge", "--job", job)
    assert code == 0 and "labelled 3 of 3" in stdout, (code, stdout, err)
