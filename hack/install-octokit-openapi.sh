#!/usr/bin/env bash
# Installs GitHub's official OpenAPI description (npm package @octokit/openapi, pinned in
# versions.env) into a cache outside the repo and prints the path of the description the
# loopback GitHub test server validates against.
#
#   hack/install-octokit-openapi.sh      install when missing, print the spec path
#   HOTFIX_CACHE=/path ...               cache root (default: ~/.cache/hotfix-operator)
#
# The non-dereferenced api.github.com.json is the one printed: it keeps the shared
# components/schemas with their $refs, so a validator resolves each schema once instead of
# walking the many megabytes of inlined copies in the .deref variant.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

: "${OCTOKIT_OPENAPI_VERSION:?OCTOKIT_OPENAPI_VERSION is not set in hack/versions.env}"
cache=${HOTFIX_CACHE:-$HOME/.cache/hotfix-operator}
prefix="$cache/octokit-openapi-$OCTOKIT_OPENAPI_VERSION"
spec="$prefix/node_modules/@octokit/openapi/generated/api.github.com.json"
log() { printf '[octokit-openapi] %s\n' "$*" >&2; }

if [ ! -s "$spec" ]; then
  log "installing @octokit/openapi@$OCTOKIT_OPENAPI_VERSION into $prefix"
  # Install into a scratch directory and move it into place only when complete, so an
  # interrupted download never leaves a half-written cache that looks warm.
  mkdir -p "$cache"
  scratch=$(mktemp -d "$cache/.octokit-openapi-$OCTOKIT_OPENAPI_VERSION.XXXXXX")
  trap 'rm -rf "$scratch"' EXIT
  npm install --prefix "$scratch" --no-save --no-package-lock --ignore-scripts \
    --no-audit --no-fund --loglevel=error \
    "@octokit/openapi@$OCTOKIT_OPENAPI_VERSION" >&2
  if [ ! -s "$scratch/node_modules/@octokit/openapi/generated/api.github.com.json" ]; then
    log "the package has no generated/api.github.com.json; its layout changed"
    exit 1
  fi
  rm -rf "$prefix"
  mv "$scratch" "$prefix"
  trap - EXIT
  log "installed; spec at $spec"
fi

printf '%s\n' "$spec"
