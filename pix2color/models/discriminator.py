"""The conditional PatchGAN discriminator of pix2pix, on cat(lightness, chroma), and with ``disc.hints`` the colour
hints the generator was given.

The layout follows junyanz/pytorch-CycleGAN-and-pix2pix's ``NLayerDiscriminator``: 4x4 convs, LeakyReLU
0.2, no batch or instance norm on the first and last conv (spectral norm, the default, wraps every conv);
``n_layers=3`` gives 70x70 receptive fields and a 30x30 map of logits for a 256x256 input.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from pix2color.config import DiscNorm, DiscriminatorConfig
from pix2color.hints import HINT_CHANNELS


def _batch(conv: nn.Conv2d) -> list[nn.Module]:
    return [conv, nn.BatchNorm2d(conv.out_channels)]


def _instance(conv: nn.Conv2d) -> list[nn.Module]:
    return [conv, nn.InstanceNorm2d(conv.out_channels)]


def _spectral(conv: nn.Conv2d) -> list[nn.Module]:
    return [spectral_norm(conv)]


def _none(conv: nn.Conv2d) -> list[nn.Module]:
    return [conv]


# Norm name -> builder turning a conv into its normalised layers.
NORMS: dict[DiscNorm, Callable[[nn.Conv2d], list[nn.Module]]] = {
    "batch": _batch,
    "instance": _instance,
    "spectral": _spectral,
    "none": _none,
}


class PatchDiscriminator(nn.Module):
    """Scores overlapping patches of an (L, chroma) image, given its hints or not, as real or fake.

    Args:
        layers: maps (B, C, H, W) cat(L, chroma[, hints]) to (B, 1, h, w) logits.
    """

    def __init__(self, layers: nn.Sequential):
        super().__init__()
        self.layers = layers

    def forward(self, lightness: Tensor, chroma: Tensor, hints: Tensor | None = None) -> Tensor:
        """lightness (B, 1, H, W), chroma (B, 2, H, W) and, for a D built with ``disc.hints``, the hints (B, 3, H, W)
        -> logits (B, 1, h, w), one per patch."""
        inputs = torch.cat([lightness, chroma, *([] if hints is None else [hints])], dim=1)
        if inputs.shape[1] != self.layers[0].in_channels:
            built = "with disc.hints" if self.layers[0].in_channels > 3 else "without disc.hints"
            raise ValueError(f"this discriminator was built {built}; give it hints exactly when it was built with them")
        return self.layers(inputs)


def build_discriminator(cfg: DiscriminatorConfig) -> PatchDiscriminator:
    """The PatchGAN that ``cfg`` describes (``n_layers``, ``ndf``, ``norm``, ``hints``), with N(0, 0.02) conv
    weights."""
    norm = NORMS[cfg.norm]
    edge = _spectral if cfg.norm == "spectral" else _none  # the first and last convs take no BatchNorm
    bias = cfg.norm != "batch"  # BatchNorm's shift makes a conv bias redundant
    widths = [cfg.ndf * min(2**i, 8) for i in range(cfg.n_layers + 1)]
    inputs = 3 + (HINT_CHANNELS if cfg.hints else 0)
    layers = [*edge(_conv(inputs, widths[0], stride=2, bias=True)), nn.LeakyReLU(0.2, inplace=True)]
    for i in range(1, cfg.n_layers + 1):
        stride = 2 if i < cfg.n_layers else 1
        layers += [*norm(_conv(widths[i - 1], widths[i], stride, bias)), nn.LeakyReLU(0.2, inplace=True)]
    layers += edge(_conv(widths[-1], 1, stride=1, bias=True))
    return PatchDiscriminator(nn.Sequential(*layers))


def _conv(in_channels: int, out_channels: int, stride: int, bias: bool) -> nn.Conv2d:
    """A 4x4 conv with padding 1 and pix2pix's N(0, 0.02) weights."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size=4, stride=stride, padding=1, bias=bias)
    nn.init.normal_(conv.weight, 0.0, 0.02)
    if bias:
        nn.init.zeros_(conv.bias)
    return conv
