#!/usr/bin/env bash
# Builds the control-plane binaries from their pinned Go modules into a cache outside the repo.
# The cache is keyed by version, so a binary is rebuilt only when its pin changes or it is missing.
#
#   hack/build-binaries.sh            build whatever is missing, print the bin directory
#   hack/build-binaries.sh cosign     build cosign only (not part of `all`), print its bin directory
#   hack/build-binaries.sh helm       build helm only (not part of `all`), print its bin directory
#   hack/build-binaries.sh kstatus    build the kstatus helper (hack/kstatus), print its bin directory
#   hack/build-binaries.sh ociregistry  build the OCI 1.1 registry (hack/ociregistry), print its bin directory
#   hack/build-binaries.sh argo-rollouts   build Argo Rollouts' controller, copy its CRDs beside it, print its bin directory
#   hack/build-binaries.sh monitoring-crds   fetch the ServiceMonitor/PrometheusRule CRDs, print their directory
#   HOTFIX_CACHE=/path ...            cache root (default: ~/.cache/hotfix-operator)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${HOTFIX_CACHE:-$HOME/.cache/hotfix-operator}
log() { printf '[build] %s\n' "$*" >&2; }

k8s_minor=${KUBERNETES_VERSION#v1.}              # 35.4
staging_version="v0.${k8s_minor}"                # v0.35.4
k8s_bin="$cache/kubernetes-$KUBERNETES_VERSION/bin"
etcd_bin="$cache/etcd-$ETCD_VERSION/bin"
kwok_bin="$cache/kwok-$KWOK_VERSION/bin"
cosign_bin="$cache/cosign-$COSIGN_VERSION/bin"
helm_bin="$cache/helm-$HELM_VERSION/bin"
# keyed by its source too: a change to hack/kstatus/main.go must rebuild it
kstatus_key="$CLI_UTILS_VERSION-$(sha256sum "$here/kstatus/main.go" | cut -c1-12)"
kstatus_bin="$cache/kstatus-$kstatus_key/bin"
monitoring_crds="$cache/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION/crds"
ociregistry_key="$GO_CONTAINERREGISTRY_VERSION-$(sha256sum "$here/ociregistry/main.go" | cut -c1-12)"
ociregistry_bin="$cache/ociregistry-$ociregistry_key/bin"
argo_rollouts_bin="$cache/argo-rollouts-$ARGO_ROLLOUTS_VERSION/bin"

export GOFLAGS="-buildvcs=false -trimpath"
export CGO_ENABLED=0

build_kubernetes() {
  local tools=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  local missing=0
  for t in "${tools[@]}"; do [ -x "$k8s_bin/$t" ] || missing=1; done
  [ "$missing" = 1 ] || return 0
  # k8s.io/kubernetes points its staging modules at ./staging with replace directives, which
  # `go install pkg@version` refuses. A wrapper module pins each staging module to its published
  # v0.x release instead, the way out-of-tree consumers of k8s.io/kubernetes build it.
  local src="$cache/kubernetes-$KUBERNETES_VERSION/src"
  mkdir -p "$src" "$k8s_bin"
  log "kubernetes $KUBERNETES_VERSION: resolving staging modules"
  (cd "$src" && [ -f go.mod ] || (cd "$src" && go mod init hotfix-operator/k8s-build >/dev/null 2>&1))
  local gomod
  gomod=$(cd "$src" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module hotfix-operator/k8s-build"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } > "$src/go.mod"
  cat > "$src/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  log "kubernetes $KUBERNETES_VERSION: go mod tidy (downloads modules on first run)"
  (cd "$src" && go mod tidy -e >/dev/null)
  log "kubernetes $KUBERNETES_VERSION: compiling ${tools[*]} (cold: ~15-25 min on 2 cores)"
  local pkgs=()
  for t in "${tools[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$t"); done
  (cd "$src" && go build -tags tools -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${k8s_minor%%.*}" -o "$k8s_bin/" "${pkgs[@]}")
}

build_etcd() {
  [ -x "$etcd_bin/etcd" ] && return 0
  # etcd's server module also replaces its sibling modules with local paths; same wrapper approach.
  local src="$cache/etcd-$ETCD_VERSION/src"
  mkdir -p "$src" "$etcd_bin"
  log "etcd $ETCD_VERSION: building"
  cat > "$src/go.mod" <<MOD
module hotfix-operator/etcd-build

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
)
MOD
  cat > "$src/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (cd "$src" && go mod tidy -e >/dev/null && go build -tags tools -ldflags "-s -w" -o "$etcd_bin/etcd" go.etcd.io/etcd/server/v3)
}

build_kwok() {
  [ -x "$kwok_bin/kwok" ] && return 0
  mkdir -p "$kwok_bin"
  log "kwok $KWOK_VERSION: building"
  GOBIN="$kwok_bin" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

build_cosign() {
  [ -x "$cosign_bin/cosign" ] && return 0
  # Only the provenance interop tests need cosign, so `all` leaves it out and it is built on demand.
  # The module path carries the major version (github.com/sigstore/cosign/v3); its go.mod has no
  # replace directives, so a plain `go install module@version` works.
  local module="github.com/sigstore/cosign/${COSIGN_VERSION%%.*}"
  mkdir -p "$cosign_bin"
  log "cosign $COSIGN_VERSION: building (cold: ~5-15 min on 2 cores)"
  GOBIN="$cosign_bin" go install -ldflags "-s -w" "$module/cmd/cosign@$COSIGN_VERSION"
}

build_helm() {
  [ -x "$helm_bin/helm" ] && return 0
  # Only the chart's lint and tests need helm, so it is built on demand. helm.sh/helm/v3's go.mod has
  # no replace directives, so `go install module@version` works; the ldflag makes `helm version` honest.
  mkdir -p "$helm_bin"
  log "helm $HELM_VERSION: building (cold: ~3-6 min on 2 cores)"
  # like helm's own Makefile: the Kubernetes version `helm template` and `helm lint` assume is the one
  # of the client-go it was built with (v0.34 for helm v3.19), not the library default v1.20
  local kube="1.34" x="helm.sh/helm/v3"
  GOBIN="$helm_bin" go install -ldflags "-s -w -X $x/internal/version.version=$HELM_VERSION \
    -X $x/pkg/chartutil.k8sVersionMajor=${kube%%.*} -X $x/pkg/chartutil.k8sVersionMinor=${kube#*.} \
    -X $x/pkg/lint/rules.k8sVersionMajor=${kube%%.*} -X $x/pkg/lint/rules.k8sVersionMinor=${kube#*.}" \
    "$x/cmd/helm@$HELM_VERSION"
}

build_kstatus() {
  [ -x "$kstatus_bin/kstatus" ] && return 0
  # A wrapper module around hack/kstatus/main.go that pins sigs.k8s.io/cli-utils (Flux's kstatus).
  local src="$cache/kstatus-$kstatus_key/src"
  mkdir -p "$src" "$kstatus_bin"
  log "kstatus (cli-utils $CLI_UTILS_VERSION): building"
  cp "$here/kstatus/main.go" "$src/main.go"
  printf 'module hotfix-operator/kstatus\n\ngo 1.24\n\nrequire sigs.k8s.io/cli-utils %s\n' "$CLI_UTILS_VERSION" > "$src/go.mod"
  (cd "$src" && go mod tidy >/dev/null && go build -ldflags "-s -w" -o "$kstatus_bin/kstatus" .)
}

build_ociregistry() {
  [ -x "$ociregistry_bin/ociregistry" ] && return 0
  # A wrapper module around hack/ociregistry/main.go that pins go-containerregistry (its pkg/registry).
  local src="$cache/ociregistry-$ociregistry_key/src"
  mkdir -p "$src" "$ociregistry_bin"
  log "ociregistry (go-containerregistry $GO_CONTAINERREGISTRY_VERSION): building"
  cp "$here/ociregistry/main.go" "$src/main.go"
  printf 'module hotfix-operator/ociregistry\n\ngo 1.24\n\nrequire github.com/google/go-containerregistry %s\n' \
    "$GO_CONTAINERREGISTRY_VERSION" > "$src/go.mod"
  (cd "$src" && go mod tidy >/dev/null && go build -ldflags "-s -w" -o "$ociregistry_bin/ociregistry" .)
}

build_argo_rollouts() {
  [ -x "$argo_rollouts_bin/rollouts-controller" ] && [ -f "$argo_rollouts_bin/../crds/rollout-crd.yaml" ] && return 0
  # Only the Argo Rollouts baseline benchmark needs it, so it is built on demand. Its go.mod has replace
  # directives, which `go install pkg@version` refuses, so it is built inside the downloaded module (the
  # module proxy's zip, checksummed by sum.golang.org); its CRDs come from the same module.
  local module="github.com/argoproj/argo-rollouts" dir crds="$argo_rollouts_bin/../crds"
  mkdir -p "$argo_rollouts_bin" "$crds"
  log "argo-rollouts $ARGO_ROLLOUTS_VERSION: building rollouts-controller (cold: ~4-5 min on 2 cores)"
  dir=$(cd "$argo_rollouts_bin" && GOFLAGS=-mod=mod go mod download -json "$module@$ARGO_ROLLOUTS_VERSION" \
    | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  (cd "$dir" && go build -ldflags "-s -w -X $module/utils/version.version=${ARGO_ROLLOUTS_VERSION#v}" \
    -o "$argo_rollouts_bin/rollouts-controller" ./cmd/rollouts-controller)
  cp "$dir"/manifests/crds/*-crd.yaml "$crds/"
  chmod u+w "$crds"/*.yaml
}

fetch_monitoring_crds() {
  [ -f "$monitoring_crds/monitoring.coreos.com_prometheusrules.yaml" ] && return 0
  # Not built: the module zip (from the Go module proxy, checksummed by sum.golang.org) carries the CRDs.
  local dir
  mkdir -p "$monitoring_crds"
  log "prometheus-operator $PROMETHEUS_OPERATOR_VERSION: fetching its CRDs"
  dir=$(cd "$monitoring_crds" && GOFLAGS=-mod=mod go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  for kind in servicemonitors prometheusrules; do
    cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$monitoring_crds/"
  done
  chmod u+w "$monitoring_crds"/*.yaml
}

what=${1:-all}
case "$what" in
  kubernetes) build_kubernetes ;;
  etcd) build_etcd ;;
  kwok) build_kwok ;;
  cosign) build_cosign; echo "$cosign_bin"; exit 0 ;;
  helm) build_helm; echo "$helm_bin"; exit 0 ;;
  kstatus) build_kstatus; echo "$kstatus_bin"; exit 0 ;;
  ociregistry) build_ociregistry; echo "$ociregistry_bin"; exit 0 ;;
  argo-rollouts) build_argo_rollouts; echo "$argo_rollouts_bin"; exit 0 ;;
  monitoring-crds) fetch_monitoring_crds; echo "$monitoring_crds"; exit 0 ;;
  all) build_etcd; build_kwok; build_kubernetes ;;
  *) echo "usage: $0 [all|kubernetes|etcd|kwok|cosign|helm|kstatus|ociregistry|argo-rollouts|monitoring-crds]" >&2; exit 2 ;;
esac
echo "$k8s_bin:$etcd_bin:$kwok_bin"
