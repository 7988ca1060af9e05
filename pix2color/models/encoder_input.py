"""How the encoder reads the model's lightness (``model.encoder_input``).

``rgb``: the encoder sees exactly what its ImageNet training saw for a gray photo, the gray image in RGB
normalised as the weights expect, through its unchanged RGB first conv. ``lightness``: L in [-1, 1] goes into
a first conv whose RGB kernels are summed (the layout of checkpoints written before the key existed).
"""

from __future__ import annotations

from collections.abc import Callable

import kornia.color
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pix2color.color import l_chroma_to_rgb
from pix2color.config import EncoderInput

Normalization = tuple[float, float, float]  # per RGB channel, for RGB in [0, 1]


class GrayImage(nn.Module):
    """Normalised lightness -> the gray image in RGB, normalised as an encoder's ImageNet weights expect.

    L is turned back into the sRGB gray it came from (:func:`lightness_to_gray`), then a fixed 1x1 conv spreads it
    over three channels as (gray - mean) / std. Its weight and bias are non-persistent buffers: nothing to train
    or save; fastai reads the one input channel of the body off the weight.

    Args:
        mean: the weights' input mean per RGB channel.
        std: their input standard deviation per RGB channel.
    """

    def __init__(self, mean: Normalization, std: Normalization):
        super().__init__()
        scale = 1 / torch.tensor(std)
        self.register_buffer("weight", scale.view(3, 1, 1, 1), persistent=False)
        self.register_buffer("bias", -torch.tensor(mean) * scale, persistent=False)

    def forward(self, lightness: Tensor) -> Tensor:
        """(B, 1, H, W) lightness in [-1, 1] -> (B, 3, H, W) normalised gray RGB, in the lightness's dtype."""
        return F.conv2d(lightness_to_gray(lightness).to(lightness.dtype), self.weight, self.bias)


def lightness_to_gray(lightness: Tensor) -> Tensor:
    """(B, 1, H, W) lightness in [-1, 1] -> (B, 1, H, W) the sRGB gray in [0, 1] whose lightness it is.

    Zero chroma through :mod:`pix2color.color` gives a colour of that lightness (CIE L* in Lab and LUV alike) but
    up to 2.4e-5 off gray, as kornia's RGB matrix and Lab white point differ in the fifth digit; its luminance Y,
    made gray, is exact up to rounding (within 3.4e-6 of white, where the colour is clamped, off by at most that).
    """
    chroma = lightness.new_zeros(lightness.shape[0], 2, *lightness.shape[2:])
    luminance = kornia.color.rgb_to_xyz(kornia.color.rgb_to_linear_rgb(l_chroma_to_rgb(lightness, chroma)))[:, 1:2]
    return kornia.color.linear_rgb_to_rgb(luminance.expand(-1, 3, -1, -1))[:, :1]


def gray_image_input(conv: nn.Conv2d, mean: Normalization, std: Normalization) -> nn.Module:
    """``conv``, the encoder's RGB first conv, reading the gray image that :class:`GrayImage` makes of L."""
    return nn.Sequential(GrayImage(mean, std), conv)


def summed_kernels_input(conv: nn.Conv2d, mean: Normalization, std: Normalization) -> nn.Conv2d:
    """A copy of ``conv`` reading L directly: its RGB kernels summed, its bias kept (``mean``, ``std`` unused).

    On a gray image (R = G = B) the summed kernel gives what the RGB kernels gave. fastai's
    ``create_body(n_in=1)`` sums too, but gives the new conv a random bias (VGG's first conv has one).
    """
    gray = nn.Conv2d(
        1,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    with torch.no_grad():
        gray.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        if conv.bias is not None:
            gray.bias.copy_(conv.bias)
    return gray


# model.encoder_input -> what replaces the body's RGB first conv, given the normalisation its weights expect
ENCODER_INPUTS: dict[EncoderInput, Callable[[nn.Conv2d, Normalization, Normalization], nn.Module]] = {
    "rgb": gray_image_input,
    "lightness": summed_kernels_input,
}


def read_lightness(body: nn.Module, encoder_input: EncoderInput, mean: Normalization, std: Normalization) -> None:
    """Make ``body``, which reads RGB normalised by ``mean`` and ``std``, read (B, 1, H, W) lightness in [-1, 1].

    Its first conv is replaced by what :data:`ENCODER_INPUTS` makes of it, in place, so the body keeps its
    stages (DynamicUnet hooks them by the sizes they give).
    """
    name, conv = next((n, m) for n, m in body.named_modules() if isinstance(m, nn.Conv2d))
    body.set_submodule(name, ENCODER_INPUTS[encoder_input](conv, mean, std))
