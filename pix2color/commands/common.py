"""What every CLI shares: the config flags, a user error as one line and exit code 2, warnings as one line."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

from pix2color.errors import UserError

EXIT_USER_ERROR = 2
PACKAGE = Path(__file__).resolve().parents[1]
PYTHON_FORMATWARNING = warnings.formatwarning


def add_config_args(parser: argparse.ArgumentParser, default_config: str | None = None) -> None:
    """Add ``--config`` and ``--set key=value ...`` to ``parser``."""
    parser.add_argument("--config", default=default_config, help="YAML config file (see configs/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="override config keys, e.g. --set train.batch_size=8 model.encoder=resnet34",
    )


def add_hint_spread_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--no-hint-spread`` (``args.hint_spread`` False): colour hints left to the model alone."""
    parser.add_argument(
        "--no-hint-spread",
        dest="hint_spread",
        action="store_false",
        help="leave colour hints to the model alone, without spreading their corrections after it (a model "
        "trained without model.hints then takes no hints)",
    )


def run_cli(main: Callable[[], int]) -> int:
    """Run ``main``; a :class:`UserError` prints ``error: <message>`` to stderr and returns 2.

    Meanwhile pix2color's own warnings (a skipped image) print as ``warning: <message>``.
    """
    previous, warnings.formatwarning = warnings.formatwarning, one_line_warning
    try:
        return main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        warnings.formatwarning = previous


def one_line_warning(message, category: type[Warning], filename: str, lineno: int, line: str | None = None) -> str:
    """``warning: <message>`` for a warning raised in pix2color; Python's usual text for other libraries'."""
    if Path(filename).resolve().is_relative_to(PACKAGE):
        return f"warning: {message}\n"
    return PYTHON_FORMATWARNING(message, category, filename, lineno, line)


def claim_output(target: Path, source: object, inputs: Mapping[Path, object], writers: dict[Path, object]) -> None:
    """Record that ``source`` writes ``target``; refuse an output that is an input or another input's output.

    Args:
        target: the output path.
        source: the input it comes from, as the messages name it.
        inputs: every input's resolved path -> the input as the messages name it.
        writers: resolved outputs claimed so far -> their inputs; ``target`` is added.

    Raises:
        UserError: ``target`` is one of ``inputs``, or already claimed by another input.
    """
    key = target.resolve()
    if key in inputs:
        raise UserError(f"writing {target} would overwrite the input {inputs[key]}; choose another --out folder.")
    if key in writers:
        raise UserError(
            f"{writers[key]} and {source} would both be written to {target}; "
            "rename one or colorize them in separate runs."
        )
    writers[key] = source
