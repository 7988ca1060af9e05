"""Throughput benchmarks: loader, training, inference, memory and FLOPs, plain fp32 against the fast path.

Each compute measurement runs in a fresh subprocess (so its peak RSS, or max allocated CUDA memory, is its own)
through the library's own code: the real ``step`` of the training stages (``PretrainStage`` and ``Pix2PixStage``
as the training loop builds them, fed random uint8 batches) and ``Colorizer.predict_rgb`` / ``colorize``. Columns:

- plain: fp32, NCHW, the default architecture (ResNet18 U-Net with its full-resolution cross block);
- fast: channels_last and autocast (``--precision``; auto is the library's choice: fp16 on CUDA, bf16 on a CPU
  with native bf16, fp32 on one without), + torch.compile with ``--compile``; the same architecture;
- fast + configs/fast_resnet18_128.yaml: the fast path on the architecture without the cross block;
- fast + configs/fast_resnet18_128.yaml on NAME: the same layout on each ``--encoder`` (EfficientNet-Lite0 by
  default), for the training target of a smaller model (at least 2x the images/s of the ResNet18 column).

Achieved GFLOP/s of stage 1 (3 x forward FLOPs x images/s) is set against the best large ``torch.matmul`` of
the same run. The loader section gives images/s of one DataLoader worker (one process, one thread) with the
training transform, on the original files and on a pre-resized copy that prepare_data.py writes to a temporary
folder; also per CPU second, which stays meaningful when other jobs share the cores.

    python scripts/benchmark.py --json benchmark.json            # CPU, 128 px training, ~8 min on 2 cores
    python scripts/benchmark.py --video --encoder efficientnet_lite0   # frames/s, the default and Lite0 U-Nets
    python scripts/benchmark.py --device cuda --precision bf16 --compile --size 256
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from pix2color.commands.common import run_cli
from pix2color.data import ImageDataset, collate_images, list_images
from pix2color.runtime import amp_dtype, cpu_has_native_bf16
from pix2color.training.protocol import Progress
from pix2color.training.stages import STAGES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "train"
FAST_CONFIG = ROOT / "configs" / "fast_resnet18_128.yaml"
BATCH = 16
MATMUL_BUDGET_S = 2.0  # seconds of timed products per dtype
WARMUP = 16
MEGAPIXELS = (1, 12, 24)
QUICK_MEGAPIXELS = (0.05, 0.1)
BUDGET_S = 25.0  # timed calls stop once they have taken this long (at least one call)
SLOW_S = 30.0  # a first call slower than this is the measurement (no warm-up)
QUICK_FILES = 32
LOADER_FILES = 512  # enough for a stable rate; prepare_data.py resizes them in about half a minute
DTYPE_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


# --------------------------------------------------------------------------------------------------- loader


def loader_throughput(files: Sequence[Path], size: int) -> dict[str, float]:
    """Images/s of one loader worker: decode, random resized crop, flip and collate of ``files`` at ``size``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker
    try:
        dataset = ImageDataset(files, size, train=True)
        for i in range(min(WARMUP, len(dataset))):
            dataset[i]
        start, start_cpu = time.perf_counter(), time.process_time()
        for first in range(0, len(dataset), BATCH):
            collate_images([dataset[i] for i in range(first, min(first + BATCH, len(dataset)))], size)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    finally:
        torch.set_num_threads(threads)  # the matmul peak and the rest use every core
    return {
        "images": len(dataset),
        "images_per_s": round(len(dataset) / seconds, 1),
        "images_per_cpu_s": round(len(dataset) / cpu_seconds, 1),  # what a worker with a core of its own gets
    }


def pre_resized_copy(sources: Sequence[str | Path], side: int, out: Path) -> list[Path]:
    """Run prepare_data.py with ``--resize side`` into ``out``, dropping nothing; returns the copies."""
    command = [sys.executable, str(ROOT / "scripts" / "prepare_data.py"), *map(str, sources), "--out", str(out)]
    keep_all = ["--min-size", "1", "--min-chroma", "0"]  # the same photos as the originals
    subprocess.run([*command, "--resize", str(side), *keep_all], check=True, stdout=subprocess.DEVNULL)
    return list_images([out / "train.txt", out / "val.txt"])


def loader_section(sources: Sequence[str], sizes: Sequence[int], limit: int = 0) -> list[dict]:
    """Loader throughput per size, on the original files and on a copy pre-resized to that size.

    ``limit`` > 0 keeps the first ``limit`` files (a manifest of them feeds prepare_data.py).
    """
    original = list_images(sources)[: limit or None]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        manifest = Path(folder) / "files.txt"
        manifest.write_text("".join(f"{path.resolve()}\n" for path in original))
        for size in sizes:
            copy = pre_resized_copy([manifest], size, Path(folder) / f"resized{size}")
            for name, files in {"original": original, "pre-resized": copy}.items():
                rows.append({"size": size, "data": name} | loader_throughput(files, size))
    return rows


# -------------------------------------------------------------------------------------------------- machine


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what platform knows."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine_info(device: str) -> dict:
    """What the figures were taken on: CPU or GPU, cores, threads, ISA, bf16 kernels, torch, load average."""
    info = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_kernels": device == "cuda" or cpu_has_native_bf16(),
        "torch": torch.__version__,
        "device": device,
        "load_average_start": round(os.getloadavg()[0], 2),
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def matmul_gflops(dtype: torch.dtype, device: str, max_n: int = 4096) -> float:
    """Best GFLOP/s of square ``torch.matmul`` in ``dtype``, growing n until one product takes ~0.2 s (<= 2 s)."""
    best, n, spent = 0.0, 256, 0.0
    while n <= max_n and spent < MATMUL_BUDGET_S:
        a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
        torch.matmul(a, b)
        for _ in range(3):
            seconds = timed_call(lambda a=a, b=b: torch.matmul(a, b), device)
            spent += seconds
            best = max(best, 2 * n**3 / seconds / 1e9)
        if seconds > 0.2:
            break
        n *= 2
    return round(best, 1)


def matmul_section(device: str, quick: bool) -> dict[str, float]:
    """Matmul GFLOP/s per dtype and their best, the machine's peak that the achieved FLOP rates are held to."""
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    if device == "cuda":
        dtypes["fp16"] = torch.float16
    max_n = 512 if quick else 4096
    result = {name: matmul_gflops(dtype, device, max_n=max_n) for name, dtype in dtypes.items()}
    return result | {"peak": max(result.values())}


def timed_call(fn: Callable[[], object], device: str) -> float:
    """Seconds one call of ``fn`` takes, synchronising CUDA around it."""
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def mean_seconds(fn: Callable[[], object], device: str, steps: int, compiled: bool = False) -> float:
    """Mean seconds per call of ``fn`` after a warm-up call, over up to ``steps`` calls within ``BUDGET_S``.

    ``steps=0`` (a smoke run), or a call so slow (over ``SLOW_S``) that warm-up costs are noise, is timed by the
    first call; a ``compiled`` one gets a second warm-up call (recompilations) and no such shortcut.
    """
    first = timed_call(fn, device)
    if compiled:
        timed_call(fn, device)
    elif steps == 0 or first > SLOW_S:
        return first
    times = [timed_call(fn, device)]
    while len(times) < steps and sum(times) < BUDGET_S:
        times.append(timed_call(fn, device))
    return sum(times) / len(times)


# ---------------------------------------------------------------------------------------------------- paths


def compute_paths(device: str, precision: str, compile_fast: bool, encoders: Sequence[str] = ()) -> dict[str, dict]:
    """Each compute path: a config file (None: the defaults), its ``--set`` overrides and a column label; the
    fast config once more on each of ``encoders`` (paths ``fast_config_NAME``).

    The fast path is channels_last with autocast in ``precision``; "auto" is the library's own choice
    (:func:`pix2color.runtime.amp_dtype`): fp16 on CUDA, bf16 on a CPU with native bf16, else fp32.
    """
    if precision == "fp32":
        amp, dtype = ["train.amp=false"], None
    else:
        amp = ["train.amp=true", f"train.amp_dtype={precision}"]
        dtype = amp_dtype(torch.device(device), True, precision)
    fast = [*amp, "train.channels_last=true", f"train.compile={str(compile_fast).lower()}"]
    name = f"{DTYPE_NAMES[dtype]} + channels_last" + (" + compile" if compile_fast else "")
    on_encoders = {
        f"fast_config_{encoder}": {
            "label": f"fast + {FAST_CONFIG.stem} on {encoder}",
            "config": str(FAST_CONFIG),
            "set": [*fast, f"model.encoder={encoder}"],
        }
        for encoder in encoders
    }
    return {
        "plain": {"label": "plain: fp32", "config": None, "set": ["train.amp=false", "train.channels_last=false"]},
        "fast": {"label": f"fast: {name}", "config": None, "set": fast},
        "fast_config": {"label": f"fast + {FAST_CONFIG.stem}", "config": str(FAST_CONFIG), "set": fast},
    } | on_encoders


def model_paths(args: argparse.Namespace) -> dict[str, dict]:
    """The architectures the video and serving sections time: the default's fast path, then each ``--encoder``."""
    paths = compute_paths(args.device, args.precision, False, args.encoder)
    return {"fast": paths["fast"]} | {name: path for name, path in paths.items() if name.startswith("fast_config_")}


# ------------------------------------------------------------------------------------ measurements (worker)


def path_config(path: dict, size: int, batch: int, device: str, data: Path):
    """The path's resolved config at ``size`` and ``batch`` on ``device``, offline, reading ``data``."""
    from pix2color.config import load_config

    overrides = [
        *path["set"],
        f"data.size={size}",
        f"train.batch_size={batch}",
        f"train.device={device}",
        f"data.train={data}",
        "data.workers=0",
        "model.pretrained=none",  # the timing does not depend on the weights
    ]
    return load_config(path["config"], overrides)


def build_stage(cfg, stage: str):
    """The training stage ``stage`` (a name in STAGES) with its models and optimizers, as the loop builds it."""
    from pix2color.runtime import Runtime
    from pix2color.training.context import StageContext

    return STAGES[stage](StageContext(cfg, Runtime(torch.device(cfg.train.device))), resuming=False)


def random_batch(batch: int, size: int, device: str) -> torch.Tensor:
    """(batch, 3, size, size) uint8 RGB noise on ``device``; the cost of a step does not depend on content."""
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=generator).to(device)


def train_throughput(path: dict, stage: str, size: int, batch: int, steps: int, device: str) -> dict[str, float]:
    """Images/s of one training step of ``stage``, a name in STAGES (stage 2's step is a D and a G update)."""
    cfg = path_config(path, size, batch, device, ROOT)  # data.train is not read
    trained = build_stage(cfg, stage)
    trained.start_epoch(0)
    rgb = random_batch(batch, size, device)
    seconds = mean_seconds(lambda: trained.step(rgb, Progress(0, 0.0)), device, steps, cfg.train.compile)
    return {"images_per_s": batch / seconds, "step_s": seconds}


def model_cost(path: dict, size: int, render: int, device: str) -> dict[str, float]:
    """Generator parameters (millions) and forward GFLOPs per image at ``size`` and at ``render``."""
    from torch.utils.flop_counter import FlopCounterMode

    from pix2color.models.generator import build_generator

    cfg = path_config(path, size, 1, device, ROOT)  # data.train is not read
    generator = build_generator(cfg.model, size, cfg.color.space).to(device).eval()
    result = {"params_m": sum(p.numel() for p in generator.parameters()) / 1e6}
    for side in sorted({size, render}):
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            generator(torch.zeros(1, 1, side, side, device=device))
        result[f"gflops_{side}"] = counter.get_total_flops() / 1e9
    return result


def build_colorizer(path: dict, render: int, batch: int, device: str):
    """A :class:`Colorizer` at render size ``render`` with the path's precision, memory format and compilation."""
    from pix2color.inference import Colorizer
    from pix2color.models.generator import build_generator

    cfg = path_config(path, render, batch, device, ROOT)  # data.train is not read
    generator = build_generator(cfg.model, render, cfg.color.space)
    if cfg.train.compile:
        generator = torch.compile(generator)  # compiles at the first call, after the Colorizer has placed it
    precision = cfg.train.amp_dtype if cfg.train.amp else "fp32"
    return Colorizer(
        generator,
        cfg.color.space,
        render,
        device=device,
        batch_size=batch,
        precision=precision,
        channels_last=cfg.train.channels_last,
    )


def inference_throughput(colorizer, batch: int, steps: int, device: str) -> dict[str, float]:
    """Images/s of ``Colorizer.predict_rgb`` on batches of render-sized uint8 photos (Lab, model, join)."""
    rgb = random_batch(batch, colorizer.render_size, device)
    compiled = hasattr(colorizer.generator, "_orig_mod")  # torch.compile's wrapper
    seconds = mean_seconds(lambda: colorizer.predict_rgb(rgb), device, steps, compiled)
    return {"images_per_s": batch / seconds, "batch_s": seconds}


def synthetic_photo(megapixels: float):
    """A smooth colourful 3:2 RGB photo of about ``megapixels``, as a decoded PIL image."""
    import numpy as np
    from PIL import Image

    width = round(math.sqrt(megapixels * 1e6 * 1.5))
    height = round(width / 1.5)
    xs = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    ys = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    rgb = np.stack(np.broadcast_arrays(xs + 0 * ys, ys + 0 * xs, (xs + ys) / 2), axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


def colorize_latency(colorizer, megapixels: float, device: str) -> dict[str, float]:
    """Seconds of ``Colorizer.colorize`` on one photo of ``megapixels`` (full-resolution join)."""
    photo = synthetic_photo(megapixels)
    seconds = timed_call(lambda: colorizer.colorize(photo), device)
    return {"megapixels": photo.width * photo.height / 1e6, "seconds": seconds}


def peak_memory_mb(device: str) -> float:
    """This process's peak: max allocated CUDA memory, or max resident set size on the CPU.

    On Linux the RSS peak is VmHWM: ``ru_maxrss`` survives ``exec``, so a fresh subprocess would report at
    least its parent's peak.
    """
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    status = Path("/proc/self/status")
    if status.exists():
        peak_kib = next(line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        return int(peak_kib) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak_memory(device: str) -> None:
    """Start a new peak for :func:`peak_memory_mb` (Linux resets VmHWM through /proc/self/clear_refs)."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def run_task(task: dict) -> dict[str, dict]:
    """One task's measurements by name; the first carries the task's peak memory.

    Kinds: each stage's name (its training images/s; the first stage's then the model's parameters and FLOPs),
    "inference" (images/s, then the latency of each photo size in ``megapixels``, smallest first, after a
    warm-up) and "latency" (``megapixels`` in a process of their own, for their peak memory).
    """
    kind, path, device, size = task["kind"], task["path"], task["device"], task["size"]
    reset_peak_memory(device)
    start = time.perf_counter()
    results = {}
    if kind in STAGES:
        results[f"{kind}_{size}"] = train_throughput(path, kind, size, task["batch"], task["steps"], device)
        results[f"{kind}_{size}"]["peak_mb"] = peak_memory_mb(device)
        if kind == next(iter(STAGES)):
            results[f"cost_{size}"] = model_cost(path, size, task["render"], device)
    else:
        colorizer = build_colorizer(path, task["render"], task["batch"], device)
        if kind == "inference":
            results["inference"] = inference_throughput(colorizer, task["batch"], task["steps"], device)
        elif task["steps"]:
            colorizer.colorize(synthetic_photo(0.05))  # warms the model up at the render size
        for megapixels in task["megapixels"]:
            results[f"latency_{megapixels}"] = colorize_latency(colorizer, megapixels, device)
        results[next(iter(results))]["peak_mb"] = peak_memory_mb(device)
    results[next(iter(results))]["wall_s"] = time.perf_counter() - start
    return results


def worker(tasks: list[dict]) -> None:
    """Run ``tasks`` in order in this process and print their merged results as one JSON line."""
    print(json.dumps({name: result for task in tasks for name, result in run_task(task).items()}))


# ----------------------------------------------------------------------------------------- driver (parent)


def in_subprocess(tasks: list[dict]) -> dict[str, dict]:
    """Run ``tasks`` in one fresh Python process; returns their results by name."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(tasks)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"benchmark worker failed on {tasks[0]['kind']}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def path_tasks(path: dict, name: str, args: argparse.Namespace) -> list[dict]:
    """The tasks of one path; latency is left out for the fast configs (their join is the fast path's)."""
    base = {"path": path, "device": args.device, "render": args.render_size, "size": args.size[0]}
    train = base | {"batch": args.batch, "steps": args.steps}
    tasks = [train | {"kind": kind, "size": size} for size in args.size for kind in STAGES]
    *smaller, largest = megapixel_sizes(args)
    with_latency = not name.startswith("fast_config")
    inference = {"kind": "inference", "batch": args.infer_batch, "steps": args.steps}
    tasks.append(base | inference | {"megapixels": smaller if with_latency else []})
    if with_latency:
        tasks.append(base | {"kind": "latency", "batch": 1, "steps": args.steps, "megapixels": [largest]})
    return tasks


def measure_paths(paths: dict[str, dict], args: argparse.Namespace) -> dict[str, dict[str, dict]]:
    """Every measurement of every path, each task in its own process (a path's tasks in one with ``--quick``)."""
    results = {}
    for name, path in paths.items():
        tasks = path_tasks(path, name, args)
        batches = [tasks] if args.quick else [[task] for task in tasks]
        results[name] = {key: value for batch in batches for key, value in in_subprocess(batch).items()}
    return results


def megapixel_sizes(args: argparse.Namespace) -> tuple[float, ...]:
    """The photo sizes whose colorize latency is measured."""
    return QUICK_MEGAPIXELS if args.quick else MEGAPIXELS


def achieved(results: dict, size: int, peak: float) -> dict[str, float]:
    """Stage 1 GFLOP/s (3 x forward FLOPs per image x images/s) and its share of the matmul peak."""
    gflops = 3 * results[f"cost_{size}"][f"gflops_{size}"] * results[f"pretrain_{size}"]["images_per_s"]
    return {"gflops_per_s": gflops, "percent_of_peak": 100 * gflops / peak}


# ------------------------------------------------------------------------------------------------- printing


def fmt(value: float) -> str:
    """Three significant digits, at least one decimal below 100."""
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}" if value >= 1 else f"{value:.2g}"


def table_rows(args: argparse.Namespace) -> list[tuple[str, str, str, str]]:
    """(label, result name, field, comparison with plain: "faster", "slower" or "") for each table row."""
    size, last_mp = args.size[0], megapixel_sizes(args)[-1]
    memory = "max allocated" if args.device == "cuda" else "peak RSS"
    rows = []
    for side in args.size:
        where = f"{side}², batch {args.batch}"
        rows.append((f"stage 1 training, images/s ({where})", f"pretrain_{side}", "images_per_s", "faster"))
        rows.append((f"stage 2 training, images/s ({where})", f"gan_{side}", "images_per_s", "faster"))
    where = f"{args.render_size}², batch {args.infer_batch}"
    rows.append((f"inference, images/s ({where})", "inference", "images_per_s", "faster"))
    rows += [(f"colorize latency, {mp} MP, s", f"latency_{mp}", "seconds", "slower") for mp in megapixel_sizes(args)]
    rows += [
        (f"{memory}, stage 1 training, MB", f"pretrain_{size}", "peak_mb", ""),
        (f"{memory}, stage 2 training, MB", f"gan_{size}", "peak_mb", ""),
        (f"{memory}, colorize {last_mp} MP, MB", f"latency_{last_mp}", "peak_mb", ""),
        ("generator parameters, M", f"cost_{size}", "params_m", ""),
    ]
    rows += [(f"forward GFLOPs per image, {side}²", f"cost_{side}", f"gflops_{side}", "") for side in args.size]
    if args.render_size not in args.size:
        render = args.render_size
        rows.append((f"forward GFLOPs per image, {render}²", f"cost_{size}", f"gflops_{render}", ""))
    rows.append((f"stage 1 achieved GFLOP/s ({size}²)", "achieved", "gflops_per_s", ""))
    rows.append(("stage 1 share of matmul peak, %", "achieved", "percent_of_peak", ""))
    return rows


def cell(value: float | None, plain: float | None, compare: str) -> str:
    """A value, with its speed-up over plain where that means something; "–" where not measured."""
    if value is None:
        return "–"
    if not compare or plain is None:
        return fmt(value)
    ratio = value / plain if compare == "faster" else plain / value
    return f"{fmt(value)} ({ratio:.2f}×)"


def results_table(results: dict, paths: dict, args: argparse.Namespace) -> str:
    """The compute table: one row per measurement, one column per path, speed-ups over plain in brackets."""
    lines = ["| measurement | " + " | ".join(path["label"] for path in paths.values()) + " |"]
    lines.append("|---|" + "---|" * len(paths))
    for label, name, field, compare in table_rows(args):
        values = [results[path].get(name, {}).get(field) for path in paths]
        lines.append(f"| {label} | " + " | ".join(cell(value, values[0], compare) for value in values) + " |")
    return "\n".join(lines)


def loader_table(rows: list[dict]) -> str:
    """Loader images/s per worker, original files against the pre-resized copy."""
    lines = ["| loader, images/s per worker | original files | pre-resized copy |", "|---|---|---|"]
    for size in sorted({row["size"] for row in rows}):
        got = {row["data"]: row for row in rows if row["size"] == size}
        original, resized = got["original"], got["pre-resized"]
        ratio = resized["images_per_s"] / original["images_per_s"]
        lines.append(
            f"| {size} px ({original['images']} images; per CPU second) | {fmt(original['images_per_s'])} "
            f"({fmt(original['images_per_cpu_s'])}) | {fmt(resized['images_per_s'])} "
            f"({fmt(resized['images_per_cpu_s'])}) ({ratio:.2f}×) |"
        )
    return "\n".join(lines)


def header(machine: dict, matmul: dict) -> str:
    """One line on the machine and the matmul peak."""
    what = machine.get("gpu") or f"{machine['cpu']}, {machine['cores']} cores"
    loads = f"load average {machine['load_average_start']} at start, {machine['load_average_end']} at end"
    peaks = ", ".join(f"{name} {value}" for name, value in matmul.items() if name != "peak")
    return (
        f"{what} ({machine['cpu_capability']}, bf16 kernels: {'yes' if machine['bf16_kernels'] else 'no'}, "
        f"{machine['torch_threads']} torch threads), torch {machine['torch']}, {loads}; "
        f"matmul GFLOP/s: {peaks}; peak {matmul['peak']}; total {machine['total_s']:.0f} s"
    )


def target_lines(results: dict, machine: dict, args: argparse.Namespace) -> list[str]:
    """The issue's targets, for the fast path against the plain one (same architecture)."""
    fast, plain = results["fast"], results["plain"]
    stage1 = f"pretrain_{args.size[0]}"
    megapixels = megapixel_sizes(args)[-1]
    last_mp = f"latency_{megapixels}"
    checks = [
        ("stage 1 training ≥ 2.5× plain", fast[stage1]["images_per_s"] / plain[stage1]["images_per_s"], 2.5, "×"),
        ("inference ≥ 2× plain", fast["inference"]["images_per_s"] / plain["inference"]["images_per_s"], 2, "×"),
        ("stage 1 ≥ 35% of matmul peak", fast["achieved"]["percent_of_peak"], 35, "%"),
        (f"{megapixels} MP colorize < 2048 MB", -fast[last_mp]["peak_mb"], -2048, " MB"),
        ("whole benchmark < 600 s", -machine["total_s"], -600, " s"),
    ]
    checks += [
        (
            f"stage 1 training on {name.removeprefix('fast_config_')} ≥ 2× {FAST_CONFIG.stem}",
            results[name][stage1]["images_per_s"] / results["fast_config"][stage1]["images_per_s"],
            2,
            "×",
        )
        for name in results
        if name.startswith("fast_config_")
    ]
    return [
        f"- {name}: {fmt(abs(value))}{unit} {'met' if value >= goal else 'MISSED'}"
        for name, value, goal, unit in checks
    ]


# -------------------------------------------------------------------------------------------------- serving

SERVE_CONCURRENCY = (1, 4, 16)
SERVE_BUDGET_S = 40.0  # each concurrency level stops sending after this long
SERVE_MODES = {
    "batching on": ("--max-batch", "8", "--max-wait-ms", "10"),
    "batching off": (
        "--max-batch",
        "1",
    ),
}


def serve_section(args: argparse.Namespace) -> dict[str, dict]:
    """Requests/s and latency of a real ``pix2color-serve`` on loopback, dynamic batching on and off.

    The server colours a 0.3 MP JPEG with each architecture of :func:`model_paths` (random weights) at
    ``--render-size``; each concurrency level sends up to 4 x concurrency requests (at least 8), stopping after
    SERVE_BUDGET_S. Results are keyed "MODE" for the default architecture, "MODE, ENCODER" for the others.
    """
    import io

    from pix2color.checkpoint import save_checkpoint
    from pix2color.config import load_config
    from pix2color.model_files import inference_checkpoint
    from pix2color.models.generator import build_generator

    buffer = io.BytesIO()
    synthetic_photo(0.3).save(buffer, "JPEG", quality=90)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, path in model_paths(args).items():
            model = [key for key in path["set"] if key.startswith("model.")]
            cfg = load_config(path["config"], ["model.pretrained=none", f"data.size={args.render_size}", *model])
            checkpoint = Path(folder) / f"random_{name}.pt"
            generator = build_generator(cfg.model, cfg.data.size, cfg.color.space)
            save_checkpoint(inference_checkpoint(cfg, generator.state_dict(), next(iter(STAGES))), checkpoint)
            suffix = "" if name == "fast" else f", {cfg.model.encoder}"
            for mode, flags in SERVE_MODES.items():
                results[mode + suffix] = serve_mode(checkpoint, flags, buffer.getvalue())
    return results


def serve_mode(checkpoint: Path, flags: Sequence[str], photo: bytes) -> dict:
    """Start a server with ``flags``, load it at each concurrency, stop it; its peak RSS comes from /proc."""
    import socket

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "pix2color.serve", "--checkpoint", str(checkpoint), "--port", str(port)]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # its access log
    server = subprocess.Popen([*command, "--queue", "64", *flags], cwd=ROOT, **quiet)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                httpx.get(f"{url}/v1/health", timeout=2)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("pix2color-serve did not start") from None
                time.sleep(0.2)
        levels = {c: load_level(url, photo, c) for c in SERVE_CONCURRENCY}
        status = Path(f"/proc/{server.pid}/status")
        peak = next(line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        return {"levels": levels, "peak_rss_mb": int(peak) / 1024}
    finally:
        server.terminate()
        server.wait(30)


def load_level(url: str, photo: bytes, concurrency: int) -> dict[str, float]:
    """``concurrency`` clients posting ``photo`` back to back (after one warm-up round); figures of the rest."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    def one(client: httpx.Client) -> tuple[float, bool, int]:
        start = time.perf_counter()
        try:
            response = client.post(f"{url}/v1/colorize", files={"file": ("p.jpg", photo)}, timeout=120)
            ok, batch = response.status_code == 200, int(response.headers.get("x-batch-size", 0))
        except httpx.HTTPError:
            ok, batch = False, 0
        return time.perf_counter() - start, ok, batch

    total = max(8, 4 * concurrency)
    with httpx.Client() as client, ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: one(client), range(concurrency)))  # warm-up: connections, first batches
        stop = time.perf_counter() + SERVE_BUDGET_S
        start = time.perf_counter()

        def worker(share: int) -> list[tuple[float, bool, int]]:
            return [one(client) for _ in range(share) if time.perf_counter() < stop]

        shares = [total // concurrency + (i < total % concurrency) for i in range(concurrency)]
        done = [item for part in pool.map(worker, shares) for item in part]
        seconds = time.perf_counter() - start
    latencies = sorted(latency for latency, ok, _ in done if ok)
    batches = [batch for _, ok, batch in done if ok]
    return {
        "requests": len(done),
        "errors": sum(not ok for _, ok, _ in done),
        "requests_per_s": len(latencies) / seconds,
        "p50_s": latencies[len(latencies) // 2] if latencies else math.nan,
        "p95_s": latencies[min(len(latencies) - 1, math.ceil(0.95 * len(latencies)) - 1)] if latencies else math.nan,
        "mean_batch": sum(batches) / len(batches) if batches else math.nan,
    }


def serve_table(results: dict[str, dict]) -> str:
    """One row per mode and concurrency: requests/s, p50, p95, mean forward batch, errors; then peak RSS."""
    lines = ["| serving | concurrency | requests | requests/s | p50 s | p95 s | mean batch | errors |"]
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for mode, result in results.items():
        for concurrency, level in result["levels"].items():
            lines.append(
                f"| {mode} | {concurrency} | {level['requests']} | {fmt(level['requests_per_s'])} | "
                f"{fmt(level['p50_s'])} | {fmt(level['p95_s'])} | {fmt(level['mean_batch'])} | {level['errors']} |"
            )
    lines.append("")
    lines += [f"peak RSS of the server, {mode}: {fmt(result['peak_rss_mb'])} MB" for mode, result in results.items()]
    return "\n".join(lines)


def serve_target_lines(results: dict[str, dict]) -> list[str]:
    """The issue's targets at concurrency 16."""
    on, off = results["batching on"]["levels"][16], results["batching off"]["levels"][16]
    ratio = on["requests_per_s"] / off["requests_per_s"]
    errors = sum(level["errors"] for result in results.values() for level in result["levels"].values())
    return [
        f"- batching ≥ 1.5× the requests/s of batch-1 serving at concurrency 16: {ratio:.2f}× "
        f"{'met' if ratio >= 1.5 else 'MISSED'}",
        f"- p95 < 3 s at concurrency 16 with batching: {fmt(on['p95_s'])} s {'met' if on['p95_s'] < 3 else 'MISSED'}",
        f"- no errors below the queue bound: {errors} {'met' if errors == 0 else 'MISSED'}",
    ]


# ------------------------------------------------------------------------------------------------------ video

VIDEO_SIZES = {"480p": (854, 480), "1080p": (1920, 1080)}
VIDEO_FRAMES = 24


def video_section(args: argparse.Namespace) -> list[dict]:
    """Frames/s of ``pix2color.video.colorize_video`` (decode, model, smoothing, join, encode) per size and mode.

    A synthetic clip of VIDEO_FRAMES moving gradient frames per size; each architecture of :func:`model_paths`,
    random weights. Each size is first coloured once untimed, so that the first mode timed does not pay for the
    warm-up.
    """
    import av
    import numpy as np

    colorizers = {name: build_colorizer(path, args.render_size, 4, "cpu") for name, path in model_paths(args).items()}
    labels = {name: path["label"] for name, path in model_paths(args).items()}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, (width, height) in VIDEO_SIZES.items():
            clip = Path(folder) / f"{name}.mp4"
            with av.open(str(clip), "w") as container:
                stream = container.add_stream("libx264", rate=24)
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                for i in range(VIDEO_FRAMES):
                    shifted = np.asarray(synthetic_photo(width * height / 1e6).resize((width, height)))
                    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(shifted, 4 * i, axis=1)))
                    frame.pts = i
                    container.mux(stream.encode(frame))
                container.mux(stream.encode(None))
            for model, colorizer in colorizers.items():
                rows += video_rows(colorizer, clip, Path(folder) / model, labels[model])
    return rows


def video_rows(colorizer, clip: Path, out: Path, model: str) -> list[dict]:
    """Frames/s of ``clip`` (named by its size) in each temporal mode, written as ``out``_SIZE_MODE.mp4 after one
    untimed warm-up pass; printed as they come."""
    from pix2color.video import colorize_video
    from pix2color.video_options import TEMPORAL_MODES, VideoOptions

    size = clip.stem
    colorize_video(colorizer, clip, Path(f"{out}_{size}_warm_up.mp4"), VideoOptions(temporal="off"))
    rows = []
    for mode in TEMPORAL_MODES:
        start = time.perf_counter()
        colorize_video(colorizer, clip, Path(f"{out}_{size}_{mode}.mp4"), VideoOptions(temporal=mode))
        frames_per_s = round(VIDEO_FRAMES / (time.perf_counter() - start), 2)
        rows.append({"size": size, "model": model, "temporal": mode, "frames_per_s": frames_per_s})
        print(f"video {size} {model} temporal={mode}: {frames_per_s} frames/s", flush=True)
    return rows


# ----------------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--size", nargs="+", type=int, default=[128], help="training and loader crop sizes")
    parser.add_argument("--batch", type=int, default=BATCH, help="training batch size")
    parser.add_argument("--render-size", type=int, default=256, help="square the model runs at in inference")
    parser.add_argument("--infer-batch", type=int, default=4, help="photos per inference batch")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after a warm-up (0: one call)")
    parser.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp16", "fp32"),
        default="auto",
        help="the fast path's autocast dtype (auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32)",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the fast path (for CUDA)")
    parser.add_argument("--data", nargs="+", default=[str(DEFAULT_DATA)], help="image folders or manifests")
    parser.add_argument("--loader-files", type=int, default=LOADER_FILES, help="files the loader reads (0: all)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few files, tiny photos, one process")
    parser.add_argument(
        "--serve", action="store_true", help="only the serving benchmark: pix2color-serve on loopback, about 5 min"
    )
    parser.add_argument("--video", action="store_true", help="only the video section: frames/s at 480p and 1080p")
    parser.add_argument(
        "--encoder",
        nargs="*",
        default=["efficientnet_lite0"],
        help="encoders also timed in the fast config's layout (a column; rows of --video and --serve); none: off",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    if args.serve:
        return serve_main(args)
    if args.video:
        rows = video_section(args)
        if args.json:
            args.json.write_text(json.dumps({"machine": machine_info(args.device), "video": rows}, indent=2) + "\n")
        return 0
    start = time.perf_counter()
    machine = machine_info(args.device)
    loader = loader_section(args.data, args.size, QUICK_FILES if args.quick else args.loader_files)
    matmul = matmul_section(args.device, args.quick)
    paths = compute_paths(args.device, args.precision, args.compile, args.encoder)
    results = measure_paths(paths, args)
    for measured in results.values():
        measured["achieved"] = achieved(measured, args.size[0], matmul["peak"])
    machine |= {"load_average_end": round(os.getloadavg()[0], 2), "total_s": time.perf_counter() - start}
    print(header(machine, matmul), loader_table(loader), results_table(results, paths, args), sep="\n\n")
    print("\nTargets (fast against plain, same architecture):", *target_lines(results, machine, args), sep="\n")
    if args.json:
        summary = {"machine": machine, "matmul": matmul, "loader": loader, "paths": paths, "results": results}
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def serve_main(args: argparse.Namespace) -> int:
    """``--serve``: the serving table and its targets (CPU only; loopback only; stops by itself)."""
    start = time.perf_counter()
    machine = machine_info("cpu")
    results = serve_section(args)
    print(
        f"{machine['cpu']}, {machine['cores']} cores ({machine['cpu_capability']}, bf16 kernels: "
        f"{'yes' if machine['bf16_kernels'] else 'no'}), torch {machine['torch']}, load average "
        f"{machine['load_average_start']} at start, {os.getloadavg()[0]:.2f} at end; render size {args.render_size}; "
        f"total {time.perf_counter() - start:.0f} s\n"
    )
    print(serve_table(results), "", "Targets (concurrency 16):", *serve_target_lines(results), sep="\n")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "serve": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
