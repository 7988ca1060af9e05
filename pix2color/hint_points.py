"""Colour hints as a person gives them: points on the photo, each with a colour and a size, read from JSON.

A hint is ``{"x": 120, "y": 80, "color": "#b03a2e", "size": 8}``: (x, y) in the photo's own pixels (any
resolution; x to the right, y down, from the top-left corner), the colour as RGB hex, or as Lab
``"lab": [a, b]`` instead of ``"color"``, and the side of its square in the photo's pixels (default
:data:`DEFAULT_SIZE`). Only the colour's chroma is used: the photo keeps its own lightness. The points are
mapped to the square the model runs at, where they become the (1, 3, S, S) hint tensor it reads.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import kornia.color
import torch
from torch import Tensor

from pix2color import color
from pix2color.errors import UserError
from pix2color.hints import paint_values

DEFAULT_SIZE = 8.0  # the side of a hint's square in the photo's pixels when a hint does not say
MAX_HINTS = 256  # hints per photo
MAX_SIZE = 100_000.0  # pixels: larger than any photo side
HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class Hint:
    """One colour point: position and size in the photo's pixels, colour as RGB in [0, 1]."""

    x: float
    y: float
    rgb: tuple[float, float, float]
    size: float = DEFAULT_SIZE


def read_json(data: str | bytes, where: str) -> Any:
    """The JSON value of ``data`` (a hints file's or form field's text); ``where`` names the source in errors.

    Raises:
        UserError: one sentence: not JSON (with the parser's position), or not UTF-8, or a number or nesting too
            large to read.
    """
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where} is not valid JSON ({exc}); give a list of hints like [{_EXAMPLE}].") from None
    except (ValueError, RecursionError):  # not UTF-8, an integer of thousands of digits, or nesting too deep
        raise UserError(
            f"{where} is not UTF-8 JSON of a readable size; give a list of hints like [{_EXAMPLE}]."
        ) from None


def parse_hints(items: Any, where: str) -> list[Hint]:
    """The hints of a JSON list, each checked; ``where`` names the source in errors (a file, a form field).

    Raises:
        UserError: one sentence naming the hint and what is wrong with it.
    """
    if not isinstance(items, list) or len(items) > MAX_HINTS:
        raise UserError(f"{where}: hints must be a JSON list of at most {MAX_HINTS} objects like {_EXAMPLE}.")
    return [_parse_hint(item, f"{where}: hint {index + 1}") for index, item in enumerate(items)]


_EXAMPLE = '{"x": 120, "y": 80, "color": "#b03a2e", "size": 8}'


def _parse_hint(item: Any, where: str) -> Hint:
    if not isinstance(item, dict) or not {"x", "y"} <= set(item) or ("color" in item) == ("lab" in item):
        raise UserError(f"{where} must be an object with x, y and either color or lab, like {_EXAMPLE}.")
    numbers = {key: item.get(key, DEFAULT_SIZE) for key in ("x", "y", "size")}
    if not all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in numbers.values()):
        raise UserError(f"{where}: x, y and size must be numbers, got {_short(numbers)}.")
    if not all(_finite(value) for value in numbers.values()):
        raise UserError(f"{where}: x, y and size must be finite numbers, got {_short(numbers)}.")
    if not 0 < numbers["size"] <= MAX_SIZE:
        raise UserError(f"{where}: size={numbers['size']} must be above 0 and at most {MAX_SIZE:g} pixels.")
    rgb = _hex_rgb(item["color"], where) if "color" in item else _lab_rgb(item["lab"], where)
    return Hint(float(numbers["x"]), float(numbers["y"]), rgb, float(numbers["size"]))


def _hex_rgb(text: Any, where: str) -> tuple[float, float, float]:
    if not isinstance(text, str) or not HEX.match(text):
        raise UserError(f"{where}: color={_short(text)} is not an RGB hex colour like '#b03a2e'.")
    return tuple(int(text[i : i + 2], 16) / 255 for i in (1, 3, 5))


def _lab_rgb(ab: Any, where: str) -> tuple[float, float, float]:
    """Lab (a, b) taken at L 50, as the RGB colour nearest to it in the sRGB cube."""
    if not (isinstance(ab, list) and len(ab) == 2 and all(_finite(v) for v in ab)):
        raise UserError(f"{where}: lab={_short(ab)} must be two numbers [a, b], e.g. [45.5, 30.2].")
    lab = torch.tensor([color.L_CENTER, *ab], dtype=torch.float64).view(1, 3, 1, 1)
    return tuple(kornia.color.lab_to_rgb(lab).clamp(0, 1).flatten().tolist())


def _finite(value: Any) -> bool:
    """Whether ``value`` is a number (not a bool) with a finite float value; a JSON integer may be too large."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, so that a number of a thousand digits stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def check_inside(hints: Sequence[Hint], width: int, height: int, where: str) -> None:
    """Raises UserError naming the first hint whose point lies outside a ``width`` x ``height`` photo."""
    for index, hint in enumerate(hints):
        if not (0 <= hint.x < width and 0 <= hint.y < height):
            raise UserError(
                f"{where}: hint {index + 1} at x={hint.x:g}, y={hint.y:g} lies outside the {width}x{height} photo."
            )


def hints_tensor(hints: Sequence[Hint], width: int, height: int, render_size: int, space: str) -> Tensor:
    """The (1, 3, S, S) hint chroma and mask a model reads for a ``width`` x ``height`` photo rendered at
    S = ``render_size``: each point scaled to the square, its size scaled by S over the photo's longer side
    (at least 1 px), its colour's chroma in ``space``."""
    if not hints:
        return torch.zeros(1, 3, render_size, render_size)
    rgb = torch.tensor([hint.rgb for hint in hints]).T.reshape(1, 3, len(hints), 1)
    _, chroma = color.rgb_to_l_chroma(rgb, space)  # (1, 2, N, 1)
    scale = torch.tensor([render_size / height, render_size / width])
    points = torch.tensor([[hint.y, hint.x] for hint in hints])
    centers = (points + 0.5) * scale - 0.5  # a pixel's centre onto the centre of the render pixel it falls in
    sizes = torch.tensor([max(1, round(hint.size * render_size / max(width, height))) for hint in hints])
    present = torch.ones(1, len(hints), dtype=torch.bool)
    return paint_values(chroma[0, :, :, 0].T[None], centers[None], sizes[None], present, render_size, render_size)
