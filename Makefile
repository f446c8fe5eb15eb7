# LabelJob tasks. `make demo` and `make test` do all of their own set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ORT_LIB := $(CURDIR)/.cache/ort/lib/libonnxruntime.so
VENV_PY := $(CURDIR)/.venv/bin/python
BIN := $(CURDIR)/target/release/labeljob
OPERATOR_BIN := $(CURDIR)/target/release/labeljob-operator
export ORT_DYLIB_PATH := $(ORT_LIB)
export LABELJOB_MODELS_DIR := $(CURDIR)/models
export LABELJOB_BIN := $(BIN)
export LABELJOB_OPERATOR_BIN := $(OPERATOR_BIN)

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: system-deps
system-deps: ## Debian packages needed to build (cmake, nasm for libjpeg-turbo)
	scripts/install-system-deps.sh

.PHONY: test-deps
test-deps: ## Debian packages needed by the tests (+ Ceph RADOS Gateway), Azurite, fake-gcs-server, venv, ORT
	scripts/install-system-deps.sh --test
	scripts/az-server.sh install
	scripts/gcs-server.sh install
	scripts/setup-venv.sh >/dev/null
	scripts/fetch-ort.sh >/dev/null

$(ORT_LIB):
	scripts/fetch-ort.sh >/dev/null

.PHONY: ort
ort: $(ORT_LIB) ## Fetch libonnxruntime from the PyPI onnxruntime wheel into .cache/ort

.PHONY: build
build: system-deps ## Release build of every binary
	cargo build --release --workspace --bins

.PHONY: demo
demo: build ort ## Label the fixture photos: out/demo/{annotations,results,report}.json + preview.png
	$(BIN) run config/samples/labeljob-local.yaml
	$(BIN) preview out/demo/annotations.json --out out/demo/preview.png
	@echo "open out/demo/preview.png"

.PHONY: test
# One release build: `cargo test` builds the binaries the Python tests run (target/release/
# labeljob, labeljob-operator) together with the test binaries. Depending on `build` as well
# would compile the workspace twice, since the tests' dev-dependencies add tokio's test-util
# feature and so change every crate above tokio.
test: test-deps ## Every test: Rust (unit, reconcile, S3, Azure, GCS), Python (pycocotools, reference ORT, OIP client), Helm lint (not the kind e2e: make e2e)
	cargo test --release --workspace -- --include-ignored
	$(VENV_PY) -m pytest -q tests/python
	$(MAKE) --no-print-directory helm-lint

.PHONY: lint
lint: ## rustfmt and clippy (warnings are errors)
	cargo fmt --all -- --check
	cargo clippy --release --workspace --all-targets --features labeljob-e2e/kind -- -D warnings

.PHONY: kubectl-plugin
kubectl-plugin: ## Build kubectl-labeljob and install it into ~/.local/bin (then: kubectl labeljob status NAME)
	cargo build --release -p labeljob-kubectl
	install -D -m 0755 target/release/kubectl-labeljob $(HOME)/.local/bin/kubectl-labeljob
	@echo "installed ~/.local/bin/kubectl-labeljob: make sure ~/.local/bin is on your PATH"

.PHONY: generate
generate: ## Regenerate crds/ (and the chart's copy) from the Rust types
	cargo run -q --release -p labeljob-api --bin crdgen > crds/labeljob.yaml
	cargo run -q --release -p labeljob-operator -- rbac-chart > charts/labeljob/templates/_operator-rules.tpl
	$(MAKE) --no-print-directory chart-crd

.PHONY: bench
bench: test-deps build ## Tables: labeljob run / --endpoint vs raw ORT and two Python peers on 2 corpora; serve; merge formats
	cargo bench -p labeljob-worker --bench pipeline
	cargo bench -p labeljob-worker --bench serve
	cargo bench -p labeljob-worker --bench merge

FUZZ_SECONDS ?= 600
.PHONY: fuzz
fuzz: ## Mutation-fuzz decode, job file, shard file, OIP request: FUZZ_SECONDS each (default 600)
	LABELJOB_FUZZ_SECONDS=$(FUZZ_SECONDS) cargo test --release -p labeljob-worker --test fuzz -- --nocapture --test-threads=1

-include mk/packaging.mk
