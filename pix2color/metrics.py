"""Colorization metrics as the literature computes them, batched on the tensors' device.

Every per-image metric takes uint8 RGB batches (B, 3, H, W) and returns one float32 value per image
(B,). PSNR (20·log10(255/√MSE) on uint8 RGB, per image) and colorfulness (Hasler & Süsstrunk 2003) are
written out in their functions below, as the colorization literature computes them; SSIM comes from kornia
and CIEDE2000 from scikit-image, never hand-rolled. Their names and directions are in
:mod:`pix2color.metric_names`. LPIPS and FID are not computed: :func:`optional_metrics_status` says why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import kornia.metrics
import torch
from torch import Tensor

from pix2color import color

SSIM_WINDOW = 11

# torchvision's file names for the backbones LPIPS (AlexNet) and FID (Inception v3) are built on.
OPTIONAL_METRIC_WEIGHTS = {
    "lpips": "alexnet-owt-7be5be79.pth",
    "fid": "inception_v3_google-0cc3c7bd.pth",
}


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Peak signal-to-noise ratio on uint8 values, 20·log10(255/√MSE).

    Args:
        pred: (B, 3, H, W) uint8 RGB.
        target: (B, 3, H, W) uint8 RGB.

    Returns:
        (B,) float32 dB per image; identical images give inf.
    """
    _check_pair(pred, target)
    mse = (pred.double() - target.double()).pow(2).mean(dim=(1, 2, 3))
    return (10 * torch.log10(255.0**2 / mse)).float()


def colorfulness(rgb: Tensor) -> Tensor:
    """Hasler & Süsstrunk colorfulness with absolute opponent channels on 0..255.

    rg = |R − G|, yb = |½(R + G) − B|; CF = √(σ_rg² + σ_yb²) + 0.3·√(μ_rg² + μ_yb²), population σ.

    Args:
        rgb: (B, 3, H, W) uint8 RGB.

    Returns:
        (B,) float32 per image; 0 for a gray image.
    """
    _check_images(rgb, "rgb")
    return opponent_colorfulness(rgb.double()).float()


def opponent_colorfulness(rgb: Tensor, eps: float = 0.0) -> Tensor:
    """:func:`colorfulness` of float RGB on 0..255, differentiable (the colorfulness loss uses it).

    Args:
        rgb: (B, 3, H, W) float RGB on 0..255.
        eps: added under each square root; above 0 it keeps the gradient finite on gray images.

    Returns:
        (B,) in rgb's dtype.
    """
    r, g, b = rgb.flatten(2).unbind(1)
    rg = (r - g).abs()
    yb = (0.5 * (r + g) - b).abs()
    spread = (rg.var(dim=1, correction=0) + yb.var(dim=1, correction=0) + eps).sqrt()
    mean = (rg.mean(dim=1).square() + yb.mean(dim=1).square() + eps).sqrt()
    return spread + 0.3 * mean


def ssim(pred: Tensor, target: Tensor) -> Tensor:
    """Mean structural similarity per image, kornia's Gaussian 11×11 window on [0, 1] RGB.

    Only windows that fit inside the image count (``padding="valid"``, as Wang et al. crop the border).

    Args:
        pred: (B, 3, H, W) uint8 RGB, H and W at least 11.
        target: (B, 3, H, W) uint8 RGB.

    Returns:
        (B,) float32 in [-1, 1]; identical images give 1.
    """
    _check_pair(pred, target)
    if min(pred.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {tuple(pred.shape[-2:])}")
    with torch.autocast(pred.device.type, enabled=False):
        ssim_map = kornia.metrics.ssim(pred.float() / 255, target.float() / 255, SSIM_WINDOW, padding="valid")
    return ssim_map.mean(dim=(1, 2, 3))


def ciede2000(pred: Tensor, target: Tensor) -> Tensor:
    """Mean CIEDE2000 colour difference per image: kornia's Lab, scikit-image's ΔE2000.

    The Lab conversion runs batched on the device; ΔE2000 runs batched on the CPU in scikit-image.

    Args:
        pred: (B, 3, H, W) uint8 RGB.
        target: (B, 3, H, W) uint8 RGB.

    Returns:
        (B,) float32 on the inputs' device; identical images give 0.
    """
    from skimage.color import deltaE_ciede2000  # imported here: only evaluation needs scikit-image

    _check_pair(pred, target)
    lab_pred, lab_target = (color.rgb_to_lab(x).cpu().numpy() for x in (pred, target))
    delta = deltaE_ciede2000(lab_pred, lab_target, channel_axis=1)  # (B, H, W)
    return torch.from_numpy(delta.mean(axis=(1, 2))).float().to(pred.device)


def delta_colorfulness(pred_cf: Tensor, target_cf: Tensor) -> float:
    """ΔCF = |mean CF(pred) − mean CF(truth)| over a whole set.

    Args:
        pred_cf: (N,) colorfulness of the predictions.
        target_cf: (M,) colorfulness of the ground truth.
    """
    return abs(pred_cf.double().mean().item() - target_cf.double().mean().item())


def color_fidelity(summary: dict[str, float], start: dict[str, float], color_weight: float = 0.5) -> float:
    """A stage-2 score that values colour and fidelity together, each normalised by where the stage started.

    fidelity = (PSNR − PSNR_gray) / (PSNR_start − PSNR_gray): 1 at the start (stage 1), 0 at the gray image;
    color = 1 − ΔCF / ΔCF_start: 0 at the start, 1 at the truth's colorfulness. The score is
    (1 − color_weight)·fidelity + color_weight·color, so the start scores 1 − color_weight, and a
    checkpoint beats it only when the colour it gains outweighs the fidelity it loses. The PSNR span
    is at least 0.1 dB, so a start no better than gray still ranks by PSNR.

    Args:
        summary: validation means with ``psnr``, ``psnr_gray`` and ``delta_cf``.
        start: the same for the stage's starting weights.
        color_weight: the share of colour in the score, in [0, 1].
    """
    span = max(start["psnr"] - summary["psnr_gray"], 0.1)
    fidelity = (summary["psnr"] - summary["psnr_gray"]) / span
    color = 1 - summary["delta_cf"] / max(start["delta_cf"], 1e-6)
    return (1 - color_weight) * fidelity + color_weight * color


def _colorfulness_of_pred(pred: Tensor, target: Tensor) -> Tensor:
    """Colorfulness of ``pred`` alone, with the (pred, target) signature that :data:`METRICS` shares."""
    _check_pair(pred, target)
    return colorfulness(pred)


METRICS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "psnr": psnr,
    "ssim": ssim,
    "colorfulness": _colorfulness_of_pred,
    "ciede2000": ciede2000,
}


def image_metrics(pred: Tensor, target: Tensor, names: Sequence[str] = tuple(METRICS)) -> dict[str, Tensor]:
    """Per-image metrics by name.

    Args:
        pred: (B, 3, H, W) uint8 RGB predictions.
        target: (B, 3, H, W) uint8 RGB ground truth.
        names: keys of :data:`METRICS`.

    Returns:
        name -> (B,) float32 values, in the order of ``names``.

    Raises:
        ValueError: an unknown name, listing the valid ones.
    """
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric '{unknown[0]}'; valid: {', '.join(METRICS)}")
    return {name: METRICS[name](pred, target) for name in names}


def summarize(per_image: dict[str, Tensor], target_colorfulness: Tensor | None = None) -> dict[str, float]:
    """Average per-image metrics over a set, adding ΔCF when the truth's colorfulness is given.

    Args:
        per_image: name -> (N,) values, e.g. :func:`image_metrics` results concatenated over batches.
        target_colorfulness: (N,) colorfulness of the ground truth, or None.

    Returns:
        name -> mean, plus ``delta_cf`` when ``per_image`` has ``colorfulness`` and the truth's is given.
    """
    summary = {name: values.double().mean().item() for name, values in per_image.items()}
    if target_colorfulness is not None and "colorfulness" in per_image:
        summary["delta_cf"] = delta_colorfulness(per_image["colorfulness"], target_colorfulness)
    return summary


CDC_DISTANCES = (1, 2, 4)
HISTOGRAM_BINS = 256


def rgb_histograms(frames: Tensor) -> Tensor:
    """Normalised 256-bin histograms of each RGB channel.

    Args:
        frames: (T, 3, H, W) uint8 RGB.

    Returns:
        (T, 3, 256) float64, each row summing to 1.
    """
    _check_images(frames, "frames")
    values = frames.flatten(2).long()
    counts = torch.zeros(*values.shape[:2], HISTOGRAM_BINS, dtype=torch.float64, device=frames.device)
    counts.scatter_add_(2, values, torch.ones_like(values, dtype=torch.float64))
    return counts / values.shape[2]


def jensen_shannon(p: Tensor, q: Tensor) -> Tensor:
    """Jensen-Shannon divergence (natural log) of distributions along the last dim: ½KL(p‖m) + ½KL(q‖m)."""
    m = (p + q) / 2

    def kl(a: Tensor) -> Tensor:
        return torch.where(a > 0, a * (a / m).log(), torch.zeros_like(a)).sum(dim=-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


def cdc(histograms: Tensor, distances: Sequence[int] = CDC_DISTANCES) -> float:
    """Colour distribution consistency of a clip (lower is steadier), as Liu et al. 2021 define it.

    For each d: the mean over t and the R, G, B channels of JS(hist_t, hist_t+d); then the mean over d.

    Args:
        histograms: (T, 3, 256) from :func:`rgb_histograms` of the clip's frames in order, T > max(distances).
        distances: the frame gaps d.

    Raises:
        ValueError: too few frames.
    """
    if histograms.shape[0] <= max(distances):
        raise ValueError(f"cdc needs more than {max(distances)} frames, got {histograms.shape[0]}")
    per_distance = [jensen_shannon(histograms[:-d], histograms[d:]).mean() for d in distances]
    return torch.stack(per_distance).mean().item()


def warp_error(warped_previous: Tensor, current: Tensor, valid: Tensor) -> Tensor:
    """Mean squared RGB difference (on [0, 1]) between frame t and frame t-1 warped onto it, over valid pixels.

    Lai et al. 2018's E_warp: the flow and its occlusion mask come from the source clip.

    Args:
        warped_previous: (B, 3, H, W) uint8, frame t-1 warped onto frame t.
        current: (B, 3, H, W) uint8, frame t.
        valid: (B, 1, H, W) bool or 0/1, the non-occluded pixels.

    Returns:
        (B,) float32; 0 where no pixel is valid.
    """
    _check_pair(warped_previous, current)
    squared = ((warped_previous.double() - current.double()) / 255).square().mean(dim=1, keepdim=True)
    mask = valid.double()
    return ((squared * mask).sum(dim=(1, 2, 3)) / mask.sum(dim=(1, 2, 3)).clamp(min=1)).float()


def optional_metrics_status(torch_home: str | Path | None = None) -> dict[str, str]:
    """Why LPIPS and FID are not in the report: their backbone weights, and their code, are missing.

    Neither is computed: the weights cannot be downloaded here, and torchvision's Inception is not the
    TensorFlow network published FIDs use, so its numbers would not compare with the papers anyway.

    Args:
        torch_home: defaults to where torchvision looks (``$TORCH_HOME``, else ``~/.cache/torch``).

    Returns:
        name -> "skipped: missing <file> in <dir>", or "skipped: <file> found, but ... not computed".
    """
    folder = Path(torch_home) / "hub" if torch_home is not None else Path(torch.hub.get_dir())
    folder = folder / "checkpoints"
    return {
        name: f"skipped: {file} found, but pix2color does not compute {name}"
        if (folder / file).is_file()
        else f"skipped: missing {file} in {folder}"
        for name, file in OPTIONAL_METRIC_WEIGHTS.items()
    }


def _check_images(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3 or x.dtype != torch.uint8:
        shape = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a (B, 3, H, W) uint8 tensor, got {shape}")


def _check_pair(pred: Tensor, target: Tensor) -> None:
    _check_images(pred, "pred")
    _check_images(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
