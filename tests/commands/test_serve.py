"""pix2color-serve's start-up checks: each stops with one error line and exit code 2 before serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from pix2color.commands.serve import build_parser, main, serve_options
from pix2color.serve.options import ServeOptions
from tests.robustness.conftest import assert_one_error_line


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--host", "0.0.0.0"], ("--host 0.0.0.0", "--token", "PIX2COLOR_TOKEN")),
        (["--host", "pix2color.example"], ("--host pix2color.example",)),
        (["--host", "0.0.0.0", "--token", "short"], ("5 characters", "at least 16")),
        (["--max-batch", "0"], ("--max-batch 0",)),
        (["--queue", "-1"], ("--queue -1",)),
        (["--max-wait-ms", "-5"], ("--max-wait-ms -5",)),
    ],
)
def test_unsafe_or_bad_settings_stop_before_the_model_loads(
    flags: list[str], needles: tuple[str, ...], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIX2COLOR_TOKEN", raising=False)
    assert main(["--checkpoint", "missing.pt", *flags]) == 2  # the checkpoint is never opened
    assert_one_error_line(capsys.readouterr().err, *needles)


def test_a_bad_checkpoint_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert_one_error_line(capsys.readouterr().err, "missing.pt", "does not exist")


def test_loopback_or_a_long_token_is_accepted() -> None:
    from pix2color.commands.serve import check_exposure

    check_exposure("0.0.0.0", "x" * 16)  # no error
    check_exposure("127.0.0.1", None)
    check_exposure("::1", None)


def test_the_flags_default_to_the_serve_options_defaults() -> None:
    args = build_parser().parse_args(["--checkpoint", "best.pt"])
    assert serve_options(args, None) == ServeOptions()
