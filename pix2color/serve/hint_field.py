"""The ``hints`` form field of ``POST /v1/colorize``: the CLI's JSON list of colour hints, read and checked.

The field holds what ``pix2color-infer --hints`` reads for one photo (:mod:`pix2color.hint_points`): a list of
``{"x": .., "y": .., "color": "#b03a2e", "size": 8}`` in the uploaded photo's own pixels. Every check the CLI
makes answers here as a 400 with its one sentence naming the field and the hint.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import HTTPException
from PIL import Image

from pix2color.errors import UserError
from pix2color.hint_points import Hint, check_inside, parse_hints, read_json
from pix2color.serve.uploads import HINTS_FIELD

WHERE = f"the form field '{HINTS_FIELD}'"


def read_hints(data: bytes | None) -> tuple[Hint, ...]:
    """The hints in the field's JSON; none when the form has no such field.

    Raises:
        HTTPException: 400 naming what is wrong: not JSON, not a list of at most ``MAX_HINTS`` hints, or a hint
            with a bad position, size or colour.
    """
    if data is None:
        return ()
    try:
        return tuple(parse_hints(read_json(data, WHERE), WHERE))
    except UserError as exc:
        raise HTTPException(400, str(exc)) from None


def check_hints_accepted(hints: Sequence[Hint], accepts_hints: bool) -> None:
    """Raises HTTPException (400) when there are ``hints`` and the served Colorizer does nothing with them
    (``accepts_hints`` False: a model trained without hints, served with ``--no-hint-spread``)."""
    if hints and not accepts_hints:
        raise HTTPException(
            400,
            f"this server's model takes no colour hints (trained without model.hints, served with "
            f"--no-hint-spread); leave out {WHERE}.",
        )


def check_hints_inside(hints: Sequence[Hint], image: Image.Image) -> None:
    """Raises HTTPException (400) naming the first hint outside ``image`` (in its pixels once EXIF orientation is
    applied, as the CLI counts them)."""
    try:
        check_inside(hints, image.width, image.height, WHERE)
    except UserError as exc:
        raise HTTPException(400, str(exc)) from None
