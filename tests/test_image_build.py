"""The operator image's build context (what the Dockerfile COPYs) makes a package that carries the CRD
and the admission policy it compares with the cluster's: the package's data files are links into crds/,
and a build that copied operator/ alone would ship them dangling. No container engine here: the wheel
is built from exactly the paths the Dockerfile copies, as its build stage does."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def copied_paths() -> list[str]:
    """The sources the Dockerfile's build stage copies into /src."""
    paths: list[str] = []
    for line in (REPO / "Dockerfile").read_text().splitlines():
        match = re.match(r"COPY (?!--from)(.+) \S+$", line.strip())
        if match:
            paths += match.group(1).split()
    return paths


@pytest.mark.timeout(600)
def test_the_image_build_context_packages_the_crd_and_the_admission_policy(tmp_path: Path) -> None:
    context = tmp_path / "src"
    context.mkdir()
    for path in copied_paths():
        source = REPO / path
        if source.is_dir():
            shutil.copytree(source, context / path, symlinks=True)
        else:
            shutil.copy2(source, context / path)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                    str(context)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        for name in ("admission.yaml", "hotfixrelease.yaml"):
            packaged = archive.read(f"hotfix_operator/data/{name}")
            assert packaged == (REPO / "crds" / name).read_bytes(), f"{name} is not the CRD directory's"
