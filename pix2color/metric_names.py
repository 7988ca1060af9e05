"""The validation metrics by name: the one place their names, directions and printed forms are written.

This module sits at the bottom of the layers (no torch): the config schema checks ``best_metric`` against it,
the loop ranks checkpoints with it, model cards and ``scripts/evaluate.py`` print with it.
"""

from __future__ import annotations

from typing import NamedTuple


class MetricSpec(NamedTuple):
    """How a metric reads: its printed ``label``, whether a higher value is better (None: a reference value
    that ranks nothing), and the ``digits`` tables print."""

    label: str
    higher_is_better: bool | None
    digits: int


# In the order model cards and tables list them.
METRIC_SPECS: dict[str, MetricSpec] = {
    "psnr": MetricSpec("PSNR", True, 2),
    "ssim": MetricSpec("SSIM", True, 4),
    "ciede2000": MetricSpec("CIEDE2000", False, 2),
    "colorfulness": MetricSpec("colorfulness", True, 2),
    "delta_cf": MetricSpec("ΔCF", False, 2),
    "target_colorfulness": MetricSpec("truth colorfulness", None, 2),
    "l1": MetricSpec("L1", False, 4),
    "color_fidelity": MetricSpec("color fidelity", True, 3),
    "psnr_gray": MetricSpec("PSNR of gray", None, 2),
}

# Metrics that can pick best.pt: those with a direction.
RANKING_METRICS = tuple(name for name, metric in METRIC_SPECS.items() if metric.higher_is_better is not None)

# The validation values TensorBoard draws together: colour beside fidelity.
COLOR_BESIDE_FIDELITY = ("psnr", "colorfulness", "delta_cf", "ciede2000")


def is_better(name: str, value: float, best: float | None) -> bool:
    """Whether ``value`` of the ranking metric ``name`` beats ``best`` (None: nothing to beat yet)."""
    if best is None:
        return True
    return value > best if METRIC_SPECS[name].higher_is_better else value < best
