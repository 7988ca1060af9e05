"""scripts/benchmark.py at a tiny size: every section is printed and written, with sane positive numbers."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PATHS = ("plain", "fast", "fast_config", "fast_config_efficientnet_lite0")  # --encoder's default


@pytest.fixture(scope="module")
def quick_run(write_photos, tmp_path_factory):
    """One ``--quick`` run at 32 px on six tiny photos; returns (stdout, the JSON it wrote)."""
    folder = tmp_path_factory.mktemp("bench")
    write_photos(folder / "photos", 6)
    out = folder / "bench.json"
    args = ["--quick", "--size", "32", "--render-size", "32", "--batch", "2", "--infer-batch", "1", "--steps", "0"]
    args += ["--data", str(folder / "photos"), "--json", str(out)]
    command = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads(out.read_text())


def _numbers(tree) -> list[float]:
    if isinstance(tree, dict):
        return [x for value in tree.values() for x in _numbers(value)]
    return [tree] if isinstance(tree, (int, float)) and not isinstance(tree, bool) else []


def test_json_has_every_section(quick_run):
    _, summary = quick_run
    assert {"machine", "matmul", "loader", "paths", "results"} <= set(summary)
    assert set(summary["results"]) == set(PATHS) == set(summary["paths"])
    assert summary["matmul"]["peak"] == max(v for k, v in summary["matmul"].items() if k != "peak") > 0
    assert {row["data"] for row in summary["loader"]} == {"original", "pre-resized"}
    for name, results in summary["results"].items():
        latency = {"latency_0.05", "latency_0.1"} if not name.startswith("fast_config") else set()
        assert set(results) == {"pretrain_32", "gan_32", "cost_32", "inference", "achieved"} | latency
        for key in ("pretrain_32", "gan_32", "inference"):
            assert results[key]["images_per_s"] > 0
        assert results["pretrain_32"]["peak_mb"] > 0 and results["gan_32"]["peak_mb"] > 0
        assert results["cost_32"]["params_m"] > 1 and results["cost_32"]["gflops_32"] > 0
        assert results["achieved"]["gflops_per_s"] > 0 and results["achieved"]["percent_of_peak"] > 0
    for key in ("latency_0.05", "latency_0.1"):
        latency = summary["results"]["fast"][key]
        assert latency["seconds"] > 0 and latency["megapixels"] == pytest.approx(float(key[8:]), rel=0.05)
    assert summary["results"]["fast"]["latency_0.1"]["peak_mb"] > 0


def test_numbers_are_finite(quick_run):
    _, summary = quick_run
    numbers = _numbers(summary["results"]) + _numbers(summary["loader"])
    assert numbers and all(math.isfinite(x) for x in numbers)


def test_the_fast_config_drops_the_cross_block_and_the_lite0_column_is_the_smaller_model(quick_run):
    _, summary = quick_run
    plain, fast, lite = (
        summary["results"][name]["cost_32"] for name in ("plain", "fast_config", "fast_config_efficientnet_lite0")
    )
    assert fast["gflops_32"] < 0.8 * plain["gflops_32"]
    assert lite["params_m"] < 0.5 * fast["params_m"] and lite["gflops_32"] < fast["gflops_32"]


def test_prints_the_tables_and_targets(quick_run):
    stdout, summary = quick_run
    assert f"load average {summary['machine']['load_average_start']}" in stdout
    assert "| loader, images/s per worker |" in stdout
    header = next(line for line in stdout.splitlines() if line.startswith("| measurement |"))
    assert header.count("|") == len(PATHS) + 2
    rows = ("stage 1 training", "stage 2 training", "inference, images/s", "colorize latency", "peak RSS")
    for row in (*rows, "forward GFLOPs per image", "stage 1 achieved GFLOP/s"):
        assert f"| {row}" in stdout, row
    assert "whole benchmark < 600 s" in stdout


def _printed_ratios(stdout: str, row: str) -> list[float]:
    line = next(line for line in stdout.splitlines() if line.startswith(f"| {row}"))
    return [float(ratio) for ratio in re.findall(r"\(([0-9.]+)×\)", line)]


def test_printed_speed_ups_and_verdicts_follow_the_measurements(quick_run):
    stdout, summary = quick_run
    images_per_s = {path: summary["results"][path]["pretrain_32"]["images_per_s"] for path in PATHS}
    expected = [round(images_per_s[path] / images_per_s["plain"], 2) for path in PATHS]
    assert _printed_ratios(stdout, "stage 1 training") == pytest.approx(expected, abs=0.006)
    verdict = "met" if expected[1] >= 2.5 else "MISSED"
    assert re.search(rf"^- stage 1 training ≥ 2.5× plain: [0-9.]+× {verdict}$", stdout, re.MULTILINE)
    lite = images_per_s["fast_config_efficientnet_lite0"] / images_per_s["fast_config"]
    verdict = "met" if lite >= 2 else "MISSED"
    target = rf"^- stage 1 training on efficientnet_lite0 ≥ 2× fast_resnet18_128: [0-9.]+× {verdict}$"
    assert re.search(target, stdout, re.MULTILINE), stdout
