"""How much a video flickers, streamed frame by frame: CDC, warp error, colorfulness, and PSNR against a truth.

CDC (:func:`pix2color.metrics.cdc`) compares the color histograms of frames 1, 2 and 4 apart; the warp
error (:func:`pix2color.metrics.warp_error`) compares each frame with the previous one warped onto it by
the source's optical flow, over the pixels the forward-backward check finds unoccluded. The flow comes
from the truth's lightness when a truth is given, else from the clip's own (a colorized clip keeps its
source's lightness). Flicker can be bought by washing color out, so colorfulness is reported beside it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pix2color import color, metrics
from pix2color.errors import DataError
from pix2color.temporal import backward_flow, to_gray8, warp
from pix2color.video import decode_frames


def clip_scores(clip: str | Path, truth: str | Path | None = None, limit: int = 0) -> dict[str, float]:
    """CDC, warp error and mean colorfulness of ``clip``; with ``truth``, also the mean per-frame PSNR.

    Args:
        clip: a video file or image sequence.
        truth: the color original, with as many frames of the same size.
        limit: score the first ``limit`` frames only (0: all).

    Raises:
        DataError: an unreadable clip, fewer than 5 frames, or a truth that does not match the clip.
    """
    frames = _tensors(decode_frames(clip))
    references = _tensors(decode_frames(truth)) if truth is not None else None
    pairs = zip(frames, references, strict=True) if references is not None else ((f, f) for f in frames)
    try:
        scored = _score_frames(itertools.islice(pairs, limit or None), clip, truth)
    except ValueError as exc:  # zip's strict check
        raise DataError(f"{clip} and {truth} have different frame counts; pass the clip's color original.") from exc
    if scored["frames"] <= max(metrics.CDC_DISTANCES):
        raise DataError(f"{clip} has {scored['frames']} frames; the flicker measure needs at least 5.")
    return scored


def _score_frames(pairs: Iterator[tuple[Tensor, Tensor]], clip, truth) -> dict[str, float]:
    """The scores of (frame, reference) pairs in order; reference is the frame itself without a truth."""
    histograms, warp_errors, colorfulness, psnrs = [], [], [], []
    previous = previous_gray = None
    for frame, reference in pairs:
        if frame.shape != reference.shape:
            raise DataError(f"{truth} has frames of {tuple(reference.shape[-2:])}, {clip} {tuple(frame.shape[-2:])}.")
        gray = to_gray8(color.rgb_to_lightness(reference))
        histograms.append(metrics.rgb_histograms(frame))
        colorfulness.append(metrics.colorfulness(frame))
        if truth is not None:
            psnrs.append(metrics.psnr(frame, reference))
        if previous is not None:
            flow, reliable = backward_flow(gray, previous_gray)
            warped = color.to_uint8(warp(previous.float() / 255, flow))
            warp_errors.append(metrics.warp_error(warped, frame, reliable))
        previous, previous_gray = frame, gray
    if len(histograms) <= max(metrics.CDC_DISTANCES):
        return {"frames": len(histograms)}
    scores = {
        "frames": len(histograms),
        "cdc": metrics.cdc(torch.cat(histograms)),
        "warp_error": _mean(warp_errors),
        "colorfulness": _mean(colorfulness),
    }
    return scores | ({"psnr": _mean(psnrs)} if psnrs else {})


def _tensors(frames: Iterator[np.ndarray]) -> Iterator[Tensor]:
    for frame in frames:
        yield torch.from_numpy(frame).permute(2, 0, 1)[None]


def _mean(values: list[Tensor]) -> float:
    return torch.cat(values).double().mean().item()
