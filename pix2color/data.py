"""Image files -> uint8 RGB batches: listing, decoding, EXIF, modes, crops, and the cleaning helpers.

Decoding uses Pillow: it reads every format and mode users have, and its JPEG ``draft`` decodes large photos at
1/2, 1/4 or 1/8 scale when the crop is much smaller, which is what keeps the loader workers ahead of training.
Any file that cannot be used raises :class:`DataError` naming it; the dataset turns that into a warning and a
``None`` item, which :func:`collate_images` drops and counts.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image

from pix2color.config import DataConfig
from pix2color.errors import DataError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
MANIFEST_EXTENSIONS = frozenset({".txt", ".tsv"})
DEFAULT_MAX_PIXELS = DataConfig().max_image_pixels
CROP_SCALE = (0.25, 1.0)  # area share of a random crop: at most 2x zoom, like DeOldify's max_zoom=2
CROP_RATIO = (3 / 4, 4 / 3)
RESAMPLE = Image.Resampling.BICUBIC
REDUCING_GAP = 3.0  # Pillow first shrinks by an integer factor while the image stays 3x the target
THUMBNAIL = 128  # longer side of the thumbnail that chroma_score measures

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_RESIZABLE = frozenset({"RGB", "L"})  # modes resized before the RGB conversion (cheaper on a crop)

Box = tuple[float, float, float, float]  # left, top, right, bottom in oriented pixel coordinates


# --- listing -----------------------------------------------------------------------------------------------------


def list_images(sources: Sequence[str | Path]) -> list[Path]:
    """List the image files of folders (recursive), manifests and single images, in a stable order.

    Folders are walked recursively (symlinked folders followed once, so loops are safe; hidden entries skipped)
    and sorted. A ``.txt``/``.tsv`` manifest lists one path per line (first tab-separated column), relative to
    the manifest's folder; empty lines, ``#`` comments and entries without an image extension (a header row)
    are skipped. A path listed twice is kept once.

    Raises:
        DataError: a source does not exist, is not a folder, image or manifest, or yields no images.
    """
    files: dict[Path, None] = {}
    for source in sources:
        found = _list_source(Path(source))
        if not found:
            extensions = ", ".join(sorted(IMAGE_EXTENSIONS))
            raise DataError(f"data source {source} holds no images ({extensions}); pass a folder or list of photos.")
        files.update(dict.fromkeys(found))
    return list(files)


def _list_source(source: Path) -> list[Path]:
    if source.is_dir():
        return sorted(_walk(source))
    suffix = source.suffix.lower()
    if source.is_file() and suffix in MANIFEST_EXTENSIONS:
        return _read_manifest(source)
    if source.is_file() and suffix in IMAGE_EXTENSIONS:
        return [source]
    if not source.exists():
        raise DataError(f"data source {source} does not exist; pass an existing folder or manifest file.")
    raise DataError(f"data source {source} is not a folder, an image or a .txt/.tsv manifest; pass one of those.")


def _walk(root: Path) -> Iterator[Path]:
    """Image files under ``root``, following symlinked folders but entering each real folder once."""
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            stat = folder.stat()
            if (stat.st_dev, stat.st_ino) in seen:
                continue
            seen.add((stat.st_dev, stat.st_ino))
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:  # a symlink loop raises ELOOP here: such an entry is neither a folder nor an image
                is_dir, is_file = entry.is_dir(), entry.is_file()
            except OSError:
                continue
            if is_dir:
                stack.append(Path(entry.path))
            elif is_file and Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
                yield Path(entry.path)


def _read_manifest(manifest: Path) -> list[Path]:
    files = []
    for line in manifest.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        entry = line.split("\t", 1)[0].strip()
        if entry and not entry.startswith("#") and Path(entry).suffix.lower() in IMAGE_EXTENSIONS:
            files.append(manifest.parent / entry)
    return files


# --- decoding ----------------------------------------------------------------------------------------------------


def open_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = 0) -> Image.Image:
    """Decode an image file with its EXIF orientation applied; any mode is kept (see :func:`to_rgb`).

    Args:
        path: the image file.
        max_pixels: larger images (by their header) are refused as decompression bombs.
        min_side: when > 0, a JPEG is decoded at the smallest DCT scale (1, 1/2, 1/4, 1/8) that keeps its
            shorter side at least this long; other formats decode at full size.

    Raises:
        DataError: naming the file: unreadable, corrupt, truncated, empty, not an image, or too large.
    """
    with _reading(path):
        img, orientation = _open(path, max_pixels)
        scale = min_side / min(img.size) if min_side else 1.0
        return _decode(img, orientation, scale)


def image_size(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """Width and height after EXIF orientation, read from the header only (cheap: no pixel decoding).

    Raises:
        DataError: as :func:`open_image`, for problems visible in the header.
    """
    with _reading(path):
        img, orientation = _open(path, max_pixels)
        img.close()
        return _oriented_size(img.size, orientation)


def load_crop(path: str | Path, size: int, box: Callable[[int, int], Box], max_pixels: int) -> Image.Image:
    """Decode the region ``box(width, height)`` of an image, resized to ``size`` x ``size`` RGB.

    The region is chosen from the oriented header size before decoding, so a JPEG is decoded at the smallest
    DCT scale that still gives the region at least ``size`` pixels; smaller regions are upscaled.

    Raises:
        DataError: as :func:`open_image`.
    """
    with _reading(path):
        img, orientation = _open(path, max_pixels)
        width, height = _oriented_size(img.size, orientation)
        left, top, right, bottom = box(width, height)
        img = _decode(img, orientation, max(size / (right - left), size / (bottom - top)))
        sx, sy = img.width / width, img.height / height
        region = (left * sx, top * sy, right * sx, bottom * sy)
        if img.mode not in _RESIZABLE:
            img = to_rgb(img)
        return to_rgb(img.resize((size, size), RESAMPLE, box=region, reducing_gap=REDUCING_GAP))


@contextlib.contextmanager
def _reading(path: str | Path) -> Iterator[None]:
    """Turn every decoding failure into a :class:`DataError` naming ``path``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", "Corrupt EXIF data", UserWarning)  # survived: orientation falls back
            yield
    except DataError:
        raise
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path} is refused as a decompression bomb ({exc}); shrink the image.") from exc
    except Exception as exc:  # Pillow raises many kinds for bad files; all mean the same to the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path} cannot be read as an image ({reason}); remove or replace the file.") from exc


def _open(path: str | Path, max_pixels: int) -> tuple[Image.Image, int]:
    """Open lazily (header only) and check the pixel count; returns the image and its EXIF orientation."""
    img = Image.open(path)
    width, height = img.size
    if width * height > max_pixels:
        img.close()
        raise DataError(
            f"{path} is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}; it is "
            "refused as a possible decompression bomb: shrink it or raise data.max_image_pixels."
        )
    return img, _orientation(img)


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation (1..8); 1 when the EXIF block is missing or broken."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = img.getexif().get(ExifTags.Base.Orientation, 1)
        return int(value) if value in _TRANSPOSE else 1
    except Exception:  # a broken EXIF block only loses the orientation, never the image
        return 1


def _oriented_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation >= 5 else size


def _decode(img: Image.Image, orientation: int, scale: float) -> Image.Image:
    """Load the pixels (a JPEG at reduced DCT scale when ``scale`` < 1) and apply the orientation.

    Unlike ``ImageOps.exif_transpose`` this never rewrites the EXIF block, so a broken one cannot fail here.
    """
    with img:  # closes the file, also when decoding fails
        if scale < 1:
            img.draft(None, (max(1, math.ceil(img.width * scale)), max(1, math.ceil(img.height * scale))))
        img.load()
    return img.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else img


# --- modes -------------------------------------------------------------------------------------------------------


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB.

    Transparent images (RGBA, LA, P or L with transparency) are composited on white; 16-bit images are scaled
    to 8 bits (65535 -> 255), not clipped; ``I`` is treated as 16-bit when its values exceed 255; ``F`` as
    0..1 when its values stay within 1, else 0..255.
    """
    if img.mode == "RGB":
        return img
    if img.mode in _SIXTEEN_BIT or img.mode in ("I", "F"):
        img = _to_8bit(img)
    if img.mode in _ALPHA or "transparency" in img.info:
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return img.convert("RGB")


def _to_8bit(img: Image.Image) -> Image.Image:
    """Scale a 16-bit, 32-bit integer or float single-channel image to mode L."""
    values = np.asarray(img, dtype=np.float32)
    peak = float(values.max()) if values.size else 0.0
    if img.mode == "F":
        factor = 255.0 if peak <= 1.0 else 1.0
    else:
        factor = 255.0 / 65535.0 if img.mode in _SIXTEEN_BIT or peak > 255 else 1.0
    return Image.fromarray(np.clip(values * factor + 0.5, 0, 255).astype(np.uint8), mode="L")


# --- crops -------------------------------------------------------------------------------------------------------


def random_box(width: int, height: int) -> Box:
    """A random crop of :data:`CROP_SCALE` area and :data:`CROP_RATIO` aspect, drawn with torch's RNG.

    The DataLoader seeds torch per worker, so crops are reproducible. Falls back to :func:`center_box`.
    """
    area = width * height
    log_low, log_high = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    for _ in range(10):
        target = area * torch.empty(1).uniform_(*CROP_SCALE).item()
        ratio = math.exp(torch.empty(1).uniform_(log_low, log_high).item())
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            left = int(torch.randint(0, width - w + 1, (1,)).item())
            top = int(torch.randint(0, height - h + 1, (1,)).item())
            return left, top, left + w, top + h
    return center_box(width, height)


def center_box(width: int, height: int) -> Box:
    """The centred square of side ``min(width, height)``: resize-shorter-side then center-crop in one step."""
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


# --- dataset -----------------------------------------------------------------------------------------------------


class ImageDataset(torch.utils.data.Dataset):
    """Image files as uint8 RGB tensors of shape (3, size, size).

    Train: random resized crop (:func:`random_box`) and a random horizontal flip. Val: resize the shorter side
    and center-crop (:func:`center_box`). An unreadable file gives ``None`` after a one-line warning naming it.
    """

    def __init__(self, files: Sequence[Path], size: int, train: bool, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.files = [Path(f) for f in files]
        self.size = size
        self.train = train
        self.max_pixels = max_pixels
        self.unreadable = 0  # files of the source dropped before training (set by build_datasets)

    def __len__(self) -> int:
        return len(self.files)

    def resized(self, size: int) -> ImageDataset:
        """The same files and mode, cropped to ``size``; ``self`` when it already is."""
        if size == self.size:
            return self
        other = copy.copy(self)
        other.size = size
        return other

    def __getitem__(self, i: int) -> torch.Tensor | None:
        """Returns: uint8 (3, size, size) RGB, or None for an unreadable file."""
        box = random_box if self.train else center_box
        try:
            img = load_crop(self.files[i], self.size, box, self.max_pixels)
        except DataError as exc:
            warnings.warn(f"skipping an unreadable image: {exc}", stacklevel=2)
            return None
        if self.train and torch.rand(()).item() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return torch.from_numpy(np.array(img)).permute(2, 0, 1).contiguous()


def collate_images(items: list[torch.Tensor | None], size: int = 0) -> tuple[torch.Tensor, int]:
    """Stack the readable items and count the skipped ones.

    Args:
        items: uint8 (3, S, S) tensors or None.
        size: S for the empty batch when every item is None; bind it with ``functools.partial``.

    Returns:
        uint8 (B, 3, S, S) batch of the good items (B may be 0) and how many items were None.
    """
    good = [item for item in items if item is not None]
    batch = torch.stack(good) if good else torch.empty((0, 3, size, size), dtype=torch.uint8)
    return batch, len(items) - len(good)


# --- building the splits -----------------------------------------------------------------------------------------


def build_datasets(cfg: DataConfig, seed: int = 0) -> tuple[ImageDataset, ImageDataset]:
    """Train and val datasets from ``cfg``, with unreadable files dropped before training starts.

    Each dataset's ``unreadable`` attribute counts the files its source lost to the header check.

    Val is ``cfg.val`` when given, else a seeded ``cfg.val_fraction`` split of ``cfg.train``; it is capped at
    ``cfg.max_val_images`` (0: all) by a seeded, sorted sample.

    Raises:
        DataError: no sources, a source without images, fewer than two readable images to split, or more than
            ``cfg.max_bad_fraction`` of a split unreadable.
    """
    if not cfg.train:
        raise DataError("data.train is empty; pass --data DIR or set data.train to image folders or manifests.")
    listed = list_images(cfg.train)
    train = readable_files(listed, cfg.max_image_pixels, cfg.max_bad_fraction, "data.train")
    train_unreadable, val_unreadable = len(listed) - len(train), 0
    if cfg.val:
        listed = list_images(cfg.val)
        val = readable_files(listed, cfg.max_image_pixels, cfg.max_bad_fraction, "data.val")
        val_unreadable = len(listed) - len(val)
    else:
        train, val = split_files(train, cfg.val_fraction, seed)
    if 0 < cfg.max_val_images < len(val):
        val = sorted(random.Random(seed).sample(val, cfg.max_val_images))
    train_set = ImageDataset(train, cfg.size, train=True, max_pixels=cfg.max_image_pixels)
    val_set = ImageDataset(val, cfg.size, train=False, max_pixels=cfg.max_image_pixels)
    train_set.unreadable, val_set.unreadable = train_unreadable, val_unreadable
    return train_set, val_set


def readable_files(files: Sequence[Path], max_pixels: int, max_bad_fraction: float, key: str) -> list[Path]:
    """The files whose header Pillow can read, each other one reported by a warning.

    Raises:
        DataError: more than ``max_bad_fraction`` of ``files`` are unreadable; names how many, the first few
            and the config key to change.
    """
    good, bad = [], []
    for path in files:
        try:
            image_size(path, max_pixels)
            good.append(path)
        except DataError as exc:
            warnings.warn(f"skipping an unreadable image: {exc}", stacklevel=2)
            bad.append(path)
    if files and len(bad) / len(files) > max_bad_fraction:
        names = ", ".join(str(p) for p in bad[:3]) + (", ..." if len(bad) > 3 else "")
        raise DataError(
            f"{len(bad)} of {len(files)} images in {key} are unreadable ({names}), more than "
            f"data.max_bad_fraction={max_bad_fraction}; remove or fix them, or raise data.max_bad_fraction."
        )
    return good


def split_files(files: Sequence[Path], val_fraction: float, seed: int) -> tuple[list[Path], list[Path]]:
    """A seeded train/val split holding out ``val_fraction`` of ``files`` (at least one); both halves sorted.

    Raises:
        DataError: fewer than two files, so one cannot be held out.
    """
    if len(files) < 2:
        raise DataError(f"only {len(files)} readable image(s) to split into train and val; add images or set data.val.")
    order = list(files)
    random.Random(seed).shuffle(order)
    n_val = min(len(order) - 1, max(1, round(len(order) * val_fraction)))
    return sorted(order[n_val:]), sorted(order[:n_val])


# --- cleaning ----------------------------------------------------------------------------------------------------


def chroma_score(img: Image.Image) -> float:
    """Mean of max(R, G, B) - min(R, G, B) over a :data:`THUMBNAIL`-pixel thumbnail; below about 2 is gray.

    Args:
        img: an RGB image.
    """
    scale = min(1.0, THUMBNAIL / max(img.size))
    thumb_size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    values = np.asarray(img.resize(thumb_size, RESAMPLE, reducing_gap=REDUCING_GAP), dtype=np.int16)
    return float((values.max(axis=2) - values.min(axis=2)).mean())
