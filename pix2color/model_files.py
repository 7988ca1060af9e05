"""Reading model files: a training checkpoint (``.pt``) or a release folder, as weights, config and record.

Below :mod:`pix2color.inference` (which colours with the generator) and :mod:`pix2color.release` (which
writes release folders): both read through here, so a release folder is taken wherever a checkpoint is.

    RELEASE/model.safetensors   the generator's weights; its header holds the training record as JSON
    RELEASE/config.yaml         the resolved model and colour config, and the training size
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn

from pix2color.checkpoint import load_checkpoint, load_weights
from pix2color.config import Config, config_from_dict, config_to_dict
from pix2color.errors import CheckpointError
from pix2color.models.generator import build_generator

WEIGHTS, CONFIG = "model.safetensors", "config.yaml"
RECORD_KEYS = ("stage", "step", "epoch")  # with "metrics", what a model file tells of its training


@dataclasses.dataclass(frozen=True)
class ModelFile:
    """What a checkpoint or a release holds for inference.

    Attributes:
        weights: the generator's state dict (a release's floating-point tensors as fp32).
        config: the resolved config as nested dicts (a release's: model, color and data.size only).
        label: what the weights are, for error messages: "generator", "EMA generator" or "release".
        record: the training record: stage, step, epoch (None when not recorded) and metrics (name -> float).
    """

    weights: dict[str, Tensor]
    config: dict[str, Any]
    label: str
    record: dict[str, Any]


def read_model_file(path: str | Path) -> ModelFile:
    """A release folder or a checkpoint file, whichever ``path`` is.

    Raises:
        CheckpointError: missing, truncated, unsafe, or a folder that is not a release.
    """
    return read_release(path) if Path(path).is_dir() else checkpoint_model(load_checkpoint(path))


def load_generator(path: str | Path) -> tuple[nn.Module, Config]:
    """Rebuild the generator of a checkpoint (.pt) or of a release folder, on the CPU, in eval mode.

    The model is built from the config stored with the weights; pretrained weights are switched off,
    so every weight (fusion classifier included) comes from the file and nothing is downloaded. A
    checkpoint's EMA weights are used when it has them; a release's fp16 weights load as fp32.

    Raises:
        CheckpointError: missing, truncated, unsafe, or weights that do not fit the stored config.
        ConfigError: the stored config has unknown keys or wrong types.
    """
    return rebuild_generator(read_model_file(path), path)


def rebuild_generator(model: ModelFile, source: str | Path) -> tuple[nn.Module, Config]:
    """The generator that ``model.config`` describes, with ``model.weights``, in eval mode.

    Raises:
        CheckpointError: the weights do not fit the architecture; the message names ``source`` and the label.
        ConfigError: the config has unknown keys or wrong types.
    """
    cfg = config_from_dict(model.config, source=str(source))
    generator = build_generator(dataclasses.replace(cfg.model, pretrained="none"), cfg.data.size, cfg.color.space)
    load_weights(generator, model.weights, model.label, source)
    return generator.eval(), cfg


def checkpoint_model(state: dict[str, Any]) -> ModelFile:
    """The inference side of a loaded checkpoint: its EMA generator when it has one, else its generator."""
    weights, label = inference_weights(state)
    return ModelFile(weights, state["config"], label, training_record(state))


def inference_weights(state: dict[str, Any]) -> tuple[dict[str, Tensor], str]:
    """A checkpoint's weights for inference, and what they are: its EMA generator when it has one."""
    ema = state.get("generator_ema")
    return (state["generator"], "generator") if ema is None else (ema, "EMA generator")


def training_record(state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's stage, step, epoch (None when absent) and validation metrics as floats."""
    metrics = {name: float(value) for name, value in (state.get("metrics") or {}).items()}
    return {key: state.get(key) for key in RECORD_KEYS} | {"metrics": metrics}


def inference_checkpoint(
    cfg: Config,
    generator: dict[str, Tensor],
    stage: str,
    metrics: dict[str, float] | None = None,
    step: int | None = None,
) -> dict[str, Any]:
    """The state of a weights-only checkpoint (``best.pt``), for :func:`pix2color.checkpoint.save_checkpoint`.

    Args:
        cfg: the resolved config, stored as nested dicts.
        generator: the generator's state dict (its EMA weights when EMA is on).
        stage: its name in training.stages.STAGES.
        metrics: the validation that made it best; left out when None.
        step: the optimizer step it was taken at; left out when None.
    """
    state = {"config": config_to_dict(cfg), "stage": stage, "generator": generator}
    if metrics is not None:
        state["metrics"] = metrics
    if step is not None:
        state["step"] = step
    return state


def read_release(folder: str | Path) -> ModelFile:
    """The weights (floating point as fp32), config and training record of a release folder.

    Raises:
        CheckpointError: the folder is not a release, or a file in it is truncated or not what it should be.
    """
    weights_path, config_path = Path(folder) / WEIGHTS, Path(folder) / CONFIG
    missing = [path.name for path in (weights_path, config_path) if not path.is_file()]
    if missing:
        raise CheckpointError(
            f"{folder} is a folder but not a pix2color release (no {' or '.join(missing)}); pass a .pt checkpoint "
            "or a folder written by pix2color-export --release."
        )
    config = _read_yaml(config_path)
    weights, metadata = _read_safetensors(weights_path)
    record = training_record(json.loads(metadata.get("training", "{}")))
    return ModelFile(cast_floats(weights, torch.float32), config, "release", record)


def cast_floats(weights: dict[str, Tensor], dtype: torch.dtype) -> dict[str, Tensor]:
    """Floating-point tensors as contiguous ``dtype``; integer buffers (BatchNorm's counts) as they are."""
    return {name: (t.to(dtype) if t.is_floating_point() else t).contiguous() for name, t in weights.items()}


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors and the header's metadata of a safetensors file."""
    from safetensors import safe_open

    try:
        with safe_open(path, "pt") as handle:
            return {name: handle.get_tensor(name) for name in handle.keys()}, handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own SafetensorError, OSError or ValueError for bad bytes
        raise CheckpointError(
            f"{path} is truncated or not a safetensors file ({type(exc).__name__}); export the release again."
        ) from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        return yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid YAML ({type(exc).__name__}); export the release again.") from exc
