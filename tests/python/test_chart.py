"""Checks of the Helm chart charts/labeljob, rendered by Helm itself through helm-sdkpy
(charts/tools/helmsdk.py: lint, and install into an in-memory recording apiserver).

The operator's RBAC rules are compared with `labeljob-operator rbac` (the JSON the operator
prints from `labeljob_operator::rbac::RULES`, the one source; `$LABELJOB_OPERATOR_BIN`, else
the release build): there is no second copy of the rules to fall back on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "labeljob"
sys.path.insert(0, str(ROOT / "charts" / "tools"))
import helmsdk  # noqa: E402

RELEASE, NAMESPACE = "lj", "labeljob-system"
OPERATOR = f"{RELEASE}-operator"
WORKER_SA = "labeljob-worker"

# Every environment variable the operator reads (operator/src/args.rs, plus RUST_LOG and
# POD_NAMESPACE in operator/src/runtime.rs).
OPERATOR_ENV = {
    "LABELJOB_WORKER_IMAGE", "LABELJOB_WORKER_IMAGE_PULL_POLICY", "LABELJOB_WORKER_SERVICE_ACCOUNT",
    "LABELJOB_ADMIN_ADDR", "LABELJOB_LOG_FORMAT", "LABELJOB_NAMESPACE", "LABELJOB_LEADER_ELECTION",
    "LABELJOB_LEASE_NAME", "LABELJOB_LEASE_NAMESPACE", "LABELJOB_LEASE_DURATION_SECONDS",
    "POD_NAME", "POD_NAMESPACE", "RUST_LOG",
}

ALL_ON = {
    "watchNamespace": "team-a",
    "workerNamespaces": ["team-a", "team-b"],
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}},
                "inferencePodMonitor": {"enabled": True}},
    "dashboard": {"enabled": True},
}


def permissions(rules: list[dict]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs, however the rules are grouped."""
    out: dict[tuple[str, str], set[str]] = {}
    for r in rules:
        assert set(r) <= {"apiGroups", "resources", "verbs"}, f"unexpected keys in {r}"
        for g in r["apiGroups"]:
            for res in r["resources"]:
                out.setdefault((g, res), set()).update(r["verbs"])
    return out


def expected_permissions() -> dict[tuple[str, str], set[str]]:
    binary = Path(os.environ.get("LABELJOB_OPERATOR_BIN") or ROOT / "target" / "release" / "labeljob-operator")
    assert binary.is_file(), f"{binary} is missing: build it first (make build)"
    out = subprocess.run([str(binary), "rbac"], check=True, capture_output=True, text=True, timeout=60)
    return permissions(json.loads(out.stdout))


@pytest.fixture(scope="module")
def default() -> helmsdk.Rendered:
    return helmsdk.render(CHART, {}, release=RELEASE, namespace=NAMESPACE)


@pytest.fixture(scope="module")
def all_on() -> helmsdk.Rendered:
    return helmsdk.render(CHART, ALL_ON, release=RELEASE, namespace=NAMESPACE)


def test_lint_strict_has_no_warnings_or_errors():
    res = helmsdk.lint(CHART)
    assert res.charts_linted == 1
    assert res.ok, f"helm lint --strict: {res.problems}"


def test_lint_catches_a_broken_template(tmp_path):
    broken = tmp_path / "labeljob"
    shutil.copytree(CHART, broken)
    (broken / "templates" / "broken.yaml").write_text("kind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }-x\n")
    res = helmsdk.lint(broken)
    assert not res.ok
    assert ("ERROR", "templates/") in res.messages


def test_values_schema_refuses_unknown_and_mistyped_values():
    for bad in ({"replicas": 2}, {"operator": {"replicas": "two"}}, {"watchNamespace": "Not_A_Namespace"},
                {"operator": {"image": {"pullPolicy": "Sometimes"}}}, {"inference": {"nodeSelector": {}}}):
        with pytest.raises(helmsdk._helm().HelmError, match="schema"):
            helmsdk.render(CHART, bad)


def test_cluster_role_has_exactly_the_operator_rules(default):
    role = default.one("ClusterRole", OPERATOR)
    rules = role["rules"]
    for r in rules:
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in r[key], f"wildcard in {r}"
    assert permissions(rules) == expected_permissions()
    assert not default.find("Role")
    binding = default.one("ClusterRoleBinding", OPERATOR)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": OPERATOR}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": OPERATOR, "namespace": NAMESPACE}]


def test_watch_namespace_uses_a_role_with_the_same_rules(all_on):
    assert not all_on.find("ClusterRole") and not all_on.find("ClusterRoleBinding")
    role = all_on.one("Role", OPERATOR)
    assert role["metadata"]["namespace"] == "team-a"
    assert permissions(role["rules"]) == expected_permissions()
    binding = all_on.one("RoleBinding", OPERATOR)
    assert binding["metadata"]["namespace"] == "team-a"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": OPERATOR, "namespace": NAMESPACE}]
    env = container_env(all_on)
    assert env["LABELJOB_NAMESPACE"] == "team-a" and env["LABELJOB_LEASE_NAMESPACE"] == "team-a"


@pytest.mark.parametrize("which", ["default", "all_on"])
def test_worker_service_account_has_no_token_and_no_binding(which, request):
    r: helmsdk.Rendered = request.getfixturevalue(which)
    sas = r.find("ServiceAccount", WORKER_SA)
    want_ns = [NAMESPACE] if which == "default" else ["team-a", "team-b"]
    assert sorted(sa["metadata"]["namespace"] for sa in sas) == want_ns
    for sa in sas:
        assert sa["automountServiceAccountToken"] is False
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        for b in r.find(kind):
            names = [s.get("name") for s in b.get("subjects") or []]
            assert WORKER_SA not in names, f"{kind} {b['metadata']['name']} binds {WORKER_SA}"
    operator_sa = r.one("ServiceAccount", OPERATOR)
    assert operator_sa["metadata"]["namespace"] == NAMESPACE


def deployment(r: helmsdk.Rendered) -> dict:
    return r.one("Deployment", OPERATOR)


def container_env(r: helmsdk.Rendered) -> dict:
    (c,) = deployment(r)["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def test_operator_deployment_is_locked_down(default):
    d = deployment(default)
    assert d["spec"]["replicas"] == 1
    pod = d["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == OPERATOR
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert {"name": "admin", "containerPort": 8080, "protocol": "TCP"} in c["ports"]


def test_operator_environment(default):
    env = container_env(default)
    assert env["LABELJOB_WORKER_IMAGE"] == "ghcr.io/labeljob/labeljob-worker:0.1.0"
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["LABELJOB_WORKER_SERVICE_ACCOUNT"] == WORKER_SA
    assert "LABELJOB_NAMESPACE" not in env
    assert set(env) <= OPERATOR_ENV, f"env vars the operator does not read: {set(env) - OPERATOR_ENV}"


def test_values_reach_the_deployment():
    r = helmsdk.render(CHART, {
        "operator": {"replicas": 2, "image": {"tag": "dev"}},
        "worker": {"image": {"repository": "registry.local/worker", "tag": "e2e", "pullPolicy": "Never"}},
    })
    d = r.one("Deployment", "labeljob-operator")
    assert d["spec"]["replicas"] == 2
    (c,) = d["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "ghcr.io/labeljob/labeljob-operator:dev"
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["LABELJOB_WORKER_IMAGE"] == "registry.local/worker:e2e"
    assert env["LABELJOB_WORKER_IMAGE_PULL_POLICY"] == "Never"


def test_metrics_service_selects_the_operator(default, all_on):
    assert not default.find("ServiceMonitor") and not default.find("ConfigMap")
    svc = default.one("Service", f"{OPERATOR}-metrics")
    pod_labels = deployment(default)["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert svc["spec"]["ports"][0]["targetPort"] == "admin"
    sm = all_on.one("ServiceMonitor", OPERATOR)
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["spec"]["endpoints"][0]["port"] == "http-metrics"
    assert sm["spec"]["selector"]["matchLabels"].items() <= all_on.one("Service")["metadata"]["labels"].items()
    pm = all_on.one("PodMonitor")
    assert pm["spec"]["namespaceSelector"] == {"matchNames": ["team-a"]}


def test_dashboard_configmap_has_the_panels(all_on):
    cm = all_on.one("ConfigMap", f"{OPERATOR}-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["labeljob.json"])
    exprs = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in dash["panels"]}
    assert "labeljob_operator_jobs" in exprs["LabelJobs by phase"]
    assert "labeljob_server_batch_size_sum" in exprs["Images per second"]
    assert "labeljob_server_requests_total" in exprs["Failures"]
    assert "labeljob_server_queue_depth" in exprs["Inference queue depth"]
    assert "labeljob_server_batch_size_bucket" in exprs["Batch size"]
    assert "histogram_quantile(0.95" in exprs["Inference latency p95"]
    assert "labeljob_server_inference_duration_seconds_bucket" in exprs["Inference latency p95"]
    # The operator under controller-runtime's and client-go's names (operator/src/metrics.rs).
    assert "controller_runtime_reconcile_total" in exprs["Reconciles by result"]
    assert "controller_runtime_reconcile_errors_total" in exprs["Reconciles by result"]
    assert "controller_runtime_reconcile_time_seconds_bucket" in exprs["Reconcile time"]
    assert "workqueue_depth" in exprs["Work queue"]
    assert "rest_client_requests_total" in exprs["API requests by verb"]
    assert "by (verb, code)" in exprs["API requests by verb"]
    operator_metrics = (ROOT / "operator" / "src" / "metrics.rs").read_text()
    for name in ("labeljob_operator_reconcile_duration", "labeljob_operator_reconciles_total"):
        assert name not in " ".join(exprs.values()), f"{name} is no longer exported"
    assert "controller_runtime_reconcile_time" in operator_metrics


def test_crd_ships_in_crds_dir_and_matches_generated(default):
    assert not default.find("CustomResourceDefinition"), "CRD must not be a template"
    (crd,) = default.crds
    assert crd["metadata"]["name"] == "labeljobs.labeljob.dev"
    assert (CHART / "crds" / "labeljob.yaml").read_text() == (ROOT / "crds" / "labeljob.yaml").read_text()
    assert yaml.safe_load((ROOT / "crds" / "labeljob.yaml").read_text())["spec"] == crd["spec"]


def test_notes_name_the_namespaces(all_on):
    assert "team-a, team-b" in all_on.notes
    assert "namespace team-a" in all_on.notes
