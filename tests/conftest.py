"""Shared fixtures. Tests that touch Kubernetes run on one real local control plane per session
(etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok) plus a TLS registry."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster.cluster import LocalCluster
from tests.kube import Kube

CLUSTER_DIRS = ("integration", "adapters", "localcluster")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if any(d in parts for d in CLUSTER_DIRS) and "unit" not in item.keywords:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    workdir = Path(os.environ.get("HOTFIX_TEST_CLUSTER_DIR") or tmp_path_factory.mktemp("cluster"))
    local = LocalCluster(workdir).start()
    try:
        local.kubectl("apply", "--server-side", "-f", str(Path(__file__).parent.parent / "crds"))
        local.kubectl("wait", "--for", "condition=Established", "crd", "--all", "--timeout=30s")
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def kube(cluster: LocalCluster) -> Kube:
    return Kube(cluster)
