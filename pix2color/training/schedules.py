"""Learning-rate and loss-weight schedules as functions of a stage's progress: 0 at its start, 1 at its end.

Progress rather than a step count, so that one schedule serves an epoch-based stage (steps done / steps
planned) and a time-budgeted one (time spent / time given) alike; the loop passes whichever is further.
Each schedule maps ``(progress, knee)`` to a factor on the optimizer's initial learning rate; ``knee`` is
the warm-up share (stage 1) or the share after which the rate decays (stage 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from pix2color.config import Stage1Schedule, Stage2Schedule

ONECYCLE_START, ONECYCLE_END = 1 / 25, 1 / 25e4  # PyTorch's OneCycleLR defaults (div_factor, final_div_factor)


def onecycle(progress: float, warmup: float) -> float:
    """One-cycle: cosine up from lr/25 to lr over ``warmup``, then cosine down to lr/25e4."""
    warmup = max(warmup, 1e-3)
    if progress < warmup:
        return _cosine_between(ONECYCLE_START, 1.0, progress / warmup)
    return _cosine_between(1.0, ONECYCLE_END, (progress - warmup) / (1 - warmup))


def warmup_cosine(progress: float, warmup: float) -> float:
    """Linear warm-up from lr/100 to lr over ``warmup``, then cosine down to 0."""
    if progress < warmup:
        return 0.01 + 0.99 * progress / warmup
    return _cosine_between(1.0, 0.0, (progress - warmup) / max(1 - warmup, 1e-9))


def constant_then_linear(progress: float, decay_start: float) -> float:
    """pix2pix: the initial rate until ``decay_start``, then a straight line to 0 at the end."""
    return min(1.0, max(0.0, (1 - progress) / max(1 - decay_start, 1e-9)))


def constant_then_cosine(progress: float, decay_start: float) -> float:
    """The initial rate until ``decay_start``, then a cosine to 0 at the end."""
    return _cosine_between(1.0, 0.0, (progress - decay_start) / max(1 - decay_start, 1e-9))


def constant(progress: float, knee: float) -> float:
    """The initial rate throughout."""
    return 1.0


STAGE1_SCHEDULES: dict[Stage1Schedule, Callable[[float, float], float]] = {
    "onecycle": onecycle,
    "cosine": warmup_cosine,
}
STAGE2_SCHEDULES: dict[Stage2Schedule, Callable[[float, float], float]] = {
    "linear": constant_then_linear,
    "cosine": constant_then_cosine,
    "constant": constant,
}


def ramp(step: int, steps: int) -> float:
    """A weight that rises linearly from 1/steps at step 0 to 1 at step ``steps - 1``; 1 when ``steps`` is 0."""
    return 1.0 if steps == 0 else min(1.0, (step + 1) / steps)


def rescaled(progress: float, start: float) -> float:
    """Progress of a part that began at ``start`` (e.g. G after D's warm-up), again from 0 to 1."""
    return max(0.0, (progress - start) / max(1 - start, 1e-9))


def set_learning_rate(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Every param group's rate to ``factor`` times its initial rate (kept in ``initial_lr``)."""
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
        group["lr"] = group["initial_lr"] * factor


def _cosine_between(start: float, end: float, t: float) -> float:
    t = min(1.0, max(0.0, t))
    return end + (start - end) * (1 + math.cos(math.pi * t)) / 2
