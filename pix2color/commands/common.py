"""What every CLI shares: the config flags and turning a user error into one line and exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from pix2color.errors import UserError

EXIT_USER_ERROR = 2


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


def run_cli(main: Callable[[], int]) -> int:
    """Run ``main``; a :class:`UserError` prints ``error: <message>`` to stderr and returns 2."""
    try:
        return main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
