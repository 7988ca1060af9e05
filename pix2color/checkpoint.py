"""Checkpoints: written atomically, loaded as data only (``weights_only=True``), checked on load.

A checkpoint is a dict with at least ``format_version``, ``config`` (the resolved config as nested dicts),
``stage`` (a name in ``training.stages.STAGES``) and ``generator`` (a state dict). ``best.pt`` adds only
``metrics`` (the validation that made it best; its generator holds the EMA weights when EMA is on); ``last.pt``
adds all a resume needs: EMA, discriminator, optimizers, grad scalers, position, time spent, RNG states.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pix2color.errors import CheckpointError, ConfigError
from pix2color.files import atomic_write, remove_orphaned_temps

FORMAT_VERSION = 2  # 2: lean best.pt, schedules by progress (no scheduler state), time spent in last.pt
REQUIRED_KEYS = ("format_version", "config", "stage", "generator")
RESUME_KEYS = ("optimizers", "scalers", "rng")  # what last.pt adds for a resume, beyond the weights


def checkpoint_path(run_dir: str | Path, stage: str, name: str) -> Path:
    """RUN_DIR/checkpoints/<stage>/<name>.pt, e.g. checkpoints/gan/best.pt."""
    return Path(run_dir) / "checkpoints" / stage / f"{name}.pt"


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` through a temp file in the same folder, then rename it.

    A failed write (disk full, interrupted) leaves any previous file at ``path`` untouched; after a
    success, partial temp files that killed runs left for ``path`` are deleted.

    Raises:
        CheckpointError: the write failed; the message names the file.
    """
    try:
        with atomic_write(path) as handle:
            torch.save({"format_version": FORMAT_VERSION, **state}, handle)
        remove_orphaned_temps(path)
    except OSError as exc:
        raise CheckpointError(
            f"could not write checkpoint {path} ({exc.strerror or exc}); the previous checkpoint there is intact."
        ) from exc


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a pix2color checkpoint as plain data; never runs code stored in it.

    Raises:
        CheckpointError: missing, truncated, unsafe (pickled code) or not a pix2color checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass a .pt file from RUN_DIR/checkpoints.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # The weights-only unpickler raises this both for a forbidden global (a class or a function,
        # possibly code) and for bytes that are no pickle at all (an image passed by mistake).
        if "global" in str(exc).lower():
            raise CheckpointError(
                f"checkpoint {path} was refused: it holds Python objects other than tensors and plain data "
                "(possibly code), so it was not loaded; use a checkpoint written by pix2color."
            ) from exc
        raise _not_a_checkpoint(path, exc) from exc
    except Exception as exc:  # bad bytes fail in torch.load with many types: RuntimeError, EOFError, IndexError...
        raise _not_a_checkpoint(path, exc) from exc
    missing = [key for key in REQUIRED_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise CheckpointError(f"{path} is not a pix2color checkpoint (missing {', '.join(missing)}).")
    check_format_version(state["format_version"], path)
    return state


def check_resume_state(state: dict[str, Any], where: str | Path, keys: tuple[str, ...] = RESUME_KEYS) -> None:
    """Raise a one-line ConfigError unless ``state`` holds ``keys`` (what a resume needs), as last.pt does."""
    if not set(keys) <= set(state):
        raise ConfigError(
            f"--resume {where} holds generator weights only (a best.pt keeps just those), not the training state "
            f"a resume needs; pass the run folder or its checkpoints/{state.get('stage', '<stage>')}/last.pt."
        )


def check_format_version(version: Any, path: Path) -> None:
    """Raise a one-line CheckpointError unless ``version`` is the format this pix2color reads."""
    if version == FORMAT_VERSION:
        return
    if isinstance(version, int) and version > FORMAT_VERSION:
        advice = "a newer pix2color wrote it; upgrade pix2color to load it"
    else:
        advice = "an older pix2color wrote it; load it with that version, or train a new checkpoint"
    raise CheckpointError(
        f"checkpoint {path} has format version {version!r}, this pix2color reads version {FORMAT_VERSION}; {advice}."
    )


def _not_a_checkpoint(path: Path, exc: Exception) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is truncated or not a PyTorch file ({type(exc).__name__}); "
        "use another checkpoint, such as RUN_DIR/checkpoints/gan/best.pt."
    )


def load_weights(module: nn.Module, state_dict: dict[str, torch.Tensor], what: str, path: str | Path) -> None:
    """Load ``state_dict`` into ``module`` strictly, turning a mismatch into one clear line.

    Raises:
        CheckpointError: names the checkpoint, the part and the first mismatching keys or shapes.
    """
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    wrong_shape = [k for k in own if k in state_dict and own[k].shape != state_dict[k].shape]
    if missing or unexpected or wrong_shape:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape))
            if keys
        )
        raise CheckpointError(
            f"checkpoint {path}: its {what} weights do not fit this architecture ({detail}); "
            "it was trained with another model config."
        )
    module.load_state_dict(state_dict)
