"""``pix2color-serve``: serve a checkpoint over HTTP on this machine (loopback) or, with a token, on a network.

The checkpoint loads (and its first forward pass runs) before the server listens, so a bad checkpoint or
setting stops with one ``error:`` line and exit code 2. FastAPI and torch load only after ``--help``.
"""

from __future__ import annotations

import argparse
import os
import typing

from pix2color.commands.common import add_hint_spread_arg, run_cli
from pix2color.config import Device
from pix2color.errors import ConfigError
from pix2color.serve.options import MB, ServeOptions

TOKEN_ENV = "PIX2COLOR_TOKEN"
MIN_TOKEN_LENGTH = 16
DEFAULTS = ServeOptions()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pix2color-serve",
        description="Serve a pix2color checkpoint: an HTTP API (POST /v1/colorize, GET /v1/health, GET /v1/model, "
        "docs at /docs) and a web page at /. Concurrent photos are batched into one forward pass.",
    )
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="a .pt file from RUN_DIR/checkpoints")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1: this machine)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument(
        "--token",
        help=f"required as 'Authorization: Bearer TOKEN' on every API call; needed for a --host other than "
        f"loopback (default: ${TOKEN_ENV}; prefer the variable, a flag shows in ps)",
    )
    parser.add_argument(
        "--render-size", type=int, metavar="N", help="default square the model runs at (default: training size)"
    )
    parser.add_argument("--device", choices=typing.get_args(Device), default="auto")
    parser.add_argument(
        "--max-batch", type=int, default=DEFAULTS.max_batch, metavar="B", help="most photos per forward pass (1: off)"
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=DEFAULTS.max_wait_ms,
        metavar="MS",
        help="how long a batch waits to fill (default: %(default)g)",
    )
    parser.add_argument(
        "--queue",
        type=int,
        default=DEFAULTS.queue,
        metavar="N",
        help="photos admitted at once; more get 503 (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULTS.timeout_s,
        metavar="S",
        help="most seconds a photo waits for the model (default: %(default)g)",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULTS.max_upload_bytes / MB,
        metavar="MB",
        help="largest upload accepted (default: %(default)g)",
    )
    parser.add_argument(
        "--cors", action="append", default=[], metavar="ORIGIN", help="let web pages from ORIGIN call the API"
    )
    add_hint_spread_arg(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``pix2color-serve`` and ``python -m pix2color.serve``; returns the exit code."""
    args = build_parser().parse_args(argv)
    return run_cli(lambda: serve(args))


def serve(args: argparse.Namespace) -> int:
    """Check the settings, load the model, then serve until Ctrl-C."""
    token = args.token or os.environ.get(TOKEN_ENV) or None
    check_exposure(args.host, token)
    options = serve_options(args, token)
    import uvicorn

    from pix2color.serve.app import create_app
    from pix2color.serve.model import ServedModel

    model = ServedModel.load(args.checkpoint, args.device, args.render_size, args.max_batch, args.hint_spread)
    app = create_app(model, options)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", server_header=False)
    return 0


def check_exposure(host: str, token: str | None) -> None:
    """Loopback without a token is fine; any other address needs a token of at least MIN_TOKEN_LENGTH.

    Raises:
        ConfigError: a non-loopback host without a token, or a short token.
    """
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"the token is {len(token)} characters; use at least {MIN_TOKEN_LENGTH}, e.g. from "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'."
        )
    from pix2color.serve.app import is_loopback

    if token is None and not is_loopback(host):
        raise ConfigError(
            f"--host {host} would let other machines reach the server; set a token with --token or "
            f"{TOKEN_ENV}, or listen on 127.0.0.1."
        )


def serve_options(args: argparse.Namespace, token: str | None) -> ServeOptions:
    """The app's ServeOptions from the flags.

    Raises:
        ConfigError: a count, size or time that is not positive.
    """
    for flag, value in {
        "--max-batch": args.max_batch,
        "--queue": args.queue,
        "--timeout": args.timeout,
        "--max-upload-mb": args.max_upload_mb,
    }.items():
        if value <= 0:
            raise ConfigError(f"{flag} {value:g} must be more than 0.")
    if args.max_wait_ms < 0:
        raise ConfigError(f"--max-wait-ms {args.max_wait_ms:g} must be 0 or more.")
    return ServeOptions(
        token=token,
        max_upload_bytes=int(args.max_upload_mb * MB),
        queue=args.queue,
        timeout_s=args.timeout,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        cors=tuple(args.cors),
    )
