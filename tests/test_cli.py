"""`hotfix-operator run`'s process set-up."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from hotfix_operator.cli import GC_THRESHOLDS, tune_garbage_collector
from tests.support.fresh_python import run_fresh


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_what_start_up_built_is_frozen_and_the_collector_runs_less_often() -> None:
    kept = [object() for _ in range(10)]
    tune_garbage_collector()
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold() == GC_THRESHOLDS


def test_the_running_operator_loads_neither_httpxs_command_line_nor_rich() -> None:
    probe = ("import sys; from hotfix_operator.cli import skip_httpx_command_line; skip_httpx_command_line(); "
             "import hotfix_operator.handlers, httpx; "
             "loaded = [m for m in ('rich', 'click', 'pygments', 'httpx._main') if sys.modules.get(m)]; "
             "print(sorted(loaded), callable(httpx.Client))")
    assert run_fresh(probe).split() == ["[]", "True"]
