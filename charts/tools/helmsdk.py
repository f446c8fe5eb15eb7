"""Lint and render the LabelJob Helm chart with helm-sdkpy (Helm v4's Go library via cffi).

helm-sdkpy has no `helm template`; it has `Lint(config).run(path)` and
`Install(config).run(release, path, values, ...)`. So:

- lint: `Lint.run` gives every message with a severity (1 info, 2 warning, 3 error) and the
  chart-relative path; `--strict` semantics (as `helm lint --strict`) = fail on any warning or
  error. The shim serialises each Go error as `{}`, so the text of a message is lost; when lint
  fails, `render` of the same chart is run to surface the real error message.
- render: install into a `RecordingApiServer` (an in-memory apiserver on 127.0.0.1, see
  recording_apiserver.py) with `wait=False`. Helm validates the values against
  values.schema.json, renders every template and POSTs the objects; the release it returns
  carries the rendered `manifest`. CRDs from `crds/` are POSTed too (not in `manifest`).

CLI (used by `make helm-lint`):
    python charts/tools/helmsdk.py lint charts/labeljob
    python charts/tools/helmsdk.py render charts/labeljob [--set-json '{"watchNamespace":"x"}']
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recording_apiserver import RecordingApiServer  # noqa: E402

SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}
WARNING = 2


def _helm():
    # helm-sdkpy writes its cache/config under $HOME; keep it out of the user's home when
    # HOME is unwritable (CI containers).
    home = Path(os.environ.get("HOME") or "/tmp")
    if not os.access(home, os.W_OK):
        os.environ["HOME"] = "/tmp"
    import helm_sdkpy

    return helm_sdkpy


@dataclass
class LintResult:
    """What `helm lint` found; `ok` is the --strict verdict (no warning, no error)."""

    messages: list[tuple[str, str]] = field(default_factory=list)  # (severity, path)
    charts_linted: int = 0

    @property
    def problems(self) -> list[tuple[str, str]]:
        return [m for m in self.messages if m[0] in ("WARNING", "ERROR", "UNKNOWN")]

    @property
    def ok(self) -> bool:
        return self.charts_linted > 0 and not self.problems


def lint(chart: str | Path) -> LintResult:
    """Run Helm's linter on `chart` (default values) and collect its messages."""
    helm = _helm()
    cfg = helm.Configuration(namespace="default")
    raw = asyncio.run(helm.Lint(cfg).run(str(chart)))
    res = LintResult(charts_linted=int(raw.get("TotalChartsLinted") or 0))
    for m in raw.get("Messages") or []:
        res.messages.append((SEVERITY.get(int(m.get("Severity", 0)), "UNKNOWN"), str(m.get("Path"))))
    # Errors holds the messages at or above the shim's tolerance; count them even when the
    # message list is somehow empty.
    if raw.get("Errors") and not res.problems:
        res.messages.append(("ERROR", "(lint errors without messages)"))
    return res


@dataclass
class Rendered:
    """One rendering of the chart."""

    manifest: str  # the rendered templates, as `helm template` prints them
    objects: list[dict]  # manifest documents, parsed
    crds: list[dict]  # CRDs Helm installed from crds/
    notes: str

    def find(self, kind: str, name: str | None = None) -> list[dict]:
        return [o for o in self.objects
                if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)]

    def one(self, kind: str, name: str | None = None) -> dict:
        found = self.find(kind, name)
        if len(found) != 1:
            raise LookupError(f"expected one {kind} {name or ''}, found {len(found)}")
        return found[0]


def render(chart: str | Path, values: dict | None = None, *, release: str = "labeljob",
           namespace: str = "labeljob-system") -> Rendered:
    """Render `chart` with `values` (merged over values.yaml by Helm, schema-checked)."""
    helm = _helm()
    with RecordingApiServer() as api:
        cfg = helm.Configuration(namespace=namespace, kubeconfig=api.kubeconfig(namespace))
        rel = asyncio.run(helm.Install(cfg).run(
            release, str(chart), values=values or None, wait=False, timeout=60))
        crds = [o for o in api.created if o.get("kind") == "CustomResourceDefinition"]
    manifest = rel.get("manifest") or ""
    objects = [d for d in yaml.safe_load_all(manifest) if d]
    notes = ((rel.get("info") or {}).get("notes")) or ""
    return Rendered(manifest=manifest, objects=objects, crds=crds, notes=notes)


def _main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_lint = sub.add_parser("lint", help="helm lint --strict, then render with each --set-json")
    p_lint.add_argument("chart")
    p_lint.add_argument("--set-json", action="append", default=[],
                        help="also render with these values (JSON object); repeatable")
    p_render = sub.add_parser("render", help="print the rendered manifest")
    p_render.add_argument("chart")
    p_render.add_argument("--set-json", default="{}", help="values as a JSON object")
    args = ap.parse_args()

    if args.cmd == "render":
        print(render(args.chart, json.loads(args.set_json)).manifest, end="")
        return 0

    res = lint(args.chart)
    for sev, path in res.messages:
        print(f"[{sev}] {path}")
    print(f"{res.charts_linted} chart(s) linted, {len(res.problems)} warning(s)/error(s)")
    failed = not res.ok
    for vals in [{}] + [json.loads(v) for v in args.set_json]:
        try:
            r = render(args.chart, vals)
            print(f"render {json.dumps(vals)}: {len(r.objects)} objects, {len(r.crds)} CRD(s)")
        except Exception as e:  # helm-sdkpy raises HelmError subclasses with Helm's message
            print(f"render {json.dumps(vals)} FAILED: {e}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(_main())
