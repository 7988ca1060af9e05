"""Schedules as functions of a stage's progress: their ends, their knees, and G's schedule after D's warm-up."""

from __future__ import annotations

import pytest
import torch

from pix2color.training import schedules


@pytest.mark.parametrize("name", sorted(schedules.STAGE1_SCHEDULES))
def test_stage1_schedules_warm_up_to_the_full_rate_then_decay_to_almost_nothing(name):
    schedule = schedules.STAGE1_SCHEDULES[name]
    assert schedule(0.0, 0.1) < 0.05
    assert schedule(0.1, 0.1) == pytest.approx(1.0)
    assert schedule(1.0, 0.1) < 1e-4
    values = [schedule(p / 100, 0.1) for p in range(10, 101)]
    assert all(later <= earlier for earlier, later in zip(values, values[1:], strict=False))


def test_onecycle_starts_and_ends_where_pytorch_onecycle_does():
    assert schedules.onecycle(0.0, 0.3) == pytest.approx(1 / 25)
    assert schedules.onecycle(1.0, 0.3) == pytest.approx(1 / 25e4)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_stage2_schedules_hold_until_decay_start_then_reach_zero(name):
    schedule = schedules.STAGE2_SCHEDULES[name]
    assert schedule(0.0, 0.5) == schedule(0.5, 0.5) == 1.0
    assert 0 < schedule(0.75, 0.5) < 1
    assert schedule(1.0, 0.5) == pytest.approx(0.0, abs=1e-12)
    assert schedules.constant_then_linear(0.75, 0.5) == pytest.approx(0.5)


def test_constant_is_constant():
    assert {schedules.constant(p / 10, 0.5) for p in range(11)} == {1.0}


def test_ramp_rises_linearly_and_zero_steps_is_constant():
    assert [schedules.ramp(step, 4) for step in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert schedules.ramp(0, 0) == 1.0


def test_a_part_started_late_still_runs_its_whole_schedule():
    """G after D's warm-up: its progress is 0 when it starts and 1 at the stage's end."""
    assert schedules.rescaled(0.2, 0.2) == 0.0
    assert schedules.rescaled(0.6, 0.2) == pytest.approx(0.5)
    assert schedules.rescaled(1.0, 0.2) == pytest.approx(1.0)
    assert schedules.constant_then_linear(schedules.rescaled(1.0, 0.2), 0.5) == pytest.approx(0.0)


def test_set_learning_rate_scales_every_group_from_its_initial_rate():
    weights = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.Adam([{"params": weights[:1], "lr": 1.0}, {"params": weights[1:], "lr": 0.1}])
    schedules.set_learning_rate(optimizer, 0.5)
    schedules.set_learning_rate(optimizer, 0.5)  # from the initial rate, not compounding
    assert [group["lr"] for group in optimizer.param_groups] == [0.5, 0.05]
