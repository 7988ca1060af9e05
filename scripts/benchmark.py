"""Throughput benchmarks; one function per measurement, each returning a dict of numbers.

Loader: images/s that one DataLoader worker (one process, one thread) produces with the training transform,
on the original files and on a pre-resized copy that prepare_data.py writes into a temporary folder; also per
CPU second, which stays meaningful when other jobs share the cores.

    python scripts/benchmark.py --size 256 --json benchmark.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from pix2color.commands.common import run_cli
from pix2color.data import ImageDataset, collate_images, list_images

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "train"
BATCH = 16
WARMUP = 16


def loader_throughput(files: Sequence[Path], size: int) -> dict[str, float]:
    """Images/s of one loader worker: decode, random resized crop, flip and collate of ``files`` at ``size``."""
    torch.set_num_threads(1)  # as in a DataLoader worker
    dataset = ImageDataset(files, size, train=True)
    for i in range(min(WARMUP, len(dataset))):
        dataset[i]
    start, start_cpu = time.perf_counter(), time.process_time()
    for first in range(0, len(dataset), BATCH):
        collate_images([dataset[i] for i in range(first, min(first + BATCH, len(dataset)))], size)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    return {
        "images": len(dataset),
        "images_per_s": round(len(dataset) / seconds, 1),
        "images_per_cpu_s": round(len(dataset) / cpu_seconds, 1),  # what a worker with a core of its own gets
    }


def pre_resized_copy(sources: Sequence[str], side: int, out: Path) -> list[Path]:
    """Run prepare_data.py with ``--resize side`` into ``out``; returns the copies it kept."""
    command = [sys.executable, str(ROOT / "scripts" / "prepare_data.py"), *sources, "--out", str(out)]
    subprocess.run([*command, "--resize", str(side)], check=True, stdout=subprocess.DEVNULL)
    return list_images([out / "train.txt", out / "val.txt"])


def loader_section(sources: Sequence[str], sizes: Sequence[int]) -> list[dict]:
    """Loader throughput per size, on the original files and on a copy pre-resized to that size."""
    original = list_images(sources)
    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            variants = {"original": original, f"pre-resized to {size}": pre_resized_copy(sources, size, Path(folder))}
            for name, files in variants.items():
                row = {"size": size, "data": name} | loader_throughput(files, size)
                print(
                    f"loader {size} px, {name}: {row['images_per_s']:.0f} images/s per worker "
                    f"({row['images_per_cpu_s']:.0f} per CPU second, {row['images']} images)"
                )
                rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=[str(DEFAULT_DATA)], help="image folders or manifests")
    parser.add_argument("--size", nargs="+", type=int, default=[256], help="crop sizes to measure")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    results = {"loader": loader_section(args.data, args.size)}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
