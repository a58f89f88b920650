#!/usr/bin/env bash
# Installs everything `make dev` and `make test` need on a fresh machine, and nothing twice:
#   Debian packages (docker-registry, prometheus), the Python virtualenv, and the control-plane
#   binaries built from their pinned Go modules (hack/build-binaries.sh, cached outside the repo).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
# shellcheck source=versions.env
source "$here/versions.env"
say() { printf '[deps] %s\n' "$*"; }

missing=()
for pkg in $DEBIAN_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

venv="$repo/.venv"
stamp="$venv/.installed-$(cat "$repo/pyproject.toml" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  say "creating the Python environment in .venv (python3 >= 3.11)"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -e "$repo[dev]"
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi

if ! PYTHONPATH="$here" "$venv/bin/python" -c "from localcluster.toolchain import Toolchain; Toolchain.from_cache(build=False)" 2>/dev/null; then
  say "building etcd, kwok and Kubernetes $KUBERNETES_VERSION from their Go modules (first run only: ~10-20 min)"
  bash "$here/build-binaries.sh" >/dev/null
fi
