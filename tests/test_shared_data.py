"""Tests that read ../shared/data fail with one line naming the folder when it is missing (a fresh clone)."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).resolve().parent / "conftest.py"


def test_a_missing_shared_data_folder_fails_the_test_with_one_line(pytester):
    pytester.makeconftest(CONFTEST.read_text())  # its ../shared/data, from a temp folder, does not exist
    pytester.makepyfile(test_reads="def test_reads(shared_data):\n    assert False, 'never reached'\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-rE")
    result.assert_outcomes(errors=1)  # the fixture fails, at setup
    result.stdout.fnmatch_lines(["*shared*data is missing: this test reads the real photos of ../shared/data*"])
    assert "never reached" not in result.stdout.str() and "Traceback" not in result.stdout.str()
