"""ONNX export of a generator, and ONNX Runtime running it in place of PyTorch for faster CPU inference.

ONNX Runtime fuses the U-Net's convolutions, batch norms and activations ahead of time; on the project's
2-core AVX2 CPU the ResNet18 U-Net's forward pass at 256x256 ran 1.5x as fast as eager PyTorch (README,
Performance). Needs the ``export`` extra: ``pip install -e ".[export]"``.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import torch
from torch import Tensor, nn

from pix2color.errors import ConfigError
from pix2color.hints import HINT_CHANNELS

ONNX_OPSET = 17
DYNAMIC_AXES = {0: "batch", 2: "height", 3: "width"}


@contextlib.contextmanager
def quiet_tracing() -> Iterator[None]:
    """No autograd, and no TracerWarnings: the U-Net's Python shape checks hold at every multiple of 32."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


def export_onnx(generator: nn.Module, size: int, out: str | Path | BinaryIO) -> None:
    """Write ``generator`` as ONNX, traced at 1 x 1 x ``size`` x ``size``: lightness (B, 1, H, W) -> chroma
    (B, 2, H, W), batch and H, W free; a generator that takes hints has a second input, hints (B, 3, H, W).

    Uses the TorchScript-based exporter, which needs only ``onnx`` (the dynamo one needs onnxscript).

    Raises:
        ConfigError: onnx or onnxruntime (the ``export`` extra) is not installed.
    """
    require_export_extra()
    module, examples, names = traced_inputs(generator, size)
    with quiet_tracing():
        torch.onnx.export(
            module,
            examples,
            out if isinstance(out, io.IOBase) else str(out),
            input_names=names,
            output_names=["chroma"],
            dynamic_axes=dict.fromkeys([*names, "chroma"], DYNAMIC_AXES),
            opset_version=ONNX_OPSET,
            dynamo=False,
        )


def traced_inputs(generator: nn.Module, size: int) -> tuple[nn.Module, tuple[Tensor, ...], list[str]]:
    """What an export traces: the module, example inputs at ``size`` and their names; a generator that takes
    hints is traced through :class:`HintedForward`, with hints as its second input."""
    lightness = torch.zeros(1, 1, size, size)
    if not getattr(generator, "takes_hints", False):
        return generator, (lightness,), ["lightness"]
    wrapped = HintedForward(generator).train(generator.training)  # an export restores the wrapper's mode on both
    return wrapped, (lightness, torch.zeros(1, HINT_CHANNELS, size, size)), ["lightness", "hints"]


class HintedForward(nn.Module):
    """A generator that takes hints, called with them as its second positional input, as a trace needs."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, lightness: Tensor, hints: Tensor) -> Tensor:
        """(B, 1, H, W) lightness and (B, 3, H, W) hints -> (B, 2, H, W) chroma."""
        return self.generator(lightness, hints=hints)


class OnnxGenerator(nn.Module):
    """A generator run by ONNX Runtime on the CPU, in place of the PyTorch one (e.g. in a CPU Colorizer).

    Args:
        model: an ONNX model, as bytes or a file written by :func:`export_onnx`.

    Raises:
        ConfigError: onnxruntime is not installed.
    """

    def __init__(self, model: bytes | str | Path):
        super().__init__()
        onnxruntime = require_export_extra()
        options = onnxruntime.SessionOptions()
        options.enable_cpu_mem_arena = False  # the arena kept ~700 MB more at batch 8 x 256^2 for a 4% gain
        source = model if isinstance(model, bytes) else str(model)
        self.session = onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.takes_hints = "hints" in {item.name for item in self.session.get_inputs()}  # exported with model.hints

    @classmethod
    def from_module(cls, generator: nn.Module, size: int) -> OnnxGenerator:
        """Export ``generator`` (traced at 1 x 1 x ``size`` x ``size``) in memory and load it.

        Raises:
            ConfigError: onnx or onnxruntime is not installed.
        """
        buffer = io.BytesIO()
        export_onnx(generator.eval(), size, buffer)
        return cls(buffer.getvalue())

    def forward(self, lightness: Tensor, hints: Tensor | None = None) -> Tensor:
        """Lightness (B, 1, H, W) in [-1, 1] (and for a model that :attr:`takes_hints`, hints (B, 3, H, W); none:
        zeros) -> chroma (B, 2, H, W) float32 on lightness's device."""
        inputs = {"lightness": lightness}
        if self.takes_hints:
            no_hints = hints is None
            inputs["hints"] = (
                lightness.new_zeros(lightness.shape[0], HINT_CHANNELS, *lightness.shape[2:]) if no_hints else hints
            )
        elif hints is not None:
            raise ValueError("this ONNX model was exported without model.hints; it takes no hints")
        arrays = {name: value.detach().float().cpu().contiguous().numpy() for name, value in inputs.items()}
        (chroma,) = self.session.run(None, arrays)
        return torch.from_numpy(chroma).to(lightness.device)


def require_export_extra():
    """The onnxruntime module, once onnx (for the export) and onnxruntime are both importable.

    Raises:
        ConfigError: either is missing; the message says what to install.
    """
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(
            f'the onnxruntime backend needs the {exc.name} package: pip install -e ".[export]".'
        ) from None
    return onnxruntime
