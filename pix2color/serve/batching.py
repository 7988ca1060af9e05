"""Dynamic batching: requests that arrive within a few milliseconds share one forward pass.

As in Triton and TorchServe, the first waiting request opens a batch; it closes after ``max_wait_s`` or when
it holds ``max_batch`` photos (or :data:`MAX_BATCH_PIXELS`). Photos that ask for the same settings (render
size, saturation) go through the model together. The model runs in one worker thread, so requests never race
on it and the event loop stays free for decoding, encoding and new connections.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

MAX_BATCH_PIXELS = 24_000_000  # a batch closes once its photos hold this many pixels (as infer.py's batches)


@dataclass
class Job:
    """One photo waiting for the model: ``key`` names the settings it shares with its batch."""

    item: Any
    key: Hashable
    pixels: int
    future: asyncio.Future = field(repr=False)


@dataclass(frozen=True)
class Done:
    """A job's result and how many photos its forward pass held."""

    result: Any
    batch_size: int


class Batcher:
    """Gathers submitted items into batches and runs ``run(key, items) -> results`` in one worker thread.

    Args:
        run: colours ``items`` that share ``key``; returns one result per item, in order. Runs in the
            worker thread, never two calls at once.
        max_batch: most items per batch (1 turns batching off).
        max_wait_s: how long the first item of a batch waits for company.
    """

    def __init__(self, run: Callable[[Hashable, Sequence[Any]], list[Any]], max_batch: int, max_wait_s: float):
        self.run = run
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.seconds_per_batch = 0.0  # running mean, for Retry-After
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pix2color-model")
        self._task: asyncio.Task | None = None

    @property
    def waiting(self) -> int:
        """Jobs in the queue, not yet in a batch."""
        return self._queue.qsize()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._serve())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._worker.shutdown(wait=True)

    async def submit(self, item: Any, key: Hashable, pixels: int, timeout_s: float) -> Done:
        """Queue ``item`` and wait for its result.

        Raises:
            TimeoutError: not done within ``timeout_s``; the job is dropped if it has not started.
        """
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(Job(item, key, pixels, future))
        return await asyncio.wait_for(future, timeout_s)  # cancels the future on timeout: the batch skips it

    async def _serve(self) -> None:
        while True:
            batch = await self._gather()
            for key, group in itertools.groupby(sorted(batch, key=_order(batch)), key=lambda job: job.key):
                await self._run_group(key, list(group))

    async def _gather(self) -> list[Job]:
        """Wait for one job, then collect more until the batch is full or ``max_wait_s`` has passed."""
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        pixels = batch[0].pixels
        while len(batch) < self.max_batch and pixels < MAX_BATCH_PIXELS:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            batch.append(job)
            pixels += job.pixels
        return batch

    async def _run_group(self, key: Hashable, jobs: list[Job]) -> None:
        """Run the jobs still wanted (not timed out) in the worker; hand each its result or the error."""
        jobs = [job for job in jobs if not job.future.done()]
        if not jobs:
            return
        start = time.perf_counter()
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._worker, self.run, key, [job.item for job in jobs]
            )
        except Exception as exc:  # a failed batch fails its requests, never the server
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        seconds = time.perf_counter() - start
        self.seconds_per_batch = seconds if not self.seconds_per_batch else 0.8 * self.seconds_per_batch + 0.2 * seconds
        for job, result in zip(jobs, results, strict=True):
            if not job.future.done():
                job.future.set_result(Done(result, len(jobs)))


def _order(batch: list[Job]) -> Callable[[Job], int]:
    """Sort key that groups equal keys while keeping the first arrival of each key first."""
    first: dict[Hashable, int] = {}
    for index, job in enumerate(batch):
        first.setdefault(job.key, index)
    return lambda job: first[job.key]
