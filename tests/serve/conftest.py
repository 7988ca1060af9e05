"""Real ``pix2color-serve`` processes on loopback for the API and page tests, started once per session."""

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
def servers(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Two servers started side by side (their start-ups overlap): "open" (no token, one photo at a time, a
    1 MB upload cap) and "token" (``--token``, defaults otherwise)."""
    logs = tmp_path_factory.mktemp("serve_logs")
    started = {
        "open": Server(tiny_checkpoint, logs, "--queue", "1", "--max-batch", "1", "--max-upload-mb", "1"),
        "token": Server(tiny_checkpoint, logs, env={"PIX2COLOR_TOKEN": TOKEN}),
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
