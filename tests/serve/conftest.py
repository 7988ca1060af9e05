"""Real ``pix2color-serve`` processes on loopback for the API and page tests, started once per session, and a tiny
model that takes colour hints for them to serve."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token-0123456789abcdef"
STARTUP_S = 180  # torch and fastai imports plus the warm-up pass, on two busy cores
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
HINT_GAIN = 2.0  # the hinted test model's output logits move by this much per unit of hint chroma


class Server:
    """``python -m pix2color.serve`` on a free loopback port; its log goes to a file."""

    def __init__(self, checkpoint: Path, logs: Path, *flags: str, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = logs / f"serve_{self.port}.log"
        command = [sys.executable, "-m", "pix2color.serve", "--checkpoint", str(checkpoint), "--port", str(self.port)]
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [*command, *flags], cwd=REPO, env=os.environ | ONE_THREAD | (env or {}), stdout=log, stderr=log
            )

    def wait_ready(self, headers: dict[str, str] | None = None) -> Server:
        """Block until ``GET /v1/health`` answers (any status); fail with the log if the process exits."""
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"pix2color-serve exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                httpx.get(f"{self.url}/v1/health", headers=headers, timeout=2)
                return self
            except httpx.TransportError:
                time.sleep(0.2)
        pytest.fail(f"pix2color-serve did not answer within {STARTUP_S} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def hinted_checkpoint(tmp_path_factory: pytest.TempPathFactory, write_checkpoint) -> Path:
    """A 64 px resnet18 U-Net built with ``model.hints`` whose hints reach its output, as a weights-only checkpoint.

    Random weights (seed 0), as ``tiny_checkpoint``, except in fastai's last cross block, which reads the U-Net's
    input (L, hint chroma, hint mask) beside the decoder's features: there the hint chroma is passed on unchanged
    and the final conv adds :data:`HINT_GAIN` times it to the output logits. So a hinted pixel comes out with
    about its hint's chroma, and an unhinted one as the random model colours it. Not a trained model: the tests
    that serve it check that each hint reaches the model at its place with its colour, which this makes visible
    in the output, in a second instead of minutes of training.
    """
    path = tmp_path_factory.mktemp("hinted") / "hinted.pt"
    return write_checkpoint(path, ["data.size=64", "model.hints=true"], prepare=pass_hints_to_output)


def pass_hints_to_output(generator) -> None:
    """Set the last cross block and final conv of a hinted generator as :func:`hinted_checkpoint` describes."""
    import torch

    block, final = generator.unet.layers[-3], generator.unet.layers[-2][0]
    # ResBlock: relu(convs(x) + x) on x = cat(features, L, hint a, hint b, mask); then a 1x1 conv to (a, b) logits
    assert generator.takes_hints and len(block.idpath) == 0 and final.out_channels == 2, "fastai's U-Net changed"
    with torch.no_grad():
        last = block.convpath[-1][0]
        last.weight[-4:] = 0
        last.bias[-4:] = 1  # relu(1 + x) = 1 + x for L and the hints, all in [-1, 1]
        final.weight[:, -4:] = 0
        for output, channel in ((0, -3), (1, -2)):  # a from hint a, b from hint b
            final.weight[output, channel] = HINT_GAIN
            final.bias[output] -= HINT_GAIN


@pytest.fixture(scope="session")
def servers(
    tiny_checkpoint: Path, hinted_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Server]]:
    """Two servers started side by side (their start-ups overlap): "open" (no token, one photo at a time, a
    1 MB upload cap; a model without hints, served with ``--no-hint-spread``, so that it takes none) and "token"
    (``--token``, defaults otherwise; the model that takes hints of :func:`hinted_checkpoint`)."""
    logs = tmp_path_factory.mktemp("serve_logs")
    started = {
        "open": Server(
            tiny_checkpoint, logs, "--queue", "1", "--max-batch", "1", "--max-upload-mb", "1", "--no-hint-spread"
        ),
        "token": Server(hinted_checkpoint, logs, env={"PIX2COLOR_TOKEN": TOKEN}),
    }
    try:
        started["open"].wait_ready()
        started["token"].wait_ready()
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="session")
def open_server(servers: dict[str, Server]) -> Server:
    return servers["open"]


@pytest.fixture(scope="session")
def token_server(servers: dict[str, Server]) -> Server:
    return servers["token"]


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
