"""Where and how training runs: device, mixed precision, torch.distributed, seeds and RNG states."""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from pix2color.errors import ConfigError


@dataclass(frozen=True)
class Runtime:
    """The process's place in a (possibly distributed) run."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Only the main process logs and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str) -> torch.device:
    """Turn ``auto | cpu | cuda`` into a device; ``cuda`` without a GPU is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA GPU is visible; ask for device cpu or auto instead.")
    return torch.device(name)


def setup_runtime(device_name: str) -> Runtime:
    """Start torch.distributed when launched by torchrun (gloo on CPU, nccl on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world_size == 1:
        return Runtime(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Runtime(device, dist.get_rank(), world_size)


def teardown_runtime(runtime: Runtime) -> None:
    """Leave the process group cleanly."""
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()


def amp_dtype(device: torch.device, enabled: bool, requested: str) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32.

    ``auto`` is fp16 on CUDA and bf16 on a CPU with native bf16 (AVX512-BF16 or AMX). CPUs without it
    (AVX2-only) emulate bf16 several times slower than fp32, so ``auto`` turns autocast off there.
    """
    if not enabled:
        return None
    if requested == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[requested]


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (it is emulated, and slow, on AVX2-only CPUs)."""
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """torch.autocast on ``device`` with ``dtype``, or a no-op when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and torch; optionally ask torch for deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def rng_state() -> dict[str, Any]:
    """Every RNG state as plain data and tensors, loadable with ``weights_only=True``."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": list(random.getstate()[1]),
        "numpy": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate((3, tuple(state["python"]), None))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def any_rank(flag: bool, runtime: Runtime) -> bool:
    """True when ``flag`` is set on any rank (so every rank stops at the same step)."""
    if not runtime.distributed:
        return flag
    value = torch.tensor([int(flag)], device=runtime.device if runtime.device.type == "cuda" else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
