"""The only module that knows Lab and LUV: batched RGB <-> (L, chroma) on any device, with kornia.

The generator sees L scaled to [-1, 1] and predicts the two chroma channels (ab for Lab, uv for LUV)
scaled to about [-1, 1], with 0 meaning neutral gray in both spaces. Both directions run in float32
(float64 stays float64) with autocast off, whatever the caller's precision, because the colour
transforms are sensitive to rounding and cost little next to the model.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import kornia.color
import torch
from torch import Tensor


@dataclass(frozen=True)
class _Space:
    """How one colour space maps to the normalised (L, chroma) the model sees."""

    to_space: object  # kornia RGB -> (L, c1, c2) on (B, 3, H, W)
    from_space: object  # kornia (L, c1, c2) -> RGB
    chroma_center: tuple[float, float]
    chroma_scale: tuple[float, float]


# Chroma scales map the range that the sRGB cube reaches into [-1, 1] while keeping the centre at 0,
# so that gray is chroma 0 (a model predicting zeros gives a gray image) in both spaces:
# Lab a in [-86.2, 98.2], b in [-107.9, 94.5]; LUV u in [-83.1, 175.0], v in [-134.1, 107.4].
SPACES = {
    "lab": _Space(kornia.color.rgb_to_lab, kornia.color.lab_to_rgb, (0.0, 0.0), (110.0, 110.0)),
    "luv": _Space(kornia.color.rgb_to_luv, kornia.color.luv_to_rgb, (0.0, 0.0), (180.0, 140.0)),
}
L_CENTER = 50.0  # L is 0..100 in both spaces
L_SCALE = 50.0


def rgb_to_l_chroma(rgb: Tensor, space: str = "lab") -> tuple[Tensor, Tensor]:
    """Split RGB images into normalised lightness and chroma.

    Args:
        rgb: (B, 3, H, W), uint8 in 0..255 or float in [0, 1].
        space: "lab" or "luv".

    Returns:
        L: (B, 1, H, W) in [-1, 1]; chroma: (B, 2, H, W), about [-1, 1]. float32, or float64 for
        float64 input.

    Raises:
        ValueError: a wrong shape, an integer dtype other than uint8, or an unknown space.
    """
    spec = _space(space)
    _check_images(rgb, 3, "rgb")
    with _full_precision(rgb):
        lab = spec.to_space(_as_float(rgb))
        center, scale = _chroma_constants(spec, lab)
        return (lab[:, :1] - L_CENTER) / L_SCALE, (lab[:, 1:] - center) / scale


def l_chroma_to_rgb(lightness: Tensor, chroma: Tensor, space: str = "lab") -> Tensor:
    """Join normalised lightness and chroma back into RGB.

    Args:
        lightness: (B, 1, H, W) in [-1, 1].
        chroma: (B, 2, H, W), normalised as :func:`rgb_to_l_chroma` returns it.
        space: "lab" or "luv".

    Returns:
        (B, 3, H, W) RGB clipped to [0, 1]; float32, or float64 when both inputs are float64.

    Raises:
        ValueError: a wrong shape, shapes that do not match, or an unknown space.
    """
    spec = _space(space)
    _check_images(lightness, 1, "lightness")
    _check_images(chroma, 2, "chroma")
    if lightness.shape[0] != chroma.shape[0] or lightness.shape[2:] != chroma.shape[2:]:
        raise ValueError(
            f"lightness {tuple(lightness.shape)} and chroma {tuple(chroma.shape)} must share batch, height and width"
        )
    with _full_precision(lightness):
        dtype = torch.float64 if lightness.dtype == chroma.dtype == torch.float64 else torch.float32
        lightness, chroma = lightness.to(dtype), chroma.to(dtype)
        center, scale = _chroma_constants(spec, chroma)
        lab = torch.cat([lightness * L_SCALE + L_CENTER, chroma * scale + center], dim=1)
        return spec.from_space(lab).clamp(0, 1)


@functools.cache
def chroma_grid(space: str = "lab", step: float = 10.0, levels: int = 128) -> tuple[Tensor, Tensor]:
    """The cells of a square grid over the chroma plane that hold at least one sRGB colour (cached).

    The cells are found by converting an RGB cube of ``levels`` steps per channel: 262 in Lab with
    ``step`` 10, the sRGB part of the 313 in-gamut bins of Zhang et al.'s "Colorful Image Colorization".

    Args:
        space: "lab" or "luv".
        step: the cell's side in the space's own units (ab for Lab); cells are centred on multiples of it.
        levels: RGB levels per channel converted to find the cells.

    Returns:
        centers: (Q, 2) float32 cell centers, normalised as :func:`rgb_to_l_chroma` returns chroma, sorted.
        spacing: (2,) float32 the cell's side along each chroma axis, normalised likewise.
    """
    spec = _space(space)
    ramp = torch.linspace(0, 1, levels, dtype=torch.float64)
    cube = torch.cartesian_prod(ramp, ramp, ramp).T.reshape(1, 3, -1, 1)
    chroma = spec.to_space(cube)[0, 1:, :, 0].T  # (levels**3, 2) in the space's units
    center = torch.tensor(spec.chroma_center, dtype=torch.float64)
    scale = torch.tensor(spec.chroma_scale, dtype=torch.float64)
    cells = torch.unique(torch.round((chroma - center) / step), dim=0)  # (Q, 2) integer cell coordinates
    return (cells * step / scale).float(), (step / scale).float()


def rgb_to_lightness(rgb: Tensor, space: str = "lab") -> Tensor:
    """Normalised lightness alone: (B, 3, H, W) RGB -> (B, 1, H, W) in [-1, 1]."""
    return rgb_to_l_chroma(rgb, space)[0]


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """CIE Lab in its own units (L 0..100, ab about ±110), for metrics such as CIEDE2000.

    Args:
        rgb: (B, 3, H, W), uint8 in 0..255 or float in [0, 1].

    Returns:
        (B, 3, H, W) float32 Lab.
    """
    _check_images(rgb, 3, "rgb")
    with _full_precision(rgb):
        return kornia.color.rgb_to_lab(_as_float(rgb))


_EPS = 1e-12  # under every square root that can reach 0, so that its gradient stays finite


def delta_e2000(lab1: Tensor, lab2: Tensor) -> Tensor:
    """CIEDE2000 colour difference per pixel (Sharma, Wu and Dalal's formulation), differentiable in both.

    For the CIEDE2000 loss: scikit-image, which the metric uses, computes it in NumPy, and no maintained
    library has it in torch. The tests hold it to scikit-image's values and Sharma's table. Where it is not
    differentiable (zero chroma, identical colours) the gradient is 0, never NaN. It runs in float32 (or
    float64), with autocast off, whatever the inputs' precision.

    Args:
        lab1: (B, 3, H, W) Lab in its own units, as :func:`rgb_to_lab` returns it.
        lab2: the same shape.

    Returns:
        (B, H, W) ΔE2000; about 1e-6 for identical colours.
    """
    with _full_precision(lab1):
        dtype = torch.float64 if lab1.dtype == lab2.dtype == torch.float64 else torch.float32
        (l1, a1, b1), (l2, a2, b2) = lab1.to(dtype).unbind(1), lab2.to(dtype).unbind(1)
        stretch = 1.5 - 0.5 * _chroma_weight((_norm(a1, b1) + _norm(a2, b2)) / 2)  # 1 + G: a is stretched near gray
        a1, a2 = a1 * stretch, a2 * stretch
        c1, c2 = _norm(a1, b1), _norm(a2, b2)
        h1, h2 = _hue(a1, b1), _hue(a2, b2)
        chromatic = (a1**2 + b1**2) * (a2**2 + b2**2) > 0  # both have a hue
        hue_diff = h2 - h1
        wraps = hue_diff.abs() > torch.pi  # the shorter way round crosses 0
        delta_h = torch.where(chromatic, hue_diff - 2 * torch.pi * torch.sign(hue_diff) * wraps, 0)  # Δh'
        hue_mean = torch.where(chromatic, (h1 + h2) / 2 + torch.pi * wraps, h1 + h2)  # h̄'
        c_mean, l_mean = (c1 + c2) / 2, (l1 + l2) / 2
        t = (
            1
            - 0.17 * torch.cos(hue_mean - torch.pi / 6)
            + 0.24 * torch.cos(2 * hue_mean)
            + 0.32 * torch.cos(3 * hue_mean + torch.pi / 30)
            - 0.20 * torch.cos(4 * hue_mean - 63 * torch.pi / 180)
        )
        rotation = torch.deg2rad(30 * torch.exp(-(((torch.rad2deg(hue_mean) % 360 - 275) / 25) ** 2)))  # Δθ
        s_l = 1 + 0.015 * (l_mean - 50) ** 2 / torch.sqrt(20 + (l_mean - 50) ** 2)
        term_l = (l2 - l1) / s_l
        term_c = (c2 - c1) / (1 + 0.045 * c_mean)
        term_h = 2 * torch.sqrt(c1 * c2) * torch.sin(delta_h / 2) / (1 + 0.015 * c_mean * t)  # ΔH' / S_H
        r_t = -torch.sin(2 * rotation) * 2 * _chroma_weight(c_mean)
        return torch.sqrt(term_l**2 + term_c**2 + term_h**2 + r_t * term_c * term_h + _EPS)


def _norm(a: Tensor, b: Tensor) -> Tensor:
    """sqrt(a² + b²), at least 1e-6."""
    return torch.sqrt(a**2 + b**2 + _EPS)


def _chroma_weight(chroma: Tensor) -> Tensor:
    """sqrt(C^7 / (C^7 + 25^7)) of chroma C >= 0, CIEDE2000's weight of high chroma, with a finite gradient at 0."""
    return chroma**3.5 / torch.sqrt(chroma**7 + 25.0**7)


def _hue(a: Tensor, b: Tensor) -> Tensor:
    """Hue angle in [0, 2 pi); near a = b = 0, where atan2's gradient would overflow, that of (1, b)."""
    gray = a**2 + b**2 < _EPS
    return torch.remainder(torch.atan2(b, torch.where(gray, torch.ones_like(a), a)), 2 * torch.pi)


def match_luminance(rgb: Tensor, reference: Tensor) -> Tensor:
    """Give ``rgb`` the luminance of ``reference`` again where clipping to the sRGB gamut changed it.

    :func:`l_chroma_to_rgb` clips colours outside the sRGB cube, which makes them darker or
    lighter. Only pixels with a channel at 0 or 1 can have been clipped; for those, the linear colour
    is mixed towards black (too light) or white (too dark), which restores the luminance Y, and so
    L, exactly, keeps the hue and stays inside the cube.

    Args:
        rgb: (B, 3, H, W) float in [0, 1]; changed in place.
        reference: (B, 3, H, W) uint8, the photo whose lightness to keep.

    Returns:
        ``rgb``.
    """
    clipped = ((rgb == 0) | (rgb == 1)).any(dim=1)  # (B, H, W)
    channels = rgb.transpose(0, 1)  # (3, B, H, W), a view: assigning to it writes rgb
    target = reference.transpose(0, 1)[:, clipped, None]  # (3, N, 1): N pixels as an image
    channels[:, clipped] = _with_luminance(channels[:, clipped, None], target)[..., 0]
    return rgb


def _with_luminance(color: Tensor, reference: Tensor) -> Tensor:
    """Colours (3, N, 1) float in [0, 1] moved to the luminance of reference (3, N, 1) uint8."""
    linear = kornia.color.rgb_to_linear_rgb(color)
    y = _luminance(linear)
    target = _luminance(kornia.color.rgb_to_linear_rgb(reference.float() / 255))
    darker = linear * (target / y.clamp_min(1e-12))
    lighter = linear + (1 - linear) * ((target - y) / (1 - y).clamp_min(1e-12))
    return kornia.color.linear_rgb_to_rgb(torch.where(y > target, darker, lighter)).clamp(0, 1)


def _luminance(linear: Tensor) -> Tensor:
    """CIE Y of linear RGB (*, 3, H, W) -> (*, 1, H, W)."""
    return kornia.color.rgb_to_xyz(linear)[..., 1:2, :, :]


def to_uint8(rgb: Tensor) -> Tensor:
    """Float RGB in [0, 1] -> uint8 in 0..255, rounding to nearest."""
    return (rgb.float().clamp(0, 1) * 255).round().to(torch.uint8)


def _as_float(rgb: Tensor) -> Tensor:
    """uint8 0..255 -> float32 in [0, 1]; float64 stays float64; other floats become float32."""
    if rgb.dtype == torch.uint8:
        return rgb.float() / 255
    if not rgb.is_floating_point():
        raise ValueError(f"rgb must be uint8 in 0..255 or float in [0, 1], got {rgb.dtype}")
    return rgb if rgb.dtype == torch.float64 else rgb.float()


def _space(name: str) -> _Space:
    if name not in SPACES:
        raise ValueError(f"unknown color space '{name}'; valid: {', '.join(SPACES)}")
    return SPACES[name]


def _chroma_constants(spec: _Space, like: Tensor) -> tuple[Tensor, Tensor]:
    center = torch.tensor(spec.chroma_center, device=like.device, dtype=like.dtype).view(1, 2, 1, 1)
    scale = torch.tensor(spec.chroma_scale, device=like.device, dtype=like.dtype).view(1, 2, 1, 1)
    return center, scale


def _check_images(x: Tensor, channels: int, name: str) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != channels:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a (B, {channels}, H, W) tensor, got {shape}")


def _full_precision(like: Tensor) -> contextlib.AbstractContextManager:
    """Autocast off on the tensor's device, so kornia's transforms run in float32."""
    if like.device.type in ("cpu", "cuda"):
        return torch.autocast(like.device.type, enabled=False)
    return contextlib.nullcontext()
