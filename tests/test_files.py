"""atomic_write replaces the target only on success; remove_orphaned_temps clears what killed writers left."""

import os

import pytest

from pix2color.files import atomic_write, remove_orphaned_temps


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


def test_removes_temps_of_killed_writers_and_keeps_live_ones(tmp_path, dead_pid):
    target = tmp_path / "photo[1].pt"  # glob characters in the name must not widen the match
    dead, live = dead_pid, os.getppid()  # the parent: a writer that is still running
    orphan = tmp_path / f".photo[1].pt.{dead}.deadbeef.tmp"
    kept = [
        tmp_path / f".photo[1].pt.{live}.cafef00d.tmp",  # a live writer's
        tmp_path / f".photo1.pt.{dead}.deadbeef.tmp",  # what the glob photo[1] would match
        tmp_path / f".photo[1].pt.{dead}.{live}.cafef00d.tmp",  # a live temp of the target "photo[1].pt.<dead>"
        tmp_path / f".best.pt.{dead}.deadbeef.tmp",  # another target's
    ]
    for path in (orphan, *kept):
        path.write_bytes(b"partial")
    remove_orphaned_temps(target)
    assert not orphan.exists()
    assert all(path.exists() for path in kept)
