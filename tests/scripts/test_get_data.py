"""scripts/get_data.py: fastai's untar_data fetches and extracts an archive served from a file:// URL."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from pix2color.commands.common import run_cli
from pix2color.data import list_images

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "get_data.py"


@pytest.fixture
def get_data_main(load_script):
    """The script's ``main(argv)``, run in this process."""
    return load_script("get_data").main


@pytest.fixture
def fastai_home(tmp_path, monkeypatch) -> Path:
    """A private $FASTAI_HOME, so fastai's config and archive cache stay inside tmp_path."""
    from fastai.data.external import fastai_cfg

    monkeypatch.setenv("FASTAI_HOME", str(tmp_path / "fastai"))
    fastai_cfg.cache_clear()
    yield tmp_path / "fastai"
    fastai_cfg.cache_clear()


def test_get_data_fetches_and_extracts_an_archive_from_a_file_url(
    get_data_main, fastai_home, make_image, tmp_path, capsys
):
    photos = [make_image("mini/a.jpg"), make_image("mini/sub/b.png", seed=1)]
    archive = tmp_path / "mini.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "mini", arcname="mini")
    for photo in photos:
        photo.unlink()  # only the archive has them now
    dest = tmp_path / "dest"
    assert get_data_main(["coco_sample", "--url", archive.as_uri(), "--dest", str(dest)]) == 0
    assert list_images([dest]) == [dest / "mini/a.jpg", dest / "mini/sub/b.png"]
    assert (fastai_home / "archive" / "mini.tgz").is_file()  # fastai's archive cache was used
    assert f"2 images in {dest / 'mini'}" in capsys.readouterr().out


def test_get_data_reports_a_failed_download_in_one_line(get_data_main, fastai_home, tmp_path, capsys):
    url = (tmp_path / "missing.tgz").as_uri()
    assert run_cli(lambda: get_data_main(["imagenette", "--url", url, "--dest", str(tmp_path / "dest")])) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: could not fetch {url}") and error.count("\n") == 1


def test_get_data_lists_the_valid_names_for_an_unknown_one(tmp_path):
    command = [sys.executable, str(SCRIPT), "coco", "--dest", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr == "error: unknown data set 'coco'; valid names: coco_sample, imagenette, places205_test.\n"
