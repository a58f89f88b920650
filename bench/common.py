"""Shared benchmark plumbing: statistics, the machine and versions, a printed table, results JSON."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "hack"))
sys.path.insert(0, str(REPO))

from localcluster.toolchain import pinned_versions  # noqa: E402


def summarise(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"n": len(ordered), "median": statistics.median(ordered), "min": ordered[0], "max": ordered[-1],
            "p90": ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))],
            "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]}


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    memory_kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                          if line.startswith("MemTotal")))
    return {"cpu": model, "cores": os.cpu_count(), "memoryGiB": round(memory_kib / 1024**2, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def versions(*packages: str) -> dict[str, str]:
    found = dict(pinned_versions())
    for package in packages:
        found[package] = metadata.version(package)
    return found


def report(name: str, title: str, rows: list[tuple[str, ...]], header: tuple[str, ...],
           results: dict[str, Any], packages: tuple[str, ...] = ()) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  " + "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))
    out = REPO / "bench" / "results" / f"{name}.json"
    out.write_text(json.dumps({"benchmark": name, "date": datetime.datetime.now(datetime.UTC).isoformat(
        timespec="seconds"), "machine": machine(), "versions": versions(*packages), "results": results},
        indent=2) + "\n")
    print(f"\n  written to {out.relative_to(REPO)}")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def s(seconds: float) -> str:
    return f"{seconds:.2f} s"
