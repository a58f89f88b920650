# The operator image: `docker build -t hotfix-operator:dev .` (or podman/buildah; docs/observability.md).
# The base is python:3.11-slim pinned by the digest of its multi-arch index, as published on Docker Hub
# (and mirrored unchanged to public.ecr.aws/docker/library). To move it:
#   docker buildx imagetools inspect python:3.11-slim   # prints the current index digest
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# Stage 1: the package and its dependencies in a virtualenv, built with pip's toolchain; only the
# virtualenv is carried over, so nothing of the build (pip caches, sources) reaches the runtime image.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
# The package's data/*.yaml are links into crds/ (one home for the CRD and the admission policy); the
# wheel carries their contents, so crds/ is needed only here, in the build stage.
COPY crds ./crds
COPY operator ./operator
RUN /opt/venv/bin/pip install --no-cache-dir .

# Stage 2: the runtime.
FROM ${PYTHON_IMAGE}
# git: the backport's cherry-pick and the post-mortem pull request use the git CLI. The version comes
# from the base image's Debian release (pinned through the digest above), so it is not pinned twice.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
# A numeric user (runAsNonRoot can verify it without /etc/passwd); HOME and TMPDIR on /tmp, the one
# writable path when the root filesystem is read-only (the chart mounts an emptyDir there).
ENV PATH=/opt/venv/bin:$PATH HOME=/tmp TMPDIR=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["hotfix-operator", "run"]
