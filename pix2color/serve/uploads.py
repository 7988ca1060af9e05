"""Uploads in, images out: the body read under a size cap, the file judged by decoding it, the result encoded.

Nothing here trusts the client's file name or content type: a photo is whatever Pillow decodes (with the same
decompression-bomb pixel cap as ``infer.py``), and the name is never used. The optional ``hints`` field (colour
hints as JSON, read by :mod:`.hint_field`) is read under its own cap.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from fastapi import HTTPException, Request
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as FormError
from starlette.types import Message, Receive

from pix2color.data import DEFAULT_MAX_PIXELS, open_image
from pix2color.errors import DataError
from pix2color.image_files import save_image

MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg"}
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and part headers, on top of the file itself
FIELD = "file"
HINTS_FIELD = "hints"
MAX_HINT_BYTES = 64 * 1024  # the hints field: room for hint_points.MAX_HINTS hints, pretty-printed


class UploadTooLarge(Exception):
    """The request body passed the upload cap while it was being read."""


class Upload(io.BytesIO):
    """The uploaded bytes; decoding errors name it "the uploaded file", never a path or an object address."""

    def __repr__(self) -> str:
        return "the uploaded file"

    __str__ = __repr__


@dataclass(frozen=True)
class Received:
    """What a colorize request sent: the photo's bytes and the ``hints`` field's bytes (None when absent)."""

    photo: bytes
    hints: bytes | None


async def read_upload(request: Request, max_bytes: int) -> Received:
    """The ``file`` field (and the optional ``hints`` field) of a multipart/form-data request, refused once the
    photo passes ``max_bytes`` or the hints :data:`MAX_HINT_BYTES`.

    The cap is enforced while the body streams in: a client cannot make the server store more than
    ``max_bytes`` plus :data:`FORM_OVERHEAD` and :data:`MAX_HINT_BYTES`, whatever its Content-Length says (or
    leaves out). The hints may come as a text field or as a file (``curl -F hints=@hints.json``).

    Raises:
        HTTPException: 415 (not multipart/form-data), 413 (too large), 400 (no ``file`` field, bad form).
    """
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise HTTPException(415, f"send the photo as multipart/form-data in a field named '{FIELD}'.")
    limit = max_bytes + FORM_OVERHEAD + MAX_HINT_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(max_bytes)
    capped = Request(request.scope, _capped(request.receive, limit))
    try:
        form = await capped.form(max_files=2, max_fields=16, max_part_size=MAX_HINT_BYTES)
    except UploadTooLarge:
        raise _too_large(max_bytes) from None
    except FormError as exc:  # the multipart parser's own sentence: too many fields, a text field too long, ...
        raise HTTPException(
            400,
            f"the form cannot be read ({str(exc.detail).rstrip('.')}); send the photo in the field '{FIELD}' and "
            f"any hints as at most {MAX_HINT_BYTES // 1024} KB of JSON in the field '{HINTS_FIELD}'.",
        ) from None
    try:
        return Received(await _photo(form.get(FIELD), max_bytes), await _hints(form.get(HINTS_FIELD)))
    finally:
        await form.close()


async def _photo(upload: UploadFile | str | None, max_bytes: int) -> bytes:
    """The photo's bytes: the field must hold a non-empty file within ``max_bytes``."""
    if not isinstance(upload, UploadFile):
        raise HTTPException(400, f"the form has no file in a field named '{FIELD}'; attach the photo there.")
    data = await upload.read()
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if not data:
        raise HTTPException(400, "the uploaded file is empty; attach a photo.")
    return data


async def _hints(field: UploadFile | str | None) -> bytes | None:
    """The hints field's bytes, text or file, within :data:`MAX_HINT_BYTES`; None when the form has none."""
    if field is None:
        return None
    data = field.encode() if isinstance(field, str) else await field.read(MAX_HINT_BYTES + 1)
    if len(data) > MAX_HINT_BYTES:
        raise HTTPException(
            413, f"the '{HINTS_FIELD}' field is larger than this server's limit of {MAX_HINT_BYTES // 1024} KB."
        )
    return data


def _capped(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises :class:`UploadTooLarge` once the body passes ``limit`` bytes."""
    received = 0

    async def capped_receive() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise UploadTooLarge
        return message

    return capped_receive


def _too_large(max_bytes: int) -> HTTPException:
    return HTTPException(413, f"the upload is larger than this server's limit of {max_bytes / 2**20:g} MB.")


def decode_upload(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode an uploaded photo (EXIF orientation applied, any mode) once its header passes the pixel cap.

    Raises:
        HTTPException: 413 when the header claims over ``max_pixels``, 400 when Pillow cannot decode it.
    """
    _check_pixels(data, max_pixels)
    try:
        return open_image(Upload(data), max_pixels)
    except DataError as exc:
        cause = exc.__cause__
        reason = "not a format Pillow knows" if isinstance(cause, UnidentifiedImageError) else _first_line(cause)
        raise HTTPException(
            400, f"the uploaded file cannot be read as an image ({reason}); send a JPEG, PNG, WebP or TIFF photo."
        ) from None


def _check_pixels(data: bytes, max_pixels: int) -> None:
    """Refuse a decompression bomb from its header, before any pixel is decoded (a bad header passes: the
    decoder then says what is wrong)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(Upload(data)) as img:
                width, height = img.size
    except Image.DecompressionBombError:  # Pillow's own cap, at twice its MAX_IMAGE_PIXELS
        width = height = None
    except Exception:
        return
    if width is None or width * height > max_pixels:
        size = "" if width is None else f" ({width}x{height} = {width * height:,})"
        raise HTTPException(
            413,
            f"the image has more pixels{size} than this server's limit of {max_pixels:,} (refused as a "
            "possible decompression bomb); send a smaller image.",
        )


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0] if text else type(exc).__name__


def encode_image(image: Image.Image, fmt: str) -> bytes:
    """PNG (alpha kept) or JPEG (alpha dropped) bytes with the image's ICC profile, as ``infer.py`` writes."""
    buffer = io.BytesIO()
    save_image(image, buffer, fmt)
    return buffer.getvalue()
