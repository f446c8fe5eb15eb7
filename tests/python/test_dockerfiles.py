"""The three Dockerfiles agree with each other, with the build scripts and with the chart, so that
the image that cannot be built here (worker-cuda: its nvidia/cuda base cannot be made from
Debian packages) gets what the CPU image, which CI builds and runs (`make images images-test`),
is proven to need."""

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
FILES = ["operator.Dockerfile", "worker.Dockerfile", "worker-cuda.Dockerfile"]


def stages(name: str) -> dict:
    """Stage name (or 'final') -> its instructions, continuation lines joined, ARGs before the
    first FROM under 'args'."""
    text = re.sub(r"\\\n", " ", (DOCKER / name).read_text())
    out, current = {"args": []}, "args"
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            current = m.group(2) or "final"
            out[current] = [line]
        else:
            out[current].append(line)
    return out


def instructions(stage, keyword):
    return [line for line in stage if line.split()[0].upper() == keyword]


def build_cmd(stage):
    (run,) = [line for line in instructions(stage, "RUN") if "cargo build" in line]
    return re.sub(r"\s+", " ", run[run.index("cargo build"):])


def test_cuda_builder_installs_what_the_cpu_builder_needs():
    cpu, cuda = stages("worker.Dockerfile")["builder"], stages("worker-cuda.Dockerfile")["builder"]
    # Both run the one list of build tools (cmake, nasm, pkg-config), before compiling.
    for stage in (cpu, cuda):
        text = "\n".join(stage)
        assert "COPY scripts/install-system-deps.sh" in text
        assert re.search(r"RUN apt-get update\s+&& scripts/install-system-deps.sh\s", text), text
        assert text.index("&& scripts/install-system-deps.sh") < text.index("cargo build")
    assert instructions(cpu, "FROM") == instructions(cuda, "FROM")
    assert [line for line in instructions(cpu, "RUN") if "cargo build" not in line] == [
        line for line in instructions(cuda, "RUN") if "cargo build" not in line
    ]
    assert build_cmd(cuda) == build_cmd(cpu).replace("--bin labeljob", "--bin labeljob --features cuda")


def test_build_tools_are_the_hosts():
    script = (REPO / "scripts/install-system-deps.sh").read_text()
    assert re.search(r'^\s*""\) install_missing cmake nasm pkg-config ;;', script, re.M)


def test_ort_comes_from_the_wheel_script():
    for name, extra in (("worker.Dockerfile", ""), ("worker-cuda.Dockerfile", "ORT_PACKAGE=onnxruntime-gpu")):
        ort = "\n".join(stages(name)["ort"])
        assert "scripts/fetch-ort.sh" in ort and extra in ort
        assert "<<" not in ort, "buildah 1.28 runs no heredoc RUN steps: keep such logic in scripts"


@pytest.mark.parametrize("name", FILES)
def test_final_stage_is_non_root_with_the_expected_entrypoint(name):
    s = stages(name)
    final = s["final"]
    assert instructions(final, "USER") == ["USER 65532:65532"]
    (entry,) = instructions(final, "ENTRYPOINT")
    want = "labeljob-operator" if name.startswith("operator") else "labeljob"
    assert entry == f'ENTRYPOINT ["/usr/local/bin/{want}"]'
    text = "\n".join(final)
    assert "libturbojpeg" not in text, "libjpeg-turbo is linked statically"
    assert "host-ca" not in text and "ca-certificates.crt /usr/local/share" not in text
    for line in (DOCKER / name).read_text().splitlines():
        assert not re.match(r"\s*RUN\s.*<<", line), f"heredoc RUN in {name}: {line}"


@pytest.mark.parametrize("name", FILES)
def test_bases_are_pinned_by_tag(name):
    s = stages(name)
    args = dict(a.split(None, 1)[1].split("=", 1) for a in s["args"] if a.upper().startswith("ARG") and "=" in a)
    for stage in s.values():
        for line in instructions(stage, "FROM"):
            image = line.split()[1]
            image = args.get(image.strip("${}"), image)
            if image == "scratch":
                continue
            repo, _, tag = image.partition(":")
            assert tag and tag != "latest", f"{name}: {image} is not pinned by tag"


def test_chart_runs_the_image_entrypoints():
    # The operator container sets no command (the image's ENTRYPOINT runs); the worker pods the
    # operator builds run `labeljob` from PATH (operator/src/controller/build.rs).
    deploy = (REPO / "charts/labeljob/templates/deployment.yaml").read_text()
    assert "command:" not in deploy
    build = (REPO / "operator/src/controller/build.rs").read_text()
    assert 'command: Some(vec!["labeljob".into()])' in build
    values = yaml.safe_load((REPO / "charts/labeljob/values.yaml").read_text())
    assert values["operator"]["image"]["repository"].endswith("labeljob-operator")
    assert values["worker"]["image"]["repository"].endswith("labeljob-worker")
