"""atomic_write: replaces the target only on success and clears what killed writers left behind."""

import os
import subprocess
import sys

import pytest

from pix2color.files import atomic_write


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_replaces_the_target_on_success(tmp_path):
    target = tmp_path / "last.pt"
    target.write_bytes(b"old")
    with atomic_write(target) as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["last.pt"]


def test_an_error_keeps_the_previous_content_and_no_temp(tmp_path):
    target = tmp_path / "last.pt"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["last.pt"]


def test_removes_temps_of_killed_writers_and_keeps_live_ones(tmp_path):
    target = tmp_path / "last.pt"
    orphan = tmp_path / f".last.pt.{_dead_pid()}.deadbeef.tmp"
    live = tmp_path / f".last.pt.{os.getppid()}.cafef00d.tmp"  # a writer that is still running
    other = tmp_path / f".best.pt.{_dead_pid()}.deadbeef.tmp"  # another target's: not this write's business
    for path in (orphan, live, other):
        path.write_bytes(b"partial")
    with atomic_write(target) as handle:
        handle.write(b"new")
    assert not orphan.exists()
    assert live.exists() and other.exists()
    assert target.read_bytes() == b"new"
