"""Pretrained weights: ImageNet through torchvision's weights API, a local state dict, or none; checked loading.

``pretrained`` is ``"imagenet"``, ``"none"`` or the path of a torchvision-format state dict (what
``torchvision.models.<name>().state_dict()`` saves). torchvision reads
``$TORCH_HOME/hub/checkpoints/<file>`` before downloading anything, so ImageNet weights work offline
once the file is in that folder.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import Tensor, nn

from pix2color.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the input normalisation of torchvision's ImageNet weights, RGB in [0, 1]
IMAGENET_STD = (0.229, 0.224, 0.225)
_READ_ERRORS = (OSError, RuntimeError, EOFError, pickle.UnpicklingError)


def load_torchvision_model(builder: Callable[..., nn.Module], pretrained: str, **kwargs) -> nn.Module:
    """Build a torchvision classifier and load the weights that ``pretrained`` names.

    Args:
        builder: a torchvision model builder, e.g. ``torchvision.models.resnet18``.
        pretrained: "imagenet" (the builder's DEFAULT weights), "none" (random init) or a state dict path.
        **kwargs: architecture options for the builder; they must match the weights' layout.

    Raises:
        ConfigError: the ImageNet file is missing and cannot be downloaded, or the state dict is
            unreadable or does not fit the model.
    """
    model = builder(weights=None, **kwargs)
    if pretrained == "none":
        return model
    if pretrained == "imagenet":
        weights = torchvision.models.get_model_weights(builder).DEFAULT
        source, state = hub_file(weights), _imagenet_state_dict(weights)
    else:
        source, state = Path(pretrained), read_state_dict(Path(pretrained))
    name = builder.__name__
    return load_checked(model, state, source, f"torchvision {name}", f"torchvision.models.{name}()")


def load_checked(model: nn.Module, state: dict[str, Tensor], source: str | Path, kind: str, maker: str) -> nn.Module:
    """Load ``state`` into ``model`` once every key and shape is found to fit.

    Args:
        model: the classifier the weights are for.
        state: its weights, as read from ``source``.
        source: where they came from, named in the error.
        kind: what a fitting state dict is, e.g. "torchvision resnet18".
        maker: the call whose ``state_dict()`` fits, e.g. "torchvision.models.resnet18()".

    Raises:
        ConfigError: naming ``source``, the first key or shape that does not fit, and ``maker``.
    """
    problem = _mismatch(model.state_dict(), state)
    if problem:
        raise ConfigError(
            f"model.pretrained: {source} is not a {kind} state dict ({problem}); "
            f"save one from {maker}, or use imagenet or none."
        )
    model.load_state_dict(state)
    return model


def hub_file(weights: torchvision.models.WeightsEnum) -> Path:
    """Where torchvision looks for ``weights`` before downloading: ``$TORCH_HOME/hub/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def _imagenet_state_dict(weights: torchvision.models.WeightsEnum) -> dict[str, Tensor]:
    file = hub_file(weights)
    present = file.is_file()
    try:
        return weights.get_state_dict(progress=False, map_location="cpu", weights_only=True)
    except _READ_ERRORS as exc:
        if present:
            raise ConfigError(
                f"model.pretrained=imagenet: {file} cannot be read ({exc}); delete it and download "
                f"{weights.url} again, or use --set model.pretrained=none."
            ) from exc
        raise ConfigError(
            f"model.pretrained=imagenet needs {file.name} in {file.parent}, which is missing and could not "
            f"be downloaded; download {weights.url} into that folder, or use --set model.pretrained=none."
        ) from exc


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """The state dict saved in ``path``.

    Raises:
        ConfigError: no such file, unreadable, or not a dict.
    """
    if not path.is_file():
        raise ConfigError(
            f"model.pretrained={path}: no such file; give a torchvision state dict file, imagenet or none."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except _READ_ERRORS as exc:
        raise ConfigError(f"model.pretrained={path}: cannot be read as a state dict ({exc}).") from exc
    if not isinstance(state, dict):
        raise ConfigError(f"model.pretrained={path}: holds a {type(state).__name__}, not a state dict.")
    return state


def _mismatch(expected: dict[str, Tensor], state: dict[str, object]) -> str:
    """The first difference between a model's state dict and a loaded one, or "" when they fit."""
    for key, value in expected.items():
        if not isinstance(state.get(key), Tensor):
            return f"it lacks {key!r}"
        if state[key].shape != value.shape:
            return f"{key!r} has shape {tuple(state[key].shape)} instead of {tuple(value.shape)}"
    extra = sorted(set(state) - set(expected))
    return f"it has the unexpected key {extra[0]!r}" if extra else ""
