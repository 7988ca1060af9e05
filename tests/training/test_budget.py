"""The time budget: how train.minutes is split between stages, and time spent carried over a resume."""

from __future__ import annotations

import time

import pytest

from pix2color.errors import ConfigError
from pix2color.training.budget import Budget, stage_seconds


def test_two_stages_split_the_minutes_by_the_first_stage_share():
    assert stage_seconds(10, [0.6, None], 0) == pytest.approx(360)
    assert stage_seconds(10, [0.6, None], 1) == pytest.approx(240)


def test_a_stage_run_alone_gets_all_the_minutes_and_zero_minutes_is_no_budget():
    assert stage_seconds(2, [None], 0) == pytest.approx(120)
    assert stage_seconds(2, [0.6], 0) == pytest.approx(120)
    assert stage_seconds(0, [0.6, None], 0) is None


def test_stages_without_a_share_split_the_rest_evenly_whatever_their_number():
    shares = [0.4, None, None]
    assert [stage_seconds(10, shares, i) for i in range(3)] == pytest.approx([240, 180, 180])
    assert [stage_seconds(10, [None, None], i) for i in range(2)] == pytest.approx([300, 300])
    assert stage_seconds(1, [0.03], 0) == 60  # a stage run alone gets exactly all of it


def test_shares_that_leave_nothing_for_a_stage_without_one_are_refused():
    with pytest.raises(ConfigError, match="add up to 1, leaving nothing for the rest"):
        stage_seconds(10, [0.5, None, 0.5], 1)


def test_spent_time_includes_what_the_checkpoint_carried():
    budget = Budget(10.0, spent=9.99)
    assert budget.spent >= 9.99 and budget.fraction() >= 0.999
    time.sleep(0.02)
    assert budget.exhausted()


def test_without_seconds_the_budget_never_runs_out():
    budget = Budget(None, spent=1e9)
    assert budget.fraction() == 0.0 and not budget.exhausted()
