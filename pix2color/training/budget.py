"""The time budget: ``train.minutes`` split between the stages, and the time each has spent (kept in last.pt)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from pix2color.errors import ConfigError


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


def stage_seconds(minutes: float, shares: Sequence[float | None], index: int) -> float | None:
    """The seconds of ``train.minutes`` that the ``index``-th of the run's stages gets.

    A stage with a share of its own (``stage1.share``) gets it; the stages without one split the rest evenly;
    then the shares are scaled to add up to 1, so a stage run alone gets all the time.

    Args:
        minutes: the run's budget; 0 means none.
        shares: per stage of the run, in order, its own share or None.
        index: which of them.

    Returns:
        The stage's seconds, or None without a budget.

    Raises:
        ConfigError: the shares leave nothing for a stage without one.
    """
    if minutes == 0:
        return None
    given = sum(share for share in shares if share is not None)
    unshared = sum(share is None for share in shares)
    if unshared and given >= 1:
        raise ConfigError(
            f"the stages' own shares of train.minutes add up to {given:g}, leaving nothing for the rest; "
            "lower them (stage1.share)."
        )
    rest = (1 - given) / unshared if unshared else 0.0
    resolved = [rest if share is None else share for share in shares]
    return minutes * 60 * (resolved[index] / sum(resolved))
