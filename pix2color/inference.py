"""Colorize photos at any resolution with a trained checkpoint (DeOldify's "render factor").

The generator sees the photo shrunk to a ``render_size`` square; its chroma is upsampled (bilinear)
to the photo's full size and joined with the photo's own full-resolution lightness. So the output
keeps the input's size and detail, and memory is bounded by the render size: the full-size work runs
in horizontal strips of half a megapixel, never on whole-photo float images.

Why a square: every photo of a batch then has the same model input whatever its shape, so one forward
pass colours them all, and the model's cost never grows with a panorama's aspect ratio. Chroma varies
slowly, so the squeeze costs little; the detail comes from the full-resolution lightness."""

from __future__ import annotations

import typing
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from pix2color import color
from pix2color.config import Backend, Precision, check_size
from pix2color.data import to_rgb
from pix2color.errors import ConfigError, UserError
from pix2color.hint_points import Hint, check_inside, hints_tensor
from pix2color.hint_spread import HintSpread, spread_hints
from pix2color.model_files import ModelFile, read_model_file, rebuild_generator
from pix2color.runtime import amp_dtype, autocast, resolve_device

BACKENDS = typing.get_args(Backend)
PRECISIONS = (*typing.get_args(Precision), "bf16", "fp16")  # the CLIs offer Precision; bf16, fp16 force a dtype
STRIP_PIXELS = 1 << 19  # full-resolution work runs in strips of about this many pixels
DEFAULT_SPREAD = HintSpread()
RGB_PROFILE = b"RGB "  # ICC header bytes 16..19 name the profile's colour space


class Colorizer:
    """Colours photos with a trained generator; build it with :meth:`from_checkpoint` (or :meth:`from_pretrained`).

    ``render_size`` and ``saturation`` are defaults: each call of :meth:`colorize`, :meth:`colorize_batch`,
    :meth:`predict_rgb`, :meth:`render_lightness` or :meth:`predict_chroma` may set its own, so one Colorizer
    serves any mix of settings.

    Args:
        generator: maps lightness (B, 1, S, S) in [-1, 1] to chroma (B, 2, S, S).
        space: the colour space it predicts chroma in ("lab" or "luv").
        render_size: S, the square the model runs at by default; a multiple of 32.
        saturation: default factor on the predicted chroma (1 as trained, 0 gray, above 1 more vivid).
        device: where the model and the colour conversions run.
        batch_size: photos per forward pass.
        precision: "auto" runs the generator under the autocast that :func:`pix2color.runtime.amp_dtype`
            picks (fp16 on CUDA, bf16 on CPUs with native bf16, else fp32); "fp32" always in float32;
            "bf16" or "fp16" always under autocast in that dtype.
        channels_last: run the generator on channels-last tensors (as trained by default); False keeps the
            contiguous layout.
        hint_spread: how each colour hint's correction is carried over the photo after the model, which then
            colours on its own (:mod:`pix2color.hint_spread`); None gives the hints to a model trained with them.
    """

    def __init__(
        self,
        generator: nn.Module,
        space: str = "lab",
        render_size: int = 256,
        saturation: float = 1.0,
        device: str | torch.device = "cpu",
        batch_size: int = 8,
        precision: str = "auto",
        channels_last: bool = True,
        hint_spread: HintSpread | None = DEFAULT_SPREAD,
    ):
        self.render_size = _checked_render_size(render_size)
        self.saturation = _checked_saturation(saturation)
        _check_batch_and_precision(batch_size, precision)
        self.device = torch.device(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.generator = generator.to(self.device, memory_format=self.memory_format).eval()
        self.space = space
        self.batch_size = batch_size
        self.amp = None if precision == "fp32" else amp_dtype(self.device, enabled=True, requested=precision)
        self.hint_spread = hint_spread

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str = "auto",
        render_size: int | None = None,
        saturation: float = 1.0,
        batch_size: int = 8,
        backend: Backend = "torch",
        precision: str = "auto",
        model: ModelFile | None = None,
        with_hint_spread: bool = True,
    ) -> Colorizer:
        """Load a stage 1 or stage 2 checkpoint, or a release folder; ``render_size`` defaults to its training size.

        ``backend`` "onnxruntime" runs the generator with ONNX Runtime on the CPU (faster there; see
        :mod:`pix2color.onnx_runtime`; always fp32), "torch" with PyTorch on ``device`` at ``precision``.
        ``model``: the file at ``path`` already read (:func:`~pix2color.model_files.read_model_file`), so that a
        caller that also reports its training record reads it once; ``path`` then names it in errors.
        ``with_hint_spread`` False leaves colour hints to the model alone (:attr:`hint_spread` None).

        Raises:
            CheckpointError: the checkpoint is missing, truncated or for another architecture.
            ConfigError: a render size that is not a multiple of 32, an unknown backend, onnxruntime with
                a CUDA device or not installed, or another bad setting.
        """
        if backend not in BACKENDS:
            raise ConfigError(f"backend {backend!r} is not valid; valid backends: {', '.join(BACKENDS)}.")
        device = resolve_device("cpu" if backend == "onnxruntime" and device == "auto" else device)
        if backend == "onnxruntime" and device.type != "cpu":
            raise ConfigError(f"the onnxruntime backend runs on the CPU; ask for device cpu, not {device.type}.")
        generator, cfg = rebuild_generator(model or read_model_file(path), path)
        size = cfg.data.size if render_size is None else render_size
        spread = DEFAULT_SPREAD if with_hint_spread else None
        colorizer = cls(generator, cfg.color.space, size, saturation, device, batch_size, precision, hint_spread=spread)
        if backend == "onnxruntime":  # exported once the settings have passed their checks
            from pix2color.onnx_runtime import OnnxGenerator

            colorizer.generator = OnnxGenerator.from_module(colorizer.generator, size)
        return colorizer

    from_pretrained = from_checkpoint  # the name model hubs use, for a folder written by pix2color-export --release

    def colorize(
        self,
        image: Image.Image,
        *,
        render_size: int | None = None,
        saturation: float | None = None,
        hints: Sequence[Hint] = (),
    ) -> Image.Image:
        """Colour one photo, with colour ``hints`` at points of it if given; see :meth:`colorize_batch`."""
        return self.colorize_batch([image], render_size=render_size, saturation=saturation, hints=[hints])[0]

    def colorize_batch(
        self,
        images: Sequence[Image.Image],
        *,
        render_size: int | None = None,
        saturation: float | None = None,
        hints: Sequence[Sequence[Hint]] | None = None,
    ) -> list[Image.Image]:
        """Colour photos of any sizes and modes from their lightness, and colour hints where given.

        Each output is RGB (RGBA when the input has transparency, its alpha kept) with the input's
        size and lightness, and the input's ICC profile when that is an RGB profile. Open files with
        :func:`pix2color.data.open_image` so that EXIF orientation is applied first.

        Args:
            images: the photos.
            render_size: the square the model runs at for this call; None: the Colorizer's.
            saturation: the factor on this call's predicted chroma; None: the Colorizer's.
            hints: per photo, its :class:`~pix2color.hint_points.Hint` points (in the photo's pixels), when the
                Colorizer :attr:`accepts_hints`; None or empty lists: none.

        Raises:
            ConfigError: a render size that is not a multiple of 32, or a negative saturation.
            UserError: hints the Colorizer does not accept, or a hint outside its photo.
        """
        if not images:
            return []
        rgbs = [_color_channels(image) for image in images]
        lightness = torch.cat([self.render_lightness(rgb, render_size) for rgb in rgbs])
        chroma = self.predict_chroma(lightness, saturation, self.hint_inputs(images, hints, lightness.shape[-1]))
        return [_to_pil(self.join(rgb, c[None]), image) for rgb, c, image in zip(rgbs, chroma, images, strict=True)]

    def predict_rgb(
        self,
        rgb: Tensor,
        *,
        render_size: int | None = None,
        saturation: float | None = None,
        hints: Tensor | None = None,
    ) -> Tensor:
        """Colour a batch from its lightness (and hints): (B, 3, H, W) uint8, any H, W -> (B, 3, H, W) uint8.

        ``render_size`` and ``saturation`` as in :meth:`colorize_batch`; ``hints`` as in :meth:`predict_chroma`,
        at the render size.
        """
        chroma = self.predict_chroma(self.render_lightness(rgb, render_size), saturation, hints)
        return self.join(rgb, chroma).contiguous()

    def hint_inputs(
        self, images: Sequence[Image.Image], hints: Sequence[Sequence[Hint]] | None, size: int
    ) -> Tensor | None:
        """The (B, 3, size, size) hint tensor of ``images``' hint points, or None when none are given."""
        if not hints or not any(hints):
            return None
        self.check_accepts_hints()
        for index, (image, points) in enumerate(zip(images, hints, strict=True)):
            check_inside(points, image.width, image.height, f"photo {index + 1}")
        return torch.cat(
            [
                hints_tensor(points, image.width, image.height, size, self.space)
                for image, points in zip(images, hints, strict=True)
            ]
        )

    def check_accepts_hints(self) -> None:
        """Raises UserError unless the Colorizer does something with colour hints."""
        if not self.accepts_hints:
            raise UserError(
                "this model takes no colour hints itself (it was trained without model.hints) and the hint spread "
                "is off; turn the spread on, remove the hints, or colorize with a model trained with model.hints."
            )

    @property
    def takes_hints(self) -> bool:
        """Whether the model itself reads colour hints (one trained with ``model.hints``)."""
        return bool(getattr(self.generator, "takes_hints", False))

    @property
    def accepts_hints(self) -> bool:
        """Whether colour hints change the colours: their corrections are spread after the model
        (:attr:`hint_spread`, any model), or the model reads them."""
        return self.takes_hints or self.hint_spread is not None

    def render_lightness(self, rgb: Tensor, render_size: int | None = None) -> Tensor:
        """(B, 3, H, W) uint8 -> the model input: lightness (B, 1, S, S) in [-1, 1] on the device.

        S is ``render_size``, or the Colorizer's when None. The photo is shrunk to S x S before its
        lightness is taken, as the training crops were. The shrink runs on the CPU: its uint8
        antialiased kernel is fast and takes any factor (CUDA's fails at large ones).
        """
        return color.rgb_to_lightness(self.shrink(rgb, render_size), self.space)

    def shrink(self, rgb: Tensor, render_size: int | None = None) -> Tensor:
        """(B, 3, H, W) uint8 -> (B, 3, S, S) uint8 on the device, as the model sees the photo; S as in
        :meth:`render_lightness`."""
        size = self.render_size if render_size is None else _checked_render_size(render_size)
        return F.interpolate(rgb.cpu(), (size, size), mode="bilinear", antialias=True).to(self.device)

    @torch.inference_mode()
    def predict_chroma(self, lightness: Tensor, saturation: float | None = None, hints: Tensor | None = None) -> Tensor:
        """Lightness (N, 1, S, S) -> chroma (N, 2, S, S) float32, in batches, scaled by ``saturation``.

        ``saturation`` None takes the Colorizer's. ``hints`` (N, 3, S, S), when the Colorizer :attr:`accepts_hints`:
        hint chroma in the model's normalised units (0 where there is none) and a 0/1 mask; None: no hints. Each
        hint's correction is spread over the model's own colours as :attr:`hint_spread` says, or, with no spread,
        a model that :attr:`takes_hints` reads them.
        """
        factor = self.saturation if saturation is None else _checked_saturation(saturation)
        if hints is not None:
            self.check_accepts_hints()
        lightness_chunks = lightness.split(self.batch_size)
        hint_chunks = [None] * len(lightness_chunks) if hints is None else hints.to(self.device).split(self.batch_size)
        return torch.cat(
            [
                self._predict_batch(chunk, hint, factor)
                for chunk, hint in zip(lightness_chunks, hint_chunks, strict=True)
            ]
        )

    def _predict_batch(self, lightness: Tensor, hints: Tensor | None, factor: float) -> Tensor:
        """One batch of :meth:`predict_chroma`: the generator's chroma with the hints spread over it, times ``factor``
        (hinted colours too, so that saturation 0 is gray with hints as without). With the spread, the generator
        colours on its own: one trained with hints would already match them around each hint, leaving the spread
        little correction to carry (docs/hints.md measured 26.40 against 28.07 dB at 10 hints)."""
        with autocast(self.device, self.amp):
            reads = hints is not None and self.takes_hints and self.hint_spread is None
            given = {"hints": hints.contiguous(memory_format=self.memory_format)} if reads else {}
            chroma = self.generator(lightness.contiguous(memory_format=self.memory_format), **given).float()
        if hints is not None and self.hint_spread is not None:
            chroma = spread_hints(lightness, chroma, hints, self.hint_spread)
        return chroma * factor

    def join(self, rgb: Tensor, chroma: Tensor) -> Tensor:
        """Full-resolution lightness of rgb (B, 3, H, W) uint8 + chroma (B, 2, S, S) -> (B, 3, H, W) uint8.

        Runs in strips of rows; the result lives on rgb's device, channels-last in memory: ``.permute(0, 2, 3, 1)``
        gives (B, H, W, 3) without a copy.
        """
        b, _, h, w = rgb.shape
        out = torch.empty((b, h, w, 3), dtype=torch.uint8, device=rgb.device)
        for rows in _strips(b, h, w):
            strip = rgb[:, :, rows].to(self.device)
            lightness = color.rgb_to_lightness(strip, self.space)
            joined = color.l_chroma_to_rgb(lightness, upsample_rows(chroma, (h, w), rows), self.space)
            out[:, rows] = color.to_uint8(color.match_luminance(joined, strip)).permute(0, 2, 3, 1).to(out.device)
        return out.permute(0, 3, 1, 2)


def upsample_rows(chroma: Tensor, size: tuple[int, int], rows: slice) -> Tensor:
    """Rows ``rows`` of ``F.interpolate(chroma, size, mode="bilinear")`` without computing the others.

    Args:
        chroma: (B, C, h, w).
        size: the full output size (H, W).
        rows: a slice of range(H) with step 1.

    Returns:
        (B, C, len(rows), W).
    """
    height, width = size
    ys = (torch.arange(rows.start, rows.stop, device=chroma.device) + 0.5) * (2 / height) - 1
    xs = (torch.arange(width, device=chroma.device) + 0.5) * (2 / width) - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (rows, W, 2) as (x, y)
    grid = grid.expand(chroma.shape[0], -1, -1, -1)
    return F.grid_sample(chroma, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _strips(batch: int, height: int, width: int) -> Iterator[slice]:
    """Row ranges that cut a (batch, height, width) image into strips of about STRIP_PIXELS pixels."""
    step = max(1, STRIP_PIXELS // (batch * width))
    for top in range(0, height, step):
        yield slice(top, min(top + step, height))


def _color_channels(image: Image.Image) -> Tensor:
    """PIL, any mode -> (1, 3, H, W) uint8; a transparent image's colours as they are, not composited."""
    rgb = image.convert("RGB") if _has_alpha(image) else to_rgb(image)
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None]


def _to_pil(rgb: Tensor, source: Image.Image) -> Image.Image:
    """(1, 3, H, W) uint8 -> PIL, with the source's alpha channel and RGB ICC profile."""
    image = Image.fromarray(rgb[0].permute(1, 2, 0).cpu().numpy())
    if _has_alpha(source):
        image.putalpha(_alpha(source))
    profile = source.info.get("icc_profile")
    if profile and profile[16:20] == RGB_PROFILE:  # a CMYK or gray profile does not describe RGB output
        image.info["icc_profile"] = profile
    return image


def _has_alpha(image: Image.Image) -> bool:
    """An alpha band (RGBA, LA, PA), or a transparent palette entry or colour key."""
    return "A" in image.getbands() or ("transparency" in image.info and image.mode in ("1", "L", "P", "RGB"))


def _alpha(image: Image.Image) -> Image.Image:
    """The alpha channel of an image for which :func:`_has_alpha` holds, as mode "L"."""
    return image.getchannel("A") if "A" in image.getbands() else image.convert("RGBA").getchannel("A")


def _checked_render_size(render_size: int) -> int:
    """``render_size`` when it is a multiple of 32, else ConfigError."""
    check_size(render_size, f"render size {render_size}")
    return render_size


def _checked_saturation(saturation: float) -> float:
    """``saturation`` when it is 0 or more, else ConfigError."""
    if saturation < 0:
        raise ConfigError(f"saturation {saturation} must be 0 or more (1 keeps the predicted colors).")
    return saturation


def _check_batch_and_precision(batch_size: int, precision: str) -> None:
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} is not valid; valid precisions: {', '.join(PRECISIONS)}.")
    if batch_size < 1:
        raise ConfigError(f"batch size {batch_size} must be 1 or more.")
