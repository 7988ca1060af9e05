"""``pix2color-infer --hints FILE``: the colour hints of the photos a run colorizes, read and checked up front.

The file is JSON: a list of hints (``pix2color.hint_points``) for a run on one photo, or an object mapping photo
file names (as given, or their base names) to such lists. Every hint is checked against its photo before
anything is written, so a bad one stops the run with one line naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pix2color.errors import UserError

if TYPE_CHECKING:
    from pix2color.hint_points import Hint


def read_hint_file(path: Path, sources: Sequence[Path], flag: str = "--hints") -> dict[Path, list[Hint]]:
    """Photo -> its hints, for the ``sources`` a run colorizes; ``flag`` names the option in errors.

    Raises:
        UserError: an unreadable or malformed file, a name that matches no photo of the run, a list for a run
            of several photos, or a hint outside its photo.
    """
    from pix2color.hint_points import check_inside, parse_hints, read_json  # torch: only once there are hints

    where = f"{flag} {path}"
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"{where} cannot be read ({exc.strerror}); give the path of a JSON file of hints.") from None
    data = read_json(text, where)
    if isinstance(data, list):
        if len(sources) != 1:
            raise UserError(
                f"{where} holds one list of hints, which fits a run on one photo, not {len(sources)}; "
                "map each photo's file name to its list instead."
            )
        by_photo = {sources[0]: parse_hints(data, where)}
    elif isinstance(data, dict):
        by_photo = {
            _photo(name, sources, where): parse_hints(hints, f"{where} [{name}]") for name, hints in data.items()
        }
    else:
        raise UserError(f"{where} must hold a JSON list of hints or an object mapping file names to lists.")
    for source, hints in by_photo.items():
        width, height = _size(source)
        check_inside(hints, width, height, f"{where} [{source}]")
    return by_photo


def _photo(name: str, sources: Sequence[Path], where: str) -> Path:
    """The one photo of the run that ``name`` names: its path as given, or its base name."""
    matches = [source for source in sources if str(source) == name or source.name == name]
    if len(matches) != 1:
        found = "matches no photo of this run" if not matches else f"matches {len(matches)} photos"
        raise UserError(f"{where}: {name!r} {found}; use the photo's path as given to the command.")
    return matches[0]


def _size(source: Path) -> tuple[int, int]:
    """The photo's (width, height) as the Colorizer sees it (EXIF orientation applied), from its header."""
    from pix2color.data import image_size

    return image_size(source)
