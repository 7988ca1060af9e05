"""What the loop relies on of a stage: the :class:`Stage` protocol, and the :class:`Progress` it steps at."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from torch import Tensor, nn


@dataclass(frozen=True)
class Progress:
    """Where a step stands in its stage: ``step`` steps done before it, ``fraction`` of the stage in [0, 1]."""

    step: int
    fraction: float


@runtime_checkable
class Stage(Protocol):
    """A stage of training, as :class:`~pix2color.training.loop.Loop` runs it; built as ``cls(ctx, resuming)``.

    Its identity is data: ``name`` (the ``--stage`` choice and its checkpoint folder), ``title`` (how model
    cards name it), ``section`` (its config section, with ``epochs`` and ``lr``), and its place in
    :data:`~pix2color.training.stages.STAGES` (the run and resume order).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    section: ClassVar[str]
    uses_checkpoint: ClassVar[bool]  # its generator starts from another stage's checkpoint
    charts: ClassVar[dict[str, list[str]]]  # chart title -> step values TensorBoard draws together
    best_metric_key: ClassVar[str]  # the config key naming the validation value that picks best.pt

    @property
    def best_metric(self) -> str:
        """The validation value that picks best.pt."""

    def initialize(self, run_dir: Path, previous: str | None) -> None:
        """Weights for a fresh start; ``previous`` names the stage before it in STAGES, if any."""

    def start_epoch(self, epoch: int) -> None:
        """Put the modules in training mode (and freeze what the epoch freezes)."""

    def crop_size(self, fraction: float) -> int:
        """The side of the training crops at ``fraction`` of the stage."""

    def step(self, rgb: Tensor, progress: Progress) -> dict[str, Tensor]:
        """One update on rgb (B, 3, S, S) uint8 on the device; 0-d tensors by name, with no host sync."""

    def schedule_values(self) -> dict[str, float]:
        """Learning rates and loss weights now in force, by name."""

    def eval_generator(self) -> nn.Module:
        """The weights validation and best.pt use."""

    def scores(self, summary: dict[str, float], start: dict[str, float]) -> dict[str, float]:
        """Values that weigh a validation ``summary`` against the one of the stage's start."""

    def state_dict(self) -> dict[str, Any]:
        """The stage's weights, optimizers and scalers, for last.pt."""

    def load_state_dict(self, state: dict[str, Any], where: str) -> None:
        """Restore :meth:`state_dict`'s output; ``where`` names the checkpoint in errors."""
