# The project's entry points. `make dev` and `make test` set up a fresh machine by themselves.
SHELL := bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
LOCAL := .local
export PYTHONPATH := $(CURDIR)/hack
# helm, built from its pinned Go module into the cache on first use (hack/build-binaries.sh helm)
HELM = $(shell bash hack/build-binaries.sh helm)/helm
CHART_ALL_ON := --set dashboard.enabled=true,prometheusRule.enabled=true,metrics.serviceMonitor.enabled=true,defaultPolicy.enabled=true
KUBECTL = $(shell PYTHONPATH=$(CURDIR)/hack $(PY) -c "from localcluster.toolchain import Toolchain; print(Toolchain.from_cache(build=False).kubectl)")

.PHONY: help deps dev test test-unit cluster cluster-down crds operator lint bench clean postmortems kind-install

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

deps: ## install Debian packages, the Python env and the control-plane binaries (idempotent)
	@bash hack/install-deps.sh

dev: deps ## the product on its embedded default: local control plane, registry, operator, a hotfix end to end
	@$(PY) hack/dev.py $(DEV_ARGS)

test: deps ## the whole test suite (unit + real control plane)
	@$(PY) -m pytest

test-unit: deps ## only the tests that need no control plane
	@$(PY) -m pytest -m "not cluster"

cluster: deps ## start the local control plane in the background; writes .local/kubeconfig
	@$(PY) -m localcluster up --dir $(LOCAL)

cluster-down: ## stop the local control plane
	@$(PY) -m localcluster down --dir $(LOCAL)

crds: ## install the CRDs and roles into the cluster of .local/kubeconfig
	@$(KUBECTL) --kubeconfig $(LOCAL)/kubeconfig apply --server-side -f crds/
	@$(KUBECTL) --kubeconfig $(LOCAL)/kubeconfig wait --for condition=Established crd --all --timeout=30s >/dev/null

operator: crds ## run the operator in the foreground against .local/kubeconfig (as its service account)
	@$(VENV)/bin/hotfix-operator run --kubeconfig $(LOCAL)/users/operator.kubeconfig \
	  --registry-ca-file $(LOCAL)/pki/ca.crt

postmortems: ## hotfix tags without a post-mortem: make postmortems REPO=owner/name (token in $$GITHUB_TOKEN)
	@$(VENV)/bin/hotfix-operator postmortems --repo "$(REPO)" $(if $(GITHUB_API_URL),--github-url $(GITHUB_API_URL))

lint: deps ## ruff, mypy, the import-linter layer contracts, helm lint/template, hadolint
	@$(VENV)/bin/ruff check operator tests hack bench
	@$(VENV)/bin/mypy
	@$(VENV)/bin/lint-imports
	@set -o pipefail; $(HELM) lint --strict charts/hotfix-operator $(CHART_ALL_ON) 2>&1 | grep -v 'found symbolic link'
	@$(HELM) template hotfix-operator charts/hotfix-operator --namespace hotfix-operator $(CHART_ALL_ON) >/dev/null
	@$(VENV)/bin/hadolint Dockerfile

bench: deps ## every benchmark; writes bench/results/*.json
	@for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

bench-%: deps ## one benchmark, e.g. make bench-cutover (hyphens name underscores: bench-argo-rollouts)
	@$(PY) bench/bench_$(subst -,_,$*).py

clean: cluster-down
	rm -rf $(LOCAL)

ENGINE ?= docker
KIND_CONTEXT := kind-hotfix
KEY ?= cosign.pub
kind-install: ## on kind: cluster, image (ENGINE=docker|podman), chart with CRDs, roles, admission and a policy (KEY=cosign.pub)
	@command -v kind >/dev/null || { echo "kind is not installed (https://kind.sigs.k8s.io)"; exit 1; }
	@test -f "$(KEY)" || { echo "KEY=$(KEY): give the cosign public key your releases are signed with"; exit 1; }
	@kind get clusters | grep -qx hotfix || kind create cluster --config hack/kind/cluster.yaml
	@$(ENGINE) build -t hotfix-operator:dev .
	@kind load docker-image hotfix-operator:dev --name hotfix
	@kubectl --context $(KIND_CONTEXT) create namespace hotfix-system --dry-run=client -o yaml | kubectl --context $(KIND_CONTEXT) apply -f -
	@kubectl --context $(KIND_CONTEXT) -n hotfix-system create configmap hotfix-release-key --from-file=cosign.pub=$(KEY) --dry-run=client -o yaml | kubectl --context $(KIND_CONTEXT) apply -f -
	@helm upgrade --install hotfix-operator charts/hotfix-operator --kube-context $(KIND_CONTEXT) -n hotfix-system \
	  --set image.repository=hotfix-operator --set image.tag=dev --set image.pullPolicy=Never -f hack/kind/default-policy.yaml
	@echo "installed; label a namespace hotfix.dev/policy=kind and file a HotfixRelease there"
