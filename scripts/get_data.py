"""Fetch a public photo data set with fastai's ``untar_data`` and extract it under --dest.

    python scripts/get_data.py coco_sample --dest data      # -> data/coco_sample, about 10k photos
    python scripts/get_data.py imagenette --dest data       # -> data/imagenette2-320

The archive is cached in fastai's archive folder ($FASTAI_HOME/archive, default ~/.fastai/archive) and checked
against fastai's known sizes and hashes where fastai has them; --url fetches another copy (file:// works).
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import urllib.error
from collections.abc import Sequence
from pathlib import Path

from pix2color.commands.common import run_cli
from pix2color.errors import DataError

PLACES205_TEST = "http://data.csail.mit.edu/places/places205/testSetPlaces205_resize.tar.gz"
FASTAI_DATASETS = {  # name -> attribute of fastai.data.external.URLs
    "coco_sample": "COCO_SAMPLE",  # the 10k-image COCO subset of fastai's colorization lesson
    "imagenette": "IMAGENETTE_320",  # 10 ImageNet classes, shorter side 320
}
OTHER_DATASETS = {  # name -> URL
    "places205_test": PLACES205_TEST,  # the Places205 test set (41k photos, 256x256)
}
DATASETS = sorted(FASTAI_DATASETS.keys() | OTHER_DATASETS.keys())


def dataset_url(name: str) -> str:
    """The download URL of a named data set.

    Raises:
        DataError: an unknown name; lists the valid ones.
    """
    if name in OTHER_DATASETS:
        return OTHER_DATASETS[name]
    if name not in FASTAI_DATASETS:
        raise DataError(f"unknown data set '{name}'; valid names: {', '.join(DATASETS)}.")
    from fastai.data.external import URLs  # importing fastai takes seconds: only when downloading

    return getattr(URLs, FASTAI_DATASETS[name])


def fetch(url: str, dest: Path) -> Path:
    """Download ``url`` (unless cached) and extract it under ``dest`` with fastai; returns the extracted folder.

    Raises:
        DataError: the download or the extraction failed.
    """
    from fastai.data.external import untar_data

    try:
        return untar_data(url, data=dest.absolute())
    except (urllib.error.URLError, OSError, tarfile.TarError) as exc:
        raise DataError(f"could not fetch {url} ({exc}); check the connection, or pass --url with a copy.") from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", metavar="NAME", help=f"one of: {', '.join(DATASETS)}")
    parser.add_argument("--dest", type=Path, required=True, help="folder to extract into")
    parser.add_argument("--url", help="fetch from this URL instead of the data set's own (file:// works)")
    args = parser.parse_args(argv)
    url = dataset_url(args.name)
    folder = fetch(args.url or url, args.dest)
    from pix2color.data import list_images  # imports torch: not needed for --help or a wrong name

    print(f"{len(list_images([folder]))} images in {folder}; train on them with --data {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
