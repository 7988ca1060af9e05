"""The limits and safety settings of one server, with their defaults: the one home the flags and the app read.

Light on purpose (no FastAPI, no torch), so that ``pix2color-serve --help`` shows these defaults at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from pix2color.config import DataConfig

MB = 2**20


@dataclass(frozen=True)
class ServeOptions:
    """Limits and safety settings of one server; :mod:`pix2color.commands.serve` fills them from its flags."""

    token: str | None = None  # required as "Authorization: Bearer <token>" on every /v1 call when set
    max_upload_bytes: int = 50 * MB
    max_pixels: int = DataConfig().max_image_pixels  # as pix2color.data.DEFAULT_MAX_PIXELS
    queue: int = 32  # colorize requests admitted at once (reading, waiting, in the model, encoding)
    timeout_s: float = 60.0  # most seconds a photo may wait for and spend in the model
    max_batch: int = 8
    max_wait_ms: float = 10.0
    cors: tuple[str, ...] = ()
