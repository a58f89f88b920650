#!/usr/bin/env bash
# Builds the control-plane binaries from their pinned Go modules into a cache outside the repo.
# The cache is keyed by version, so a binary is rebuilt only when its pin changes or it is missing.
#
#   hack/build-binaries.sh            build whatever is missing, print the bin directory
#   hack/build-binaries.sh cosign     build cosign only (not part of `all`), print its bin directory
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

what=${1:-all}
case "$what" in
  kubernetes) build_kubernetes ;;
  etcd) build_etcd ;;
  kwok) build_kwok ;;
  cosign) build_cosign; echo "$cosign_bin"; exit 0 ;;
  all) build_etcd; build_kwok; build_kubernetes ;;
  *) echo "usage: $0 [all|kubernetes|etcd|kwok|cosign]" >&2; exit 2 ;;
esac
echo "$k8s_bin:$etcd_bin:$kwok_bin"
