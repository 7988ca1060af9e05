"""What every CLI shares: --config/--set parsing, and a user error as one line with exit code 2."""

import argparse

import pytest

from pix2color.commands.common import EXIT_USER_ERROR, add_config_args, run_cli
from pix2color.config import load_config
from pix2color.errors import CheckpointError, ConfigError, DataError, UserError


def make_parser(default_config=None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pix2color-test")
    parser.add_argument("--out")
    add_config_args(parser, default_config)
    return parser


@pytest.mark.parametrize("error", [UserError, ConfigError, DataError, CheckpointError])
def test_user_error_prints_one_line_and_returns_2(capsys, error):
    def main():
        raise error("configs/x.yaml: unknown key 'train.bath_size'.")

    assert run_cli(main) == EXIT_USER_ERROR == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: configs/x.yaml: unknown key 'train.bath_size'.\n"


def test_a_real_config_error_reaches_the_user_as_one_line(capsys, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  bath_size: 8\n")
    assert run_cli(lambda: load_config(path) and 0) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: unknown key 'train.bath_size'")


@pytest.mark.parametrize("code", [0, 1, 3, None])
def test_return_codes_pass_through(capsys, code):
    assert run_cli(lambda: code) == code
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("error", [ValueError("a bug"), KeyboardInterrupt()])
def test_other_exceptions_are_not_swallowed(error):
    def main():
        raise error

    with pytest.raises(type(error)):
        run_cli(main)


@pytest.mark.parametrize(
    ("argv", "overrides"),
    [
        ([], []),
        (["--set", "train.batch_size=8"], ["train.batch_size=8"]),
        (["--set", "train.batch_size=8", "model.encoder=resnet34"], ["train.batch_size=8", "model.encoder=resnet34"]),
        (["--set", "a.b=1", "--out", "run", "--set", "c.d=2", "e.f=3"], ["a.b=1", "c.d=2", "e.f=3"]),
        (["--set=data.size=128"], ["data.size=128"]),
    ],
    ids=["none", "one", "several", "repeated", "equals-form"],
)
def test_set_collects_every_override_in_order(argv, overrides):
    assert make_parser().parse_args(argv).overrides == overrides


def test_overrides_do_not_leak_between_parses():
    parser = make_parser()
    parser.parse_args(["--set", "train.amp=false"])
    assert parser.parse_args([]).overrides == []


def test_config_defaults_to_the_given_file():
    assert make_parser("configs/quickstart.yaml").parse_args([]).config == "configs/quickstart.yaml"
    assert make_parser().parse_args(["--config", "configs/resnet18_256.yaml"]).config == "configs/resnet18_256.yaml"


def test_set_without_a_value_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        make_parser().parse_args(["--set"])
    assert info.value.code == 2
    assert "--set" in capsys.readouterr().err


def test_parsed_overrides_load_into_the_config():
    args = make_parser().parse_args(["--set", "train.batch_size=4", "stage1.lr=1e-4"])
    cfg = load_config(None, args.overrides)
    assert (cfg.train.batch_size, cfg.stage1.lr) == (4, 1e-4)


def test_warnings_from_pix2color_are_one_line_and_others_keep_pythons_format():
    import warnings

    import pix2color.data
    from pix2color.commands.common import one_line_warning

    ours = one_line_warning("skipping an unreadable image: a.jpg", UserWarning, pix2color.data.__file__, 320)
    assert ours == "warning: skipping an unreadable image: a.jpg\n"
    theirs = one_line_warning("deprecated", FutureWarning, "/site-packages/torch/jit/_script.py", 7)
    assert theirs.startswith("/site-packages/torch/jit/_script.py:7: FutureWarning: deprecated")
    before = warnings.formatwarning
    assert run_cli(lambda: int(warnings.formatwarning is not one_line_warning)) == 0  # installed while main runs
    assert warnings.formatwarning is before  # and put back after
