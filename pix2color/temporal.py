"""Temporal consistency for video: smooth the predicted chroma over time, reset at scene cuts.

The model colors each frame alone, so its chroma jitters from frame to frame (flicker). A
:class:`TemporalSmoother` blends each frame's chroma, at the render size, with the previous frame's
smoothed chroma before the join with the full-resolution lightness, so lightness and detail always come
from the source frame. Modes:

- ``off``: the model's chroma as it is;
- ``ema``: an exponential moving average of the chroma per pixel, ``s * previous + (1 - s) * current``;
- ``flow``: the previous smoothed chroma is first warped onto the current frame by dense optical flow
  computed on the lightness (OpenCV's Farneback), and blended only where the flow passes a
  forward-backward check (Sundaram et al. 2010), so moving objects do not smear.

A scene cut, a jump of the lightness histogram (total variation distance above ``scene_cut``), resets
the smoothing, so no color bleeds across a cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pix2color.video_options import TemporalMode, check_temporal

HISTOGRAM_BINS = 64
FB_RELATIVE = 0.01  # forward-backward check: |f + b|^2 < FB_RELATIVE (|f|^2 + |b|^2) + FB_ABSOLUTE
FB_ABSOLUTE = 0.5
FARNEBACK = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2}


def lightness_histogram(lightness: Tensor) -> Tensor:
    """Normalized histograms of lightness (B, 1, H, W) in [-1, 1] -> (B, HISTOGRAM_BINS) float32."""
    bins = ((lightness.flatten(1).float() + 1) * (HISTOGRAM_BINS / 2)).long().clamp(0, HISTOGRAM_BINS - 1)
    counts = torch.zeros(bins.shape[0], HISTOGRAM_BINS, device=bins.device).scatter_add_(
        1, bins, torch.ones_like(bins, dtype=torch.float32)
    )
    return counts / bins.shape[1]


def histogram_distance(first: Tensor, second: Tensor) -> Tensor:
    """Total variation distance of normalized histograms (..., bins): 0 identical, 1 disjoint."""
    return 0.5 * (first - second).abs().sum(dim=-1)


def to_gray8(lightness: Tensor) -> np.ndarray:
    """One lightness map (1, 1, H, W) in [-1, 1] -> (H, W) uint8 for OpenCV."""
    return ((lightness[0, 0].float().cpu().numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


def dense_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Farneback flow (H, W, 2) as (dx, dy): pixel p of ``source`` shows what ``target`` shows at p + flow(p).

    Args:
        source, target: (H, W) uint8 gray images.
    """
    import cv2  # the video extra; imported here so that photos never need it

    return cv2.calcOpticalFlowFarneback(source, target, None, flags=0, **FARNEBACK)


def warp(image: Tensor, flow: Tensor) -> Tensor:
    """Sample ``image`` (B, C, H, W) at p + flow(p), flow (B, 2, H, W) in pixels; borders clamp."""
    _, _, h, w = image.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=image.device, dtype=flow.dtype),
        torch.arange(w, device=image.device, dtype=flow.dtype),
        indexing="ij",
    )
    x = (xs + flow[:, 0] + 0.5) * (2 / w) - 1
    y = (ys + flow[:, 1] + 0.5) * (2 / h) - 1
    grid = torch.stack((x, y), dim=-1).to(image.dtype)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)


def backward_flow(current: np.ndarray, previous: np.ndarray) -> tuple[Tensor, Tensor]:
    """Flow from the current frame to the previous one and where it is reliable.

    Args:
        current, previous: (H, W) uint8 gray frames.

    Returns:
        flow (1, 2, H, W) float32 in pixels (current p shows previous p + flow), and a (1, 1, H, W) float32
        mask: 1 where following the flow back and then the forward flow returns to p (not occluded).
    """
    to_previous = torch.from_numpy(dense_flow(current, previous)).permute(2, 0, 1)[None]
    to_current = torch.from_numpy(dense_flow(previous, current)).permute(2, 0, 1)[None]
    returned = warp(to_current, to_previous)
    mismatch = (to_previous + returned).square().sum(1, keepdim=True)
    scale = to_previous.square().sum(1, keepdim=True) + returned.square().sum(1, keepdim=True)
    return to_previous, (mismatch < FB_RELATIVE * scale + FB_ABSOLUTE).float()


@dataclass
class TemporalSmoother:
    """Smooths chroma frame after frame; feed it the frames of one clip in order, batch after batch.

    Args:
        mode: "off", "ema" or "flow".
        strength: s in [0, 1): the weight of the previous frame's smoothed chroma.
        scene_cut: reset when the lightness histograms of consecutive frames differ by more than this
            total variation distance, in (0, 1].
    """

    mode: TemporalMode = "flow"
    strength: float = 0.6
    scene_cut: float = 0.25
    previous_chroma: Tensor | None = None  # (1, 2, S, S): the last frame's smoothed chroma
    previous_lightness: Tensor | None = None  # (1, 1, S, S)
    cuts: int = 0  # scene cuts seen so far (the first frame does not count)

    def __post_init__(self) -> None:
        check_temporal(self.mode, self.strength, self.scene_cut)

    def __call__(self, lightness: Tensor, chroma: Tensor) -> Tensor:
        """Smooth a batch of consecutive frames.

        Args:
            lightness: (B, 1, S, S) render-size lightness in [-1, 1], as the model saw it.
            chroma: (B, 2, S, S) the model's chroma for those frames.

        Returns:
            (B, 2, S, S) smoothed chroma; with mode "off", ``chroma`` itself.
        """
        if self.mode == "off":
            return chroma
        out = torch.empty_like(chroma)
        cut = self._cuts(lightness)
        for i in range(chroma.shape[0]):
            current, light = chroma[i : i + 1], lightness[i : i + 1]
            if self.previous_chroma is None or cut[i]:
                self.cuts += self.previous_chroma is not None
                out[i : i + 1] = current
            else:
                out[i : i + 1] = self._blend(current, light)
            self.previous_chroma, self.previous_lightness = out[i : i + 1], light
        return out

    def state_dict(self) -> dict[str, Tensor | int]:
        """What the next frame depends on (to resume a clip in another process)."""
        state = {"cuts": self.cuts}
        if self.previous_chroma is not None:
            state |= {"chroma": self.previous_chroma.cpu(), "lightness": self.previous_lightness.cpu()}
        return state

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        """Continue after the frame :meth:`state_dict` was taken at."""
        self.cuts = int(state["cuts"])
        self.previous_chroma = state["chroma"].to(device) if "chroma" in state else None
        self.previous_lightness = state["lightness"].to(device) if "lightness" in state else None

    def _cuts(self, lightness: Tensor) -> list[bool]:
        """Whether each frame of the batch starts a new scene (against the frame before it)."""
        histograms = lightness_histogram(lightness)
        if self.previous_lightness is None:
            before = torch.cat([histograms[:1], histograms[:-1]])  # the first frame has nothing to cut from
        else:
            before = torch.cat([lightness_histogram(self.previous_lightness), histograms[:-1]])
        return (histogram_distance(histograms, before) > self.scene_cut).tolist()

    def _blend(self, chroma: Tensor, lightness: Tensor) -> Tensor:
        """One frame's chroma (1, 2, S, S) blended with the previous smoothed chroma."""
        previous = self.previous_chroma
        if self.mode == "ema":
            return self.strength * previous + (1 - self.strength) * chroma
        flow, reliable = backward_flow(to_gray8(lightness), to_gray8(self.previous_lightness))
        warped = warp(previous, flow.to(previous.device))
        weight = self.strength * reliable.to(previous.device)
        return weight * warped + (1 - weight) * chroma
