"""scripts/sweep_hint_spread.py: a PSNR row per spread setting, the same at 0 hints, different with hints."""

import pytest


@pytest.fixture(scope="module")
def sweep_script(load_script):
    return load_script("sweep_hint_spread")


def _rows(printed: str) -> list[list[str]]:
    lines = [line for line in printed.splitlines() if line.startswith("| ") and not line.startswith("| reach")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_each_setting_gets_a_row_equal_at_0_hints_and_its_own_with_hints(
    sweep_script, checkpoints, write_photos, tmp_path, capsys
):
    write_photos(tmp_path / "photos", 2)
    argv = ["--data", str(tmp_path / "photos"), "--checkpoint", str(checkpoints["zero"]), "--size", "32"]
    argv += ["--workers", "0", "--counts", "0", "10", "--reach", "0.05", "0.5"]
    assert sweep_script.main(argv) == 0
    rows = _rows(capsys.readouterr().out)
    assert [row[0] for row in rows] == ["0.05", "0.5"]
    assert rows[0][4] == rows[1][4]  # no hints: nothing to spread
    assert rows[0][5] != rows[1][5]


def test_two_checkpoints_or_a_bad_setting_are_one_line_exit_2(
    sweep_script, checkpoints, write_photos, tmp_path, capsys
):
    write_photos(tmp_path / "photos", 1)
    argv = ["--data", str(tmp_path / "photos"), "--checkpoint", str(checkpoints["zero"]), "--size", "32"]
    assert sweep_script.main([*argv, "--checkpoint", str(checkpoints["random"])]) == 2
    assert "give one --checkpoint" in capsys.readouterr().err
    assert sweep_script.main([*argv, "--keep-weight", "0"]) == 2
    assert "hint spread keep_weight=0.0 must be above 0" in capsys.readouterr().err
