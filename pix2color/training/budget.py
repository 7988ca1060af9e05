"""The time budget: ``train.minutes`` split between the stages, and the time each has spent (kept in last.pt)."""

from __future__ import annotations

import time


class Budget:
    """One stage's share of the run's time and what it has spent, resumes included.

    Args:
        seconds: the stage's budget; None when only its epochs limit it.
        spent: seconds spent before this process took over (from the checkpoint on a resume).
    """

    def __init__(self, seconds: float | None, spent: float = 0.0):
        self.seconds = seconds
        self.spent_before = spent
        self.started = time.perf_counter()

    @property
    def spent(self) -> float:
        """Seconds spent on this stage so far, over every process that ran it."""
        return self.spent_before + time.perf_counter() - self.started

    def fraction(self) -> float:
        """The spent share of the budget, 0 without one."""
        return 0.0 if self.seconds is None else self.spent / self.seconds

    def exhausted(self) -> bool:
        return self.seconds is not None and self.spent >= self.seconds


def stage_seconds(minutes: float, first_share: float, stages: list[str], stage: str) -> float | None:
    """The seconds of ``train.minutes`` that ``stage`` gets: the first of two stages ``first_share``, the
    second the rest, a stage run alone all of it; None when ``minutes`` is 0 (no time budget)."""
    if minutes == 0:
        return None
    if len(stages) == 1:
        return minutes * 60
    return minutes * 60 * (first_share if stages.index(stage) == 0 else 1 - first_share)
