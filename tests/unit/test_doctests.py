"""The examples in the library's docstrings run and give what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

# module → the fewest examples it must hold (so one lost by a refactor is noticed)
MODULES = {
    "hodlflow.maintain": 1,
    "hodlflow.sim.truth": 5,  # net_weak_to_strong's hand numbers among them
    "hodlflow.sim.random_scenario": 1,
    "hodlflow.entities.evaluate": 1,  # format_scores, sample_days, holder_decision_scores
    "hodlflow.report.series": 3,  # trailing_mean, point_day
    "hodlflow.ingest.blocks_dir": 2,  # task_slices
    "hodlflow.faults": 6,  # _ran_in_order, runs_add_up
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted >= MODULES[name], f"{name} has {result.attempted} examples"
    assert result.failed == 0
