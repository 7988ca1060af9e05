"""Global fusion, as in "Deep Koalarization" (Baldassarre et al., 2017).

A frozen image classifier embeds the whole gray image; the embedding is broadcast over the U-Net
bottleneck, concatenated with it and mixed back to the bottleneck's channels by a 1x1 convolution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from pix2color.errors import ConfigError
from pix2color.models.pretrained import IMAGENET_MEAN, IMAGENET_STD, load_torchvision_model


@dataclass(frozen=True)
class _Classifier:
    """A torchvision classifier whose ``fc`` is replaced by the identity, leaving its pooled embedding."""

    builder: Callable[..., nn.Module]
    input_size: tuple[int, int]
    mean: tuple[float, float, float] = IMAGENET_MEAN  # input normalisation for RGB in [0, 1]
    std: tuple[float, float, float] = IMAGENET_STD
    kwargs: dict = field(default_factory=dict)  # architecture options matching the weights file


CLASSIFIERS = {
    "resnet50": _Classifier(torchvision.models.resnet50, (224, 224)),
    # Google's weights read RGB in [-1, 1]; aux_logits keeps the layout of the weights file.
    "inception_v3": _Classifier(
        torchvision.models.inception_v3,
        (299, 299),
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
        {"aux_logits": True, "transform_input": False, "init_weights": True},
    ),
}


class GlobalFusion(nn.Module):
    """Fuses a frozen classifier's embedding of the whole image into the bottleneck features.

    Args:
        classifier: (B, 3, h, w) normalised RGB -> (B, D) embedding; frozen, always in eval mode.
        input_size: (h, w), the size the classifier reads.
        mean: per-channel input mean, for RGB in [0, 1].
        std: per-channel input standard deviation.
        embed_dim: D.
        channels: C, the bottleneck's channels.
    """

    def __init__(
        self,
        classifier: nn.Module,
        input_size: tuple[int, int],
        mean: tuple[float, ...],
        std: tuple[float, ...],
        embed_dim: int,
        channels: int,
    ):
        super().__init__()
        self.classifier = classifier.requires_grad_(False).eval()
        self.input_size = input_size
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.conv = nn.Conv2d(channels + embed_dim, channels, kernel_size=1)
        # Identity on the features and zero on the embedding: training starts from the plain U-Net.
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            self.conv.weight[:, :channels, 0, 0] = torch.eye(channels)

    def train(self, mode: bool = True) -> GlobalFusion:
        """Set the training mode; the frozen classifier stays in eval mode."""
        super().train(mode)
        self.classifier.eval()
        return self

    def embed(self, lightness: Tensor) -> Tensor:
        """(B, 1, H, W) lightness in [-1, 1] -> (B, D) embedding of the gray image, without gradient."""
        with torch.no_grad():
            gray = F.interpolate((lightness + 1) / 2, size=self.input_size, mode="bilinear", align_corners=False)
            return self.classifier((gray.expand(-1, 3, -1, -1) - self.mean) / self.std)

    def forward(self, lightness: Tensor, features: Tensor) -> Tensor:
        """Fuse: lightness (B, 1, H, W) and features (B, C, h, w) -> (B, C, h, w)."""
        embedding = self.embed(lightness).to(features.dtype)
        grid = embedding[:, :, None, None].expand(-1, -1, *features.shape[-2:])
        return self.conv(torch.cat([features, grid], dim=1))


def build_fusion(name: str, pretrained: str, channels: int) -> GlobalFusion | None:
    """The fusion that ``model.fusion`` names, or None for "none".

    Args:
        name: "none", a key of :data:`CLASSIFIERS`, or a timm model name when timm is installed.
        pretrained: ``model.pretrained``; the classifier is randomly initialised for "none" and takes
            ImageNet weights otherwise (a state dict path holds the encoder's weights, not its own).
        channels: the bottleneck's channels.

    Raises:
        ConfigError: an unknown name, or ImageNet weights that cannot be found.
    """
    if name == "none":
        return None
    weights = "none" if pretrained == "none" else "imagenet"
    if name not in CLASSIFIERS:
        return _timm_fusion(name, weights, channels)
    spec = CLASSIFIERS[name]
    model = load_torchvision_model(spec.builder, weights, **spec.kwargs)
    embed_dim = model.fc.in_features
    model.fc = nn.Identity()
    return GlobalFusion(model, spec.input_size, spec.mean, spec.std, embed_dim, channels)


def _timm_fusion(name: str, weights: str, channels: int) -> GlobalFusion:
    try:
        import timm
    except ImportError:
        timm = None
    if timm is None or not timm.is_model(name):
        timm_names = "or any timm model name" if timm else "or a timm model name once timm is installed"
        raise ConfigError(
            f"model.fusion={name!r} is not valid; valid values: none, {', '.join(CLASSIFIERS)}, {timm_names}."
        )
    try:
        model = timm.create_model(name, pretrained=weights == "imagenet", num_classes=0)
    except (OSError, RuntimeError) as exc:
        raise ConfigError(
            f"model.fusion={name}: timm could not load its pretrained weights ({exc}); "
            "put them in the Hugging Face cache or use --set model.pretrained=none."
        ) from exc
    from timm.data import resolve_model_data_config

    data = resolve_model_data_config(model)
    return GlobalFusion(model, tuple(data["input_size"][1:]), data["mean"], data["std"], model.num_features, channels)
