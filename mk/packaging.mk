# Packaging targets (Helm chart, container images, kind end-to-end tests).
# Included by the main Makefile; every variable can be overridden on the command line.
#
#   make helm-lint     helm lint --strict (Helm's own linter, via helm-sdkpy) + render checks
#   make test-chart    pytest tests/python/test_chart.py (also part of `make test`)
#   make chart-crd     copy crds/labeljob.yaml into the chart (part of `make generate`)
#   make images        build the operator, worker and worker-cuda images (Docker or podman)
#   make images-test   run the built images as the cluster does (tests/images)
#   make e2e           kind end-to-end tests (Docker, kind, kubectl, helm, curl)

PKG_VENV_PY      ?= .venv/bin/python
IMAGE_TAG        ?= 0.1.0
OPERATOR_IMAGE   ?= ghcr.io/labeljob/labeljob-operator
WORKER_IMAGE     ?= ghcr.io/labeljob/labeljob-worker
CHART            ?= charts/labeljob
# Also render the chart with every optional part switched on.
HELM_LINT_VALUES ?= {"watchNamespace":"labeljob-jobs","workerNamespaces":["labeljob-jobs","team-b"],"metrics":{"serviceMonitor":{"enabled":true},"inferencePodMonitor":{"enabled":true}},"dashboard":{"enabled":true},"operator":{"replicas":2}}

.PHONY: pkg-venv helm-lint test-chart chart-crd images image-operator image-worker image-worker-cuda images-test e2e

pkg-venv:
	@scripts/setup-venv.sh >/dev/null

helm-lint: pkg-venv ## helm lint --strict (Helm SDK) + the chart CRD equals crds/
	@cmp -s crds/labeljob.yaml $(CHART)/crds/labeljob.yaml || \
		{ echo "$(CHART)/crds/labeljob.yaml differs from crds/labeljob.yaml: run 'make chart-crd'"; exit 1; }
	$(PKG_VENV_PY) charts/tools/helmsdk.py lint $(CHART) --set-json '$(HELM_LINT_VALUES)'

test-chart: pkg-venv
	$(PKG_VENV_PY) -m pytest -q tests/python/test_chart.py

chart-crd:
	cp crds/labeljob.yaml $(CHART)/crds/labeljob.yaml

# scripts/images.sh picks the builder (Docker when its daemon answers, else podman) and, under
# podman without a registry, makes local stand-ins for the base images first.
IMAGES_ENV = IMAGE_TAG=$(IMAGE_TAG) OPERATOR_IMAGE=$(OPERATOR_IMAGE) WORKER_IMAGE=$(WORKER_IMAGE)

images: ## Build the operator, worker and worker-cuda images (Docker or podman; local bases when offline)
	scripts/install-system-deps.sh --images
	$(IMAGES_ENV) scripts/images.sh build operator worker worker-cuda

image-operator image-worker image-worker-cuda: image-%:
	scripts/install-system-deps.sh --images
	$(IMAGES_ENV) scripts/images.sh build $*

images-test: pkg-venv ## Run the built images: operator crd, worker run (read-only, no network) = host run, serve
	$(IMAGES_ENV) $(PKG_VENV_PY) -m pytest -q -s tests/images
	@$(IMAGES_ENV) scripts/images.sh sizes

# KIND_CLUSTER=<name> reuses a cluster; LABELJOB_E2E_SKIP_BUILD=1 skips the image builds.
e2e: ## kind end-to-end tests (needs Docker, kind, kubectl, helm)
	cargo test -p labeljob-e2e --features kind -- --ignored --test-threads=1
