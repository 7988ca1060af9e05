"""Checkpoints: atomic writes, data-only loads, one clear line for every broken file."""

import builtins
import errno
import os
import pickle
import stat
import zipfile

import pytest
import torch
from torch import nn

from pix2color import checkpoint
from pix2color.checkpoint import FORMAT_VERSION, load_checkpoint, load_weights, save_checkpoint
from pix2color.errors import CheckpointError


def tiny_model(hidden: int = 3) -> nn.Module:
    return nn.Sequential(nn.Linear(2, hidden), nn.BatchNorm1d(hidden), nn.Linear(hidden, 1))


def make_state(step: int = 7) -> dict:
    model = tiny_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(4, 2)).sum().backward()
    optimizer.step()
    return {
        "config": {"model": {"encoder": "resnet18"}, "data": {"train": ["/photos"], "size": 128}},
        "stage": "pretrain",
        "generator": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "epoch": 1,
        "rng": {"torch": torch.get_rng_state()},
    }


def assert_same(loaded, expected):
    if isinstance(expected, torch.Tensor):
        assert torch.equal(loaded, expected)
    elif isinstance(expected, dict):
        assert loaded.keys() == expected.keys()
        for key in expected:
            assert_same(loaded[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(loaded) == len(expected)
        for got, want in zip(loaded, expected, strict=True):
            assert_same(got, want)
    else:
        assert loaded == expected


class RunsCode:
    """Unpickling this runs ``exec``: a checkpoint carrying it must never be loaded as code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.exec, (f"open({self.marker!r}, 'w').close()",))


def write_malicious(path, marker, how: str) -> None:
    state = {"format_version": 1, "config": {}, "stage": "gan", "generator": {}, "extra": RunsCode(marker)}
    if how == "pickle":
        path.write_bytes(pickle.dumps(state))
    else:
        torch.save(state, path, _use_new_zipfile_serialization=how == "zip")


def test_round_trip_keeps_everything(tmp_path):
    state = make_state()
    save_checkpoint(state, tmp_path / "last.pt")
    loaded = load_checkpoint(tmp_path / "last.pt")
    assert loaded["format_version"] == FORMAT_VERSION
    assert_same({key: loaded[key] for key in state}, state)


def test_save_creates_missing_folders(tmp_path):
    save_checkpoint(make_state(), tmp_path / "run" / "checkpoints" / "best.pt")
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")["stage"] == "pretrain"


def test_save_replaces_the_previous_file(tmp_path):
    save_checkpoint(make_state(step=1), tmp_path / "last.pt")
    save_checkpoint(make_state(step=2), tmp_path / "last.pt")
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2
    assert os.listdir(tmp_path) == ["last.pt"]


def test_save_deletes_the_partial_file_of_a_killed_save(tmp_path, dead_pid):
    partial = tmp_path / f".last.pt.{dead_pid}.0123abcd.tmp"  # its writer has exited
    partial.write_bytes(b"PK half a checkpoint")
    save_checkpoint(make_state(), tmp_path / "last.pt")
    assert os.listdir(tmp_path) == ["last.pt"]


def test_saved_file_has_the_usual_permissions(tmp_path):
    save_checkpoint(make_state(), tmp_path / "last.pt")
    (tmp_path / "plain").write_bytes(b"")
    assert stat.S_IMODE(os.stat(tmp_path / "last.pt").st_mode) == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)


def disk_full_in_save(obj, handle, *args, **kwargs):
    handle.write(b"PK\x03\x04 half a checkpoint")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def fsync_fails(fd):
    raise OSError(errno.EIO, os.strerror(errno.EIO))


def rename_fails(src, dst):
    raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))


@pytest.mark.parametrize(
    ("target", "name", "fault", "reason"),
    [
        (torch, "save", disk_full_in_save, "No space left on device"),
        (os, "fsync", fsync_fails, "Input/output error"),
        (os, "replace", rename_fails, "cross-device link"),
    ],
    ids=["disk-full", "fsync", "rename"],
)
def test_failed_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path, monkeypatch, target, name, fault, reason):
    path = tmp_path / "last.pt"
    previous = make_state(step=1)
    save_checkpoint(previous, path)
    monkeypatch.setattr(target, name, fault)
    with pytest.raises(CheckpointError, match=reason) as info:
        save_checkpoint(make_state(step=2), path)
    monkeypatch.undo()
    assert str(path) in str(info.value) and "intact" in str(info.value)
    assert os.listdir(tmp_path) == ["last.pt"]
    assert load_checkpoint(path)["step"] == 1


def test_interrupted_write_is_reraised_and_leaves_no_temp(tmp_path, monkeypatch):
    def interrupted(obj, handle, *args, **kwargs):
        handle.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(make_state(), tmp_path / "last.pt")
    assert os.listdir(tmp_path) == []


def test_state_that_cannot_be_pickled_leaves_no_temp(tmp_path):
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        save_checkpoint({**make_state(), "hook": lambda: None}, tmp_path / "last.pt")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("keep", [0.0, 0.01, 0.5, 0.99], ids=["empty", "head", "half", "tail-cut"])
def test_truncated_file_is_one_line_checkpoint_error(tmp_path, keep):
    path = tmp_path / "last.pt"
    save_checkpoint(make_state(), path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="is truncated or not a PyTorch file") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def write_zip_of_text(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a checkpoint")


@pytest.mark.parametrize(
    "write",
    [
        lambda path: path.write_text("these are not weights\n"),
        lambda path: path.write_bytes(bytes(range(256)) * 4),
        lambda path: path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
        write_zip_of_text,
    ],
    ids=["text", "bytes", "png", "zip"],
)
def test_a_file_that_is_not_a_pytorch_file_is_one_line_checkpoint_error(tmp_path, write):
    path = tmp_path / "notes.pt"
    write(path)
    with pytest.raises(CheckpointError, match="truncated or not a PyTorch file") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"best.pt does not exist"):
        load_checkpoint(tmp_path / "best.pt")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("zip", "was refused: it holds Python objects"),
        ("legacy", "was refused: it holds Python objects"),
        ("pickle", "not a PyTorch file|was refused"),  # a bare pickle stops at its protocol-4 frame
    ],
)
def test_pickled_code_is_refused_and_never_runs(tmp_path, how, expected):
    path, marker = tmp_path / "evil.pt", tmp_path / "marker"
    write_malicious(path, marker, how)
    with pytest.raises(CheckpointError, match=expected) as info:
        load_checkpoint(path)
    assert not marker.exists()
    assert "\n" not in str(info.value)


def test_the_malicious_payload_does_run_code_when_loaded_unsafely(tmp_path):
    # The control for the test above: the same file does create the marker when code is allowed.
    path, marker = tmp_path / "evil.pt", tmp_path / "marker"
    write_malicious(path, marker, "zip")
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize(
    ("state", "missing"),
    [
        ({}, "format_version, config, stage, generator"),
        ({"format_version": 1, "config": {}, "stage": "gan"}, "generator"),
        ({"state_dict": {"w": torch.ones(1)}}, "format_version, config, stage, generator"),
        (torch.ones(3), "format_version, config, stage, generator"),
        ([1, 2, 3], "format_version, config, stage, generator"),
    ],
    ids=["empty-dict", "no-generator", "bare-state-dict", "tensor", "list"],
)
def test_other_torch_files_are_not_pix2color_checkpoints(tmp_path, state, missing):
    path = tmp_path / "other.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=rf"is not a pix2color checkpoint \(missing {missing}\)"):
        load_checkpoint(path)


def test_load_weights_fills_the_module(tmp_path):
    source, target = tiny_model(), tiny_model()
    load_weights(target, source.state_dict(), "generator", tmp_path / "best.pt")
    assert_same(target.state_dict(), source.state_dict())


@pytest.mark.parametrize(
    ("state_dict", "expected"),
    [
        (tiny_model(hidden=4).state_dict(), r"wrong shape: 0\.weight, 0\.bias, 1\.weight \.\.\."),
        ({k: v for k, v in tiny_model().state_dict().items() if k != "2.bias"}, r"missing: 2\.bias\)"),
        ({**tiny_model().state_dict(), "extra.weight": torch.ones(1)}, r"unexpected: extra\.weight\)"),
        ({"module." + k: v for k, v in tiny_model().state_dict().items()}, r"missing: 0\.bias, .*unexpected: module\."),
    ],
    ids=["wrong-shape", "missing", "unexpected", "ddp-prefix"],
)
def test_load_weights_mismatch_names_the_part_and_the_keys(tmp_path, state_dict, expected):
    target = tiny_model()
    before = {key: value.clone() for key, value in target.state_dict().items()}
    with pytest.raises(CheckpointError, match=expected) as info:
        load_weights(target, state_dict, "discriminator", tmp_path / "best.pt")
    message = str(info.value)
    assert "its discriminator weights do not fit" in message and str(tmp_path / "best.pt") in message
    assert "\n" not in message
    assert_same(target.state_dict(), before)  # nothing was half-loaded


def test_module_keeps_its_public_names():
    assert {"save_checkpoint", "load_checkpoint", "load_weights", "REQUIRED_KEYS"} <= set(vars(checkpoint))


@pytest.mark.parametrize("version,advice", [(FORMAT_VERSION + 1, "upgrade pix2color"), (1, "an older pix2color")])
def test_a_checkpoint_of_another_format_version_is_one_line_saying_which(tmp_path, version, advice):
    path = tmp_path / "other.pt"
    torch.save({**make_state(), "format_version": version}, path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and f"format version {version}" in message
    assert f"reads version {FORMAT_VERSION}" in message and advice in message
